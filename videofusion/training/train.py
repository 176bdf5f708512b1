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
from videofusion.contract import modalities, prepared_folder
from videofusion.data import caption_tokenizer, labeled_subset, pipeline, service
from videofusion.data.transforms import ClipSpec
from videofusion.models import InputShapes, build_classifier, finetune, optimization, transfer
from videofusion.training import callbacks as callbacks_lib
from videofusion.training import compilation_cache, pseudo_labels
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
        spec.num_frames, spec.image_size, spec.audio_samples, spec.log_mel,
        text_length=config.data.text_length, vocabulary_size=config.data.vocabulary_size,
        frame_size=spec.frame_size,
    )


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LABELED_CLIPS_FILE = "labeled_clips.txt"  # with data.labeled_fraction < 1: the clips that kept their label
# The fields a run fine-tuned from a pretrained one (`model.init_from`) must share with it, per modality.
INIT_FROM_FIELDS = {
    modalities.VIDEO: ("model.video_encoder", "model.frame_backbone", "model.embed_dim", "data.image_size"),
    modalities.AUDIO: ("model.embed_dim", "data.mel_bins"),
    modalities.TEXT: ("model.embed_dim", "data.vocabulary_size", "data.text_length"),
}


def set_up(config: ml_collections.ConfigDict) -> None:
    """Seeds every random generator from `train.seed` and sets the precision policy (checking both
    fields); under JAX, keeps compiled programs in `train.compilation_cache`."""
    keras.utils.set_random_seed(config.train.seed)
    compilation_cache.use(config.train.compilation_cache)
    if config.train.precision not in PRECISIONS:
        raise ValueError(f"train.precision={config.train.precision!r} is not one of {', '.join(PRECISIONS)}")
    if str(config.train.jit_compile).lower() not in optimization.JIT_COMPILE:
        raise ValueError(f"train.jit_compile={config.train.jit_compile!r} is not one of auto, true, false")
    keras.mixed_precision.set_global_policy(config.train.precision)


@dataclasses.dataclass
class Data:
    """A run's input: `train(epoch)` gives the endless training batches from `epoch` on."""

    train: Callable[[int], tf.data.Dataset]
    val: Optional[tf.data.Dataset]
    steps_per_epoch: int
    class_weights: Optional[List[float]]
    train_clips: int  # the labeled training clips an epoch passes over


def _datasets(config, options: pipeline.PipelineOptions, distribution: strategy_lib.Distribution,
              labels: List[str], run_dir: str) -> Data:
    replicas = distribution.replicas
    batch_size = config.train.batch_size * replicas
    info = prepared_folder.read_dataset_info(config.data.dir)
    examples = prepared_folder.labeled_counts(info)["train"]
    if examples == 0:
        raise ValueError(f"data.dir={config.data.dir} has no labeled training clips "
                         f"({info[prepared_folder.COUNTS]['train']} unlabeled): label some, or pretrain on them "
                         "(`videofusion pretrain`)")
    if config.data.labeled_fraction < 1:
        keys = labeled_subset.labeled_subset(config.data.dir, config.data.labeled_fraction, config.train.seed)
        with fileio.atomic_open(os.path.join(run_dir, LABELED_CLIPS_FILE), "w", encoding="utf-8") as f:
            f.write("".join(f"{key}\n" for key in keys))
        logging.info("data.labeled_fraction=%g: %d of the %d labeled training clips keep their label (%s)",
                     config.data.labeled_fraction, len(keys), examples, LABELED_CLIPS_FILE)
        options, examples = dataclasses.replace(options, labeled_keys=tuple(keys)), len(keys)
    if config.train.pseudo_labels_from:
        options, examples = _with_pseudo_labels(config, options, labels, run_dir)

    data_service = _data_service(config, distribution)

    def train_from(epoch: int) -> tf.data.Dataset:
        return distribution.prepare_dataset(pipeline.training_epochs(
            config.data.dir, options, batch_size, config.train.seed, first_epoch=epoch, data_service=data_service))

    try:
        val_ds = distribution.prepare_dataset(
            pipeline.make_dataset(config.data.dir, "val", options, batch_size, training=False)
        )
    except FileNotFoundError:
        logging.warning("No val split in %s: training without validation", config.data.dir)
        val_ds = None
    steps = optimization.steps_per_epoch(examples, batch_size)
    logging.info("%d training clips, global batch %d (%d replica(s)): %d steps per epoch", examples, batch_size,
                 replicas, steps)
    return Data(train_from, val_ds, steps, _class_weights(config, labels), examples)


def _data_service(config, distribution: strategy_lib.Distribution) -> str:
    """`train.data_service` checked: "" (local input), or the address of a dispatcher that answers."""
    address = config.train.data_service
    if not address:
        return ""
    if distribution.multi_worker:
        raise ValueError(f"train.data_service={address!r} feeds one training process; under "
                         "train.strategy=multi_worker each worker would get batches of its own, not its part of "
                         "the same ones: leave train.data_service empty there")
    service.wait_for_dispatcher(address)
    logging.info("Training input from the tf.data service at %s (the validation input is read here)", address)
    return address


def _with_pseudo_labels(config, options: pipeline.PipelineOptions, labels: List[str], run_dir: str):
    """(`options` training on the labeled clips and those `train.pseudo_labels_from` labels, how many)."""
    teacher = config.train.pseudo_labels_from
    pseudo_labels.check_teacher(teacher, labels)
    labeled = {key: label for label, keys in labeled_subset.labeled_train_keys(config.data.dir).items()
               for key in keys}
    if options.labeled_keys is not None:
        labeled = {key: labeled[key] for key in options.labeled_keys}
    scored = pseudo_labels.teacher_scores(teacher, config.data.dir, skip=set(labeled))
    chosen = pseudo_labels.most_confident(scored, config.train.pseudo_label_fraction)
    pseudo_labels.write_csv(os.path.join(run_dir, pseudo_labels.PSEUDO_LABELS_FILE), chosen, labels)
    logging.info("train.pseudo_labels_from=%s: %d of the %d training clips without a label here join the %d "
                 "labeled ones with its labels (confidence %.2f and more; %s)", teacher, len(chosen), len(scored),
                 len(labeled), chosen[-1][2] if chosen else 1.0, pseudo_labels.PSEUDO_LABELS_FILE)
    clip_labels = tuple(sorted(labeled.items())) + tuple((key, label) for key, label, _ in chosen)
    return dataclasses.replace(options, clip_labels=clip_labels, labeled_keys=None), len(clip_labels)


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


@dataclasses.dataclass
class Run:
    """What `fit` needs: the resolved config, the distribution, the input, the model and the run's folder."""

    config: ml_collections.ConfigDict
    distribution: strategy_lib.Distribution
    data: Data
    model: keras.Model
    paths: run_folder.RunPaths
    pretrained_layers: List[keras.layers.Layer] = dataclasses.field(default_factory=list)  # model.init_from's


def start_run(config: ml_collections.ConfigDict, run_dir: str, distribution: strategy_lib.Distribution) -> Run:
    """Sets the seed and precision, builds the input and the model, and writes the run's config and
    labels into `run_dir`; `config` is resolved (`resolve_data_config`)."""
    set_up(config)
    os.makedirs(run_dir, exist_ok=True)
    if config.train.linear_probe and not config.model.init_from:
        raise InitFromError("train.linear_probe=True needs model.init_from=RUN (a `videofusion pretrain` run; "
                            "one pretrained for 0 epochs probes random encoders)")
    if config.model.init_from:
        check_init_from(config)
    tokenizer = _run_tokenizer(config, run_dir)
    options = pipeline.PipelineOptions.from_config(config, tokenizer)
    labels = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.LABELS]
    data = _datasets(config, options, distribution, labels, run_dir)
    with distribution.scope():
        model = distribution.prepare_model(
            build_classifier(config, input_shapes(config, options.spec), len(labels)))
        pretrained = _init_from(model, config) if config.model.init_from else []
    logging.info("Model %s: %d parameters", model.name, model.count_params())
    paths = run_folder.RunPaths(run_dir)
    os.makedirs(paths.checkpoints, exist_ok=True)
    config_lib.save_run_config(config, run_dir)
    run_folder.save_labels(config.data.dir, run_dir)
    return Run(config, distribution, data, model, paths, pretrained)


def _run_tokenizer(config, run_dir: str):
    """The caption tokenizer of a text model: the pretrained run's vocabulary with `model.init_from` (its
    text encoder's embeddings index it), else one learnt from the training captions."""
    if config.model.init_from and modalities.TEXT in init_from_modalities(config):
        caption_tokenizer.save_vocabulary(caption_tokenizer.load_vocabulary(config.model.init_from), run_dir)
        return caption_tokenizer.tokenizer_for_run(config, run_dir)
    return caption_tokenizer.tokenizer_for_run(config, run_dir, build=True)


class InitFromError(ValueError):
    """`model.init_from` names a run this one cannot start from; the message says which field differs."""


def init_from_modalities(config) -> tuple:
    """The modalities whose encoders `model.init_from` loads: `model.init_from_modalities`, or all of
    the run's; refuses (`InitFromError`) one the run does not have."""
    chosen = modalities.parse(config.model.modalities)
    if not config.model.get("init_from_modalities"):
        return chosen
    try:
        loaded = modalities.parse(config.model.init_from_modalities, "model.init_from_modalities")
    except ValueError as error:
        raise InitFromError(str(error)) from error
    extra = [name for name in loaded if name not in chosen]
    if extra:
        raise InitFromError(f"model.init_from_modalities={config.model.init_from_modalities!r}: this run has no "
                            f"{', '.join(extra)} encoder (model.modalities={config.model.modalities!r})")
    return loaded


def check_init_from(config) -> None:
    """Refuses (`InitFromError`) a `model.init_from` that is not a finished `pretrain` run, lacks one of
    the modalities it is to load (`init_from_modalities`), or differs in a field of `INIT_FROM_FIELDS`."""
    source = config.model.init_from
    where = f"model.init_from={source}"
    paths = run_folder.RunPaths(source)
    if not os.path.isfile(paths.model):
        raise InitFromError(f"{where}: no {paths.model}; run `videofusion pretrain --workdir {source}` first")
    theirs = config_lib.load_run_config(source)
    chosen, pretrained = init_from_modalities(config), modalities.parse(theirs.model.modalities)
    missing = [name for name in chosen if name not in pretrained]
    if missing:
        raise InitFromError(f"{where}: model.modalities={config.model.modalities!r} but the run was pretrained "
                            f"on {theirs.model.modalities!r} (no {', '.join(missing)} encoder there)")
    for name in chosen:
        for field in INIT_FROM_FIELDS[name]:
            section, key = field.split(".")
            if config[section][key] != theirs[section][key]:
                raise InitFromError(f"{where}: {field}={config[section][key]!r} here but "
                                    f"{theirs[section][key]!r} in the pretrained run")


def _init_from(model: keras.Model, config) -> List[keras.layers.Layer]:
    """Loads the encoders of the pretrained run `config.model.init_from` (`check_init_from`) into `model`;
    returns the layers loaded; refuses (`InitFromError`) a layer whose weights do not fit."""
    where = f"model.init_from={config.model.init_from}"
    paths = run_folder.RunPaths(config.model.init_from)
    inputs = [name for modality in init_from_modalities(config) for name in modalities.INPUTS[modality]]
    try:
        loaded, new = transfer.load_encoders(model, keras.models.load_model(paths.model, compile=False), inputs)
    except transfer.IncompatibleEncoderError as error:
        raise InitFromError(f"{where}: {error}") from error
    logging.info("%s: loaded %d layers (%s); new: %s", where, len(loaded), ", ".join(loaded), ", ".join(new))
    return [model.get_layer(name) for name in loaded]


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
    frozen = pretrained_parts(run)
    frozen_epochs = config.train.epochs if config.train.linear_probe else config.train.backbone_frozen_epochs
    if not frozen:  # nothing pretrained: one fit
        frozen_epochs = 0
    nan_guard = callbacks_lib.StopOnNaN(config.train)
    for first, end, pretrained_trainable in finetune.phases(config.train.epochs, frozen_epochs):
        for layer in frozen:
            layer.trainable = pretrained_trainable
        backup = callbacks_lib.Backup(os.path.join(paths.backup, f"epochs_{first}_{end}"))
        with run.distribution.scope():
            optimization.compile_classifier(model, config, frozen if pretrained_trainable else [],
                                              data.steps_per_epoch, first)
            done = backup.restore(model)
        start = first if done is None else done
        if start >= end:  # finished before the interruption
            continue
        callbacks = callbacks_lib.training_callbacks(config, paths, model, data.train_clips,
                                                     has_validation=data.val is not None)
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


def pretrained_parts(run: Run) -> List[keras.layers.Layer]:
    """The layers that the freeze-then-train phases freeze first and then train at
    `train.backbone_learning_rate_scale` × the rate: those loaded by `model.init_from`, else the frame
    backbone (pretrained weights of `model.backbone_weights`, or none: random), else none."""
    if run.pretrained_layers:
        return run.pretrained_layers
    backbone = finetune.find_backbone(run.model)
    return [backbone] if backbone is not None else []


def train(config: ml_collections.ConfigDict, workdir: str) -> keras.Model:
    """Trains the model `config` describes; writes everything into `workdir`; returns the model.

    In a multi-worker run (`TF_CONFIG`), every worker runs this; only the chief writes into `workdir`,
    the others into a temporary folder of their own (`strategy.Distribution.run_dir`). Every worker logs
    a checksum of its final trainable weights, so that their logs show they ended identical.
    """
    if config.train.data_service:  # a mistake is answered before anything else is done
        service.parse_address(config.train.data_service)
    config = resolve_data_config(config)
    if config.model.init_from:  # a mistake is answered before anything else is logged
        check_init_from(config)
    distribution = strategy_lib.make_distribution(config.train.strategy)  # before any TensorFlow op runs
    with distribution.run_dir(workdir) as run_dir:
        if run_dir != workdir:
            resume_from_chief(workdir, run_dir)
        run = start_run(config, run_dir, distribution)
        fit(run)
        with fileio.atomic_path(run.paths.model) as tmp:
            run.model.save(tmp)  # every worker saves (the tf.distribute convention); the others into their temp folder
    logging.info("Saved %s; %s's final trainable weights: sha256 %s", run.paths.model, distribution.task,
                 trainable_weights_checksum(run.model))
    return run.model


def resume_from_chief(workdir: str, run_dir: str) -> None:
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
