"""Training: config + workdir → TensorBoard logs, per-epoch checkpoints and the final `model.keras`.

Reads top-down: strategy → seed and precision → data → model (`start_run`) → fit (`fit`) → save. The
fit runs in phases (the frame backbone frozen first, if `train.backbone_frozen_epochs`); an interrupted
run resumes from `workdir/backup` (`callbacks.Backup`, one folder per phase, saved after every epoch)
when the same command is run again, and ends with the weights an uninterrupted run ends with: the
training batches of epoch k are fixed by (`train.seed`, k) (`pipeline.training_epochs`) and the backup
holds the model's random-generator states besides the weights and the optimizer's.

Example:

>>> from videofusion.config import demo_config
>>> model = train(demo_config(), "runs/demo")  # doctest: +SKIP

`start_run` and `fit` are the steps a caller that times or watches the training loop uses
(`benchmarks/bench_train.py`):

>>> run = start_run(config, "runs/demo", strategy_lib.make_distribution("default"))  # doctest: +SKIP
>>> fit(run, extra_callbacks=[timer])  # doctest: +SKIP
"""

import dataclasses
import hashlib
import os
import shutil
import sys
import warnings
from typing import Callable, List, Optional, Sequence

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from videofusion import config as config_lib
from videofusion import fileio, run_folder
from videofusion.contract import prepared_folder, tensors
from videofusion.data import caption_tokenizer, pipeline
from videofusion.data.transforms import ClipSpec
from videofusion.models import FrameAugment, InputShapes, build_model, finetune, optimization
from videofusion.training import callbacks as callbacks_lib
from videofusion.training import strategy as strategy_lib


def resolve_data_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with the prepared data's frame rate, sample rate and size filled in."""
    info = prepared_folder.read_dataset_info(config.data.dir)
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.data.fps = float(info[prepared_folder.FPS])
    resolved.data.sample_rate = int(info[prepared_folder.SAMPLE_RATE])
    resolved.data.short_side = int(info[prepared_folder.SHORT_SIDE])
    return resolved


def input_shapes(config: ml_collections.ConfigDict, spec: ClipSpec) -> InputShapes:
    """The model's static input sizes for clips of `spec`."""
    return InputShapes(
        spec.num_frames, spec.image_size, spec.mel_frames, spec.mel_bins,
        text_length=config.data.text_length, vocabulary_size=config.data.vocabulary_size,
        frame_size=spec.frame_size,
    )


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
_JIT_COMPILE = {"auto": "auto", "true": True, "false": False}


def _set_up(config: ml_collections.ConfigDict) -> None:
    keras.utils.set_random_seed(config.train.seed)
    if config.train.precision not in PRECISIONS:
        raise ValueError(f"train.precision={config.train.precision!r} is not one of {', '.join(PRECISIONS)}")
    if str(config.train.jit_compile).lower() not in _JIT_COMPILE:
        raise ValueError(f"train.jit_compile={config.train.jit_compile!r} is not one of auto, true, false")
    keras.mixed_precision.set_global_policy(config.train.precision)


@dataclasses.dataclass
class Data:
    """A run's input: `train(epoch)` gives the endless training batches from `epoch` on."""

    train: Callable[[int], tf.data.Dataset]
    val: Optional[tf.data.Dataset]
    steps_per_epoch: int
    class_weights: Optional[List[float]]


def _datasets(config, options: pipeline.PipelineOptions, distribution: strategy_lib.Distribution,
              labels: List[str]) -> Data:
    replicas = distribution.replicas
    batch_size = config.train.batch_size * replicas

    def train_from(epoch: int) -> tf.data.Dataset:
        return distribution.prepare_dataset(
            pipeline.training_epochs(config.data.dir, options, batch_size, config.train.seed, first_epoch=epoch)
        )

    try:
        val_ds = distribution.prepare_dataset(
            pipeline.make_dataset(config.data.dir, "val", options, batch_size, training=False)
        )
    except FileNotFoundError:
        logging.warning("No val split in %s: training without validation", config.data.dir)
        val_ds = None
    examples = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.COUNTS]["train"]
    steps = optimization.steps_per_epoch(examples, batch_size)
    logging.info("%d training clips, global batch %d (%d replica(s)): %d steps per epoch", examples, batch_size,
                 replicas, steps)
    return Data(train_from, val_ds, steps, _class_weights(config, labels))


def _class_weights(config, labels) -> Optional[List[float]]:
    """Per-class loss weights that `train.class_weights` asks for (None: all 1)."""
    if config.train.class_weights == "none":
        return None
    if config.train.class_weights != "balanced":
        raise ValueError(f"train.class_weights={config.train.class_weights!r} is not one of none, balanced")
    counts = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.LABEL_COUNTS]["train"]
    weights = optimization.balanced_class_weights([counts.get(label, 0) for label in labels])
    logging.info("Class weights: %s", ", ".join(f"{label} {w:.2f}" for label, w in zip(labels, weights)))
    return weights


def _model(config, spec: ClipSpec, num_classes: int) -> keras.Model:
    return build_model(
        config.model, input_shapes(config, spec), num_classes,
        frame_augment=FrameAugment.from_config(config.augment), seed=config.train.seed,
    )


@dataclasses.dataclass
class Run:
    """What `fit` needs: the resolved config, the distribution, the input, the model and the run's folder."""

    config: ml_collections.ConfigDict
    distribution: strategy_lib.Distribution
    data: Data
    model: keras.Model
    paths: run_folder.RunPaths


def start_run(config: ml_collections.ConfigDict, run_dir: str, distribution: strategy_lib.Distribution) -> Run:
    """Sets the seed and precision, builds the input and the model, and writes the run's config and
    labels into `run_dir`; `config` is resolved (`resolve_data_config`)."""
    _set_up(config)
    os.makedirs(run_dir, exist_ok=True)
    tokenizer = caption_tokenizer.tokenizer_for_run(config, run_dir, build=True)
    options = pipeline.PipelineOptions.from_config(config, tokenizer)
    labels = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.LABELS]
    data = _datasets(config, options, distribution, labels)
    with distribution.scope():
        model = distribution.prepare_model(_model(config, options.spec, len(labels)))
    logging.info("Model %s: %d parameters", model.name, model.count_params())
    paths = run_folder.RunPaths(run_dir)
    os.makedirs(paths.checkpoints, exist_ok=True)
    config_lib.save_run_config(config, run_dir)
    run_folder.save_labels(config.data.dir, run_dir)
    return Run(config, distribution, data, model, paths)


# Keras's warning at the end of the first validation pass, harmless here: the validation data is one pass
# of unknown length (clips cut into views), which Keras's TensorFlow trainer runs to its end, every batch
# used, and then knows the length of. The training input, endless, is never the one that runs out.
_VALIDATION_RAN_OUT = "Your input ran out of data"


def fit(run: Run, extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
    """Fits `run.model` in phases (`finetune.phases`): the backbone frozen for the first epochs, then all of it.

    Each phase keeps its backup until the whole fit is done, so a rerun after a crash skips the
    finished phases (their final state restored) and resumes the interrupted one where its last epoch
    ended. `extra_callbacks` come first in every phase's callbacks.
    """
    model, config, data, paths = run.model, run.config, run.data, run.paths
    val_inputs = None if data.val is None else pipeline.model_inputs(data.val, model)
    backbone = finetune.find_backbone(model)
    frozen_epochs = config.train.backbone_frozen_epochs if backbone is not None else 0  # audio/text only: one fit
    nan_guard = callbacks_lib.StopOnNaN(config.train)
    for first, end, backbone_trainable in finetune.phases(config.train.epochs, frozen_epochs):
        if backbone is not None:
            backbone.trainable = backbone_trainable
        backup = callbacks_lib.Backup(os.path.join(paths.backup, f"epochs_{first}_{end}"))
        with run.distribution.scope():
            _compile(model, config, backbone if backbone_trainable else None, data.steps_per_epoch, first)
            done = backup.restore(model)
        start = first if done is None else done
        if start >= end:  # finished before the interruption
            continue
        callbacks = callbacks_lib.training_callbacks(config, paths, model, has_validation=data.val is not None)
        try:
            # Endless, and `steps_per_epoch` given to `fit`: at the end of a dataset of unknown length,
            # Keras 3's TensorFlow trainer makes one more call, which raises "out of data" but has still
            # incremented `optimizer.iterations`, so the schedule would run one step ahead per epoch.
            # `shuffle=False`: the pipeline shuffles; Keras cannot shuffle a dataset, and warns if asked to.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", _VALIDATION_RAN_OUT, UserWarning)
                model.fit(
                    pipeline.model_inputs(data.train(start), model, data.class_weights), shuffle=False,
                    steps_per_epoch=data.steps_per_epoch, validation_data=val_inputs, initial_epoch=start,
                    epochs=end, callbacks=[*extra_callbacks, *callbacks, nan_guard, backup],
                    verbose=1 if sys.stderr.isatty() else 2,
                )
        except tf.errors.DataLossError as error:
            raise pipeline.corrupt_shard_error(config.data.dir, error) from error
        nan_guard.raise_if_stopped()
        if model.stop_training:  # early stopping ends the run, later phases included
            break
    shutil.rmtree(paths.backup, ignore_errors=True)


def _compile(model: keras.Model, config, trained_backbone, steps_per_epoch: int, first_epoch: int) -> None:
    """Compiles `model` with the recipe's optimizer, its schedule at `first_epoch`; the variables of
    `trained_backbone` (if any) get the backbone learning rate."""
    optimizer = optimization.make_optimizer(config.train, steps_per_epoch, first_step=first_epoch * steps_per_epoch)
    if trained_backbone is not None:
        optimizer.scale_variables(trained_backbone.trainable_variables)
    num_classes = model.output[tensors.CLASSES].shape[-1]
    model.compile(
        optimizer=optimizer,
        loss={name: optimization.SmoothedCrossentropy(config.train.label_smoothing) for name in model.output},
        jit_compile=_JIT_COMPILE[str(config.train.jit_compile).lower()],
        loss_weights={name: 1.0 if name == tensors.CLASSES else config.model.aux_loss_weight for name in model.output},
        metrics={
            tensors.CLASSES: [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(
                    k=min(config.eval.top_k, num_classes), name="top_k_accuracy"),
                optimization.BalancedAccuracy(num_classes),  # its counts: the dashboards' confusion matrix
            ]
        },
    )


def train(config: ml_collections.ConfigDict, workdir: str) -> keras.Model:
    """Trains the model `config` describes; writes everything into `workdir`; returns the model.

    In a multi-worker run (`TF_CONFIG`), every worker runs this; only the chief writes into `workdir`,
    the others into a temporary folder of their own (`strategy.Distribution.run_dir`). Every worker logs
    a checksum of its final trainable weights, so that their logs show they ended identical.
    """
    config = resolve_data_config(config)
    distribution = strategy_lib.make_distribution(config.train.strategy)  # before any TensorFlow op runs
    with distribution.run_dir(workdir) as run_dir:
        if run_dir != workdir:
            _resume_from_chief(workdir, run_dir)
        run = start_run(config, run_dir, distribution)
        fit(run)
        with fileio.atomic_path(run.paths.model) as tmp:
            run.model.save(tmp)  # every worker saves (the tf.distribute convention); the others into their temp folder
    logging.info("Saved %s; %s's final trainable weights: sha256 %s", run.paths.model, distribution.task,
                 trainable_weights_checksum(run.model))
    return run.model


def _resume_from_chief(workdir: str, run_dir: str) -> None:
    """A worker other than the chief resumes from the chief's backup when it can see it (a shared
    workdir), so that all workers restore the same state; otherwise from its own."""
    chief, own = run_folder.RunPaths(workdir).backup, run_folder.RunPaths(run_dir).backup
    if os.path.isdir(chief):
        shutil.rmtree(own, ignore_errors=True)
        shutil.copytree(chief, own)


def trainable_weights_checksum(model: keras.Model) -> str:
    """SHA-256 of the model's trainable weights (their values, in order): equal checksums, equal weights.

    Replicas trained in step hold equal trainable weights; the batch-normalization moving statistics
    are not in the sum, since under tf.distribute each replica keeps its own (Keras 3 creates them with
    aggregation "none"), computed from the clips it was given.
    """
    digest = hashlib.sha256()
    for weight in model.trainable_weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    return digest.hexdigest()
