"""`videofusion pretrain`: config + workdir → encoders pretrained on every training clip, labels unused.

The model is `models.pretraining.build_pretraining_model` (the encoders of `config.model`, projection
heads, a learnt temperature), the loss `contrastive.CrossModalInfoNCE`, the input the training
pipeline with its augmentations over all the train split's clips, the unlabeled ones included
(`pipeline.ALL_CLIPS`), `pretrain.views_per_clip` examples per clip (the loss pairs a clip's views by
their `clip_id`). The recipe is `config.train`'s (schedule, clipping, precision, strategy, seed)
with `config.pretrain`'s epochs, batch size, learning rate and weight decay. Like `train`, it runs
under every strategy and the JAX backend, resumes from `WORKDIR/backup` after a kill, saves
`checkpoints/last.keras` each epoch and `WORKDIR/model.keras` at the end, and logs to TensorBoard
the loss, the temperature and, on the val split after every epoch, cross-modal retrieval recall@1 and
@5 of every ordered pair of modalities (`audio_to_video_recall_at_1`: the share of val clips whose
audio finds its own video first among the val clips' videos; chance 1/N).

`train` with `model.init_from=WORKDIR` then starts from these encoders (`models/transfer.py`).

Example:

>>> from videofusion.config import demo_config
>>> model = pretrain(demo_config(), "runs/demo_pretrain")  # doctest: +SKIP
"""

import dataclasses
import itertools
import os
import shutil
import sys
from typing import Dict, List

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from videofusion import config as config_lib
from videofusion import fileio, run_folder
from videofusion.contract import modalities, prepared_folder, tensors
from videofusion.data import caption_tokenizer, pipeline
from videofusion.evaluation import evaluate, retrieval
from videofusion.models import FrameAugment, SpecAugment, optimization, pretraining
from videofusion.training import callbacks as callbacks_lib
from videofusion.training import contrastive, dashboards, train
from videofusion.training import strategy as strategy_lib

RECALL_KS = (1, 5)


def recipe(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config.train` with `config.pretrain`'s epochs, batch size, learning rate and weight decay."""
    train_cfg = ml_collections.ConfigDict(config.train.to_dict())
    for field in ("epochs", "batch_size", "learning_rate", "weight_decay"):
        train_cfg[field] = config.pretrain[field]
    return train_cfg


class Temperature(keras.callbacks.Callback):
    """Adds the learnt `temperature` to each epoch's logs (before TensorBoard, which then writes it)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["temperature"] = self.model.get_layer(pretraining.SCALE_LAYER).current_temperature()


class RetrievalValidation(keras.callbacks.Callback):
    """After every epoch, cross-modal recall@k on `dataset`'s clips (their views' embeddings averaged per
    video), added to the logs as `val_<query>_to_<gallery>_recall_at_<k>` (before TensorBoard)."""

    def __init__(self, dataset: tf.data.Dataset, names: List[str]):
        super().__init__()
        self._dataset = dataset
        self._names = names
        self._embed = None

    def on_train_begin(self, logs=None):
        self._embed = dashboards.output_function(self.model, pretraining.EMBEDDINGS)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({f"val_{key}": value for key, value in self.recalls().items()})

    def recalls(self) -> Dict[str, float]:
        """`{<query>_to_<gallery>_recall_at_<k>: share}` over the dataset's videos."""
        embeddings, video_ids = [], []
        for features, _ in self._dataset:
            embeddings.append(self._embed({k: features[k].numpy() for k in self.model.input}))
            video_ids.append(features[tensors.VIDEO_ID].numpy())
        embeddings, video_ids = np.concatenate(embeddings), np.concatenate(video_ids)
        per_video, _ = evaluate.average_views(embeddings, np.zeros(len(video_ids), np.int64), video_ids)
        return {
            f"{self._names[a]}_to_{self._names[b]}_recall_at_{k}": retrieval.recall_at_k(
                per_video[:, a], per_video[:, b], k)
            for a, b in itertools.permutations(range(len(self._names)), 2) for k in RECALL_KS
        }


class ViewsError(ValueError):
    """`pretrain.views_per_clip` does not divide the batch."""


def _datasets(config, options, distribution, batch_size: int):
    all_clips = dataclasses.replace(options, clips=pipeline.ALL_CLIPS)  # the labels are unused: any clip
    views = dataclasses.replace(all_clips, views_per_clip=config.pretrain.views_per_clip, clip_ids=True)

    def train_from(epoch: int) -> tf.data.Dataset:
        return distribution.prepare_dataset(pipeline.training_epochs(
            config.data.dir, views, batch_size, config.train.seed, first_epoch=epoch))

    try:
        val = pipeline.make_dataset(config.data.dir, "val", all_clips, config.eval.batch_size, training=False)
    except FileNotFoundError:
        logging.warning("No val split in %s: pretraining without retrieval validation", config.data.dir)
        val = None
    return train_from, val


def pretrain(config: ml_collections.ConfigDict, workdir: str) -> keras.Model:
    """Pretrains the encoders `config` describes on its data's training clips; writes everything into
    `workdir` (config.json, TensorBoard logs, checkpoints, model.keras); returns the model."""
    config = train.resolve_data_config(config)
    if config.train.data_service:
        raise ValueError(f"train.data_service={config.train.data_service!r}: `videofusion pretrain` reads its input "
                         "on this machine (only `videofusion train` takes it from a tf.data service); leave it empty")
    distribution = strategy_lib.make_distribution(config.train.strategy)
    with distribution.run_dir(workdir) as run_dir:
        if run_dir != workdir:  # a worker other than the chief resumes where the chief's backup says
            train.resume_from_chief(workdir, run_dir)
        train.set_up(config)  # seed, precision
        os.makedirs(run_dir, exist_ok=True)
        tokenizer = caption_tokenizer.tokenizer_for_run(config, run_dir, build=True)
        options = pipeline.PipelineOptions.from_config(config, tokenizer)
        batch_size = config.pretrain.batch_size * distribution.replicas
        views = config.pretrain.views_per_clip
        if views < 1 or config.pretrain.batch_size % views:
            raise ViewsError(f"pretrain.views_per_clip={views} must be 1 or more and divide "
                             f"pretrain.batch_size={config.pretrain.batch_size} (a clip's views share a batch)")
        train_from, val = _datasets(config, options, distribution, batch_size)
        clips = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.COUNTS]["train"]
        steps = optimization.steps_per_epoch(clips * views, batch_size)
        logging.info("Pretraining on %d training clips (labels unused), %d view(s) each, global batch %d: "
                     "%d steps per epoch", clips, views, batch_size, steps)
        with distribution.scope():
            model = distribution.prepare_model(pretraining.build_pretraining_model(
                config.model, train.input_shapes(config, options.spec), config.pretrain.projection_dim,
                config.pretrain.temperature, FrameAugment.from_config(config.augment),
                SpecAugment.from_config(config.augment), seed=config.train.seed))
            loss = contrastive.CrossModalInfoNCE(config.pretrain.within_modal_weight)
            model.compile(optimizer=optimization.make_optimizer(recipe(config), steps),
                          loss={pretraining.EMBEDDINGS: loss},
                          jit_compile=optimization.jit_compile(config.train))
        paths = run_folder.RunPaths(run_dir)
        config_lib.save_run_config(config, run_dir)
        _fit(model, config, paths, train_from, val, steps)
        with fileio.atomic_path(paths.model) as tmp:
            model.save(tmp)
    logging.info("Saved %s (temperature %.4f)", paths.model,
                 model.get_layer(pretraining.SCALE_LAYER).current_temperature())
    return model


def clip_id_targets(dataset: tf.data.Dataset, model: keras.Model) -> tf.data.Dataset:
    """Training batches → (the features `model` takes, each clip's `tensors.CLIP_ID` as the target of the
    loss, which pairs the views of a clip by it; the labels are unused)."""
    inputs = tuple(model.input)
    return dataset.map(lambda features, labels: ({k: features[k] for k in inputs},
                                                 {pretraining.EMBEDDINGS: features[tensors.CLIP_ID]}))


def _fit(model, config, paths: run_folder.RunPaths, train_from, val, steps: int) -> None:
    backup = callbacks_lib.Backup(os.path.join(paths.backup, "pretrain"))
    done = backup.restore(model) or 0
    if done >= config.pretrain.epochs:
        return
    names = sorted(modalities.parse(config.model.modalities))
    nan_guard = callbacks_lib.StopOnNaN(recipe(config))
    measured = [Temperature()]
    if val is not None:
        measured.append(RetrievalValidation(val, names))
    os.makedirs(paths.checkpoints, exist_ok=True)
    callbacks = [*measured, keras.callbacks.TensorBoard(paths.tensorboard),
                 callbacks_lib.Checkpoints(paths.checkpoints), nan_guard, backup]
    model.fit(clip_id_targets(train_from(done), model), steps_per_epoch=steps, initial_epoch=done,
              epochs=config.pretrain.epochs, callbacks=callbacks, shuffle=False,
              verbose=1 if sys.stderr.isatty() else 2)
    nan_guard.raise_if_stopped()
    shutil.rmtree(paths.backup, ignore_errors=True)
