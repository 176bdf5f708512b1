"""Training: config + workdir → TensorBoard logs, per-epoch checkpoints and the final `model.keras`.

Reads top-down: seed and precision → strategy → data → model → fit → save. The fit runs in phases
(the frame backbone frozen first, if `train.backbone_frozen_epochs`); interrupted runs resume from
`workdir/backup` (Keras `BackupAndRestore`, one folder per phase) when the same command is run again.

Example:

>>> from videofusion.config import demo_config
>>> model = train(demo_config(), "runs/demo")  # doctest: +SKIP
"""

import os
import shutil
import sys

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from videofusion import config as config_lib
from videofusion import fileio
from videofusion import names, pipeline, prepared_data, strategy as strategy_lib, text, workdir as workdir_lib
from videofusion.models import FrameAugment, InputShapes, build_model, finetune
from videofusion.transforms import ClipSpec


def resolve_data_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with the prepared data's frame rate, sample rate and size filled in."""
    info = prepared_data.read_dataset_info(config.data.dir)
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.data.fps = float(info[prepared_data.FPS])
    resolved.data.sample_rate = int(info[prepared_data.SAMPLE_RATE])
    resolved.data.short_side = int(info[prepared_data.SHORT_SIDE])
    return resolved


def input_shapes(config: ml_collections.ConfigDict, spec: ClipSpec) -> InputShapes:
    """The model's static input sizes for clips of `spec`."""
    return InputShapes(
        spec.num_frames, spec.image_size, spec.mel_frames, spec.mel_bins,
        text_length=config.data.text_length, vocabulary_size=config.data.vocabulary_size,
        frame_size=spec.frame_size,
    )


def _set_up(config: ml_collections.ConfigDict) -> None:
    keras.utils.set_random_seed(config.train.seed)
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.train.mixed_precision else "float32"
    )


def _datasets(config, options: pipeline.PipelineOptions, replicas: int):
    batch_size = config.train.batch_size * replicas
    train_ds = pipeline.make_dataset(
        config.data.dir, "train", options, batch_size, training=True, seed=config.train.seed
    )
    try:
        val_ds = pipeline.make_dataset(config.data.dir, "val", options, batch_size, training=False)
    except FileNotFoundError:
        logging.warning("No val split in %s: training without validation", config.data.dir)
        val_ds = None
    return train_ds, val_ds


def _fit(model, config, train_ds, val_ds, paths: workdir_lib.RunPaths, strategy) -> None:
    """Fits in phases (`finetune.phases`): the backbone frozen for the first epochs, then all of it.

    Each phase keeps its own backup until the whole fit is done, so a rerun after a crash skips the
    finished phases (restored, no epochs left) and resumes the interrupted one.
    """
    train_inputs = pipeline.model_inputs(train_ds, model)
    val_inputs = None if val_ds is None else pipeline.model_inputs(val_ds, model)
    backbone = finetune.find_backbone(model)
    frozen_epochs = config.train.backbone_frozen_epochs if backbone is not None else 0  # audio/text only: one fit
    for first, end, backbone_trainable in finetune.phases(config.train.epochs, frozen_epochs):
        if backbone is not None:
            backbone.trainable = backbone_trainable
        with strategy.scope():
            _compile(model, config, backbone if backbone_trainable else None)
        backup = keras.callbacks.BackupAndRestore(os.path.join(paths.backup, f"epochs_{first}_{end}"),
                                                  delete_checkpoint=False)
        try:
            model.fit(
                train_inputs, validation_data=val_inputs, initial_epoch=first, epochs=end,
                callbacks=_callbacks(paths) + [backup], verbose=1 if sys.stderr.isatty() else 2,
            )
        except tf.errors.DataLossError as error:
            raise pipeline.corrupt_shard_error(config.data.dir, error) from error
    shutil.rmtree(paths.backup, ignore_errors=True)


def _compile(model: keras.Model, config, trained_backbone) -> None:
    """Compiles `model`; the variables of `trained_backbone` (if any) get the backbone learning rate."""
    optimizer = finetune.ScaledAdam(
        learning_rate=config.train.learning_rate, learning_rate_scale=config.train.backbone_learning_rate_scale
    )
    if trained_backbone is not None:
        optimizer.scale_variables(trained_backbone.trainable_variables)
    num_classes = model.output[names.CLASSES].shape[-1]
    model.compile(
        optimizer=optimizer,
        loss={name: "sparse_categorical_crossentropy" for name in model.output},
        loss_weights={name: 1.0 if name == names.CLASSES else config.model.aux_loss_weight for name in model.output},
        metrics={
            names.CLASSES: [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(k=min(config.eval.top_k, num_classes), name="top_k_accuracy"),
            ]
        },
    )


def _model(config, spec: ClipSpec, num_classes: int) -> keras.Model:
    return build_model(
        config.model, input_shapes(config, spec), num_classes,
        frame_augment=FrameAugment.from_config(config.augment), seed=config.train.seed,
    )


def _callbacks(paths: workdir_lib.RunPaths):
    return [
        keras.callbacks.TensorBoard(paths.tensorboard),
        keras.callbacks.ModelCheckpoint(os.path.join(paths.checkpoints, "last.keras")),
    ]


def train(config: ml_collections.ConfigDict, workdir: str) -> keras.Model:
    """Trains the model `config` describes; writes everything into `workdir`; returns the model."""
    config = resolve_data_config(config)
    _set_up(config)
    strategy = strategy_lib.make_strategy(config.train.strategy)
    os.makedirs(workdir, exist_ok=True)
    options = pipeline.PipelineOptions.from_config(config, text.tokenizer_for_run(config, workdir, build=True))
    spec = options.spec
    train_ds, val_ds = _datasets(config, options, strategy.num_replicas_in_sync)
    labels = prepared_data.read_dataset_info(config.data.dir)[prepared_data.LABELS]
    with strategy.scope():
        model = _model(config, spec, len(labels))
    logging.info("Model %s: %d parameters", model.name, model.count_params())
    paths = workdir_lib.RunPaths(workdir)
    os.makedirs(paths.checkpoints, exist_ok=True)
    config_lib.save_run_config(config, workdir)
    workdir_lib.save_labels(config.data.dir, workdir)
    _fit(model, config, train_ds, val_ds, paths, strategy)
    with fileio.atomic_path(paths.model) as tmp:
        model.save(tmp)
    logging.info("Saved %s", paths.model)
    return model
