"""TensorBoard dashboards beyond Keras's loss, accuracy and learning rate: speed, mistakes, comparison.

Keras's `TensorBoard` callback writes the runs `train` and `validation` under `WORKDIR/tensorboard`. The
callbacks here add:

- `Throughput`: `clips_per_second` in each epoch's logs (training clips over the epoch's training time,
  validation excluded), so that Keras's callback writes it as `epoch_clips_per_second` in run `train`,
  next to the loss, and `History` keeps it. It must come before the `TensorBoard` callback.
- `Dashboards`, in `WORKDIR/tensorboard` itself (the run `.` there; `NAME/tensorboard` under
  `make tensorboard`):
  - once: the resolved config as JSON in the text tab (`config`), and the hparams plugin's session,
    named after the workdir, with the config's main fields (`HPARAM_FIELDS`);
  - at each validation: `validation/confusion_matrix` (`confusion.render` of the validation pass's
    clips, each view on its own as `val_accuracy` counts them, read from the counts of the
    `optimization.BalancedAccuracy` metric that the pass updated: no second pass over the val split;
    `videofusion evaluate` scores each video by its views' mean softmax instead); for a few val clips
    (of distinct classes when there are) `validation/clip_<i>` (the frames the model was shown, side
    by side, the true and predicted labels written under them), `validation/clip_<i>_audio` (the
    sound of those frames) and `validation/predictions` (a table: clip, video, true, predicted,
    probability); and the hparams metrics `hparams/val_accuracy`, `hparams/val_loss`,
    `hparams/clips_per_second`, which the hparams table shows for every run side by side.

The sample clips cost one small inference call per validation (compiled once, on this process alone:
`output_function`) and the images: about 0.2 s on the demo. `train.validation_dashboards=False`
leaves out the confusion matrix and the sample clips (the hparams metrics, config and session stay).

Example (what `callbacks.training_callbacks` does):

>>> throughput = Throughput(train_clips=1200)
>>> dashboards = Dashboards(config, "runs/demo", accuracy_key="val_accuracy")  # doctest: +SKIP
>>> model.fit(..., callbacks=[throughput, keras.callbacks.TensorBoard(logdir), dashboards])  # doctest: +SKIP
>>> from videofusion.config import base_config
>>> hparams(base_config())["model.fusion"]
'cross_attention'
"""

import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional

import cv2
import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hp

from videofusion import run_folder
from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import caption_tokenizer, pipeline, transforms
from videofusion.evaluation import confusion
from videofusion.models import optimization

CLIPS_PER_SECOND = "clips_per_second"
# The config fields that the hparams table compares runs by.
HPARAM_FIELDS = (
    "data.dir", "data.num_frames", "data.stride", "data.image_size",
    "model.modalities", "model.video_encoder", "model.fusion", "model.frame_backbone", "model.embed_dim",
    "train.epochs", "train.batch_size", "train.learning_rate", "train.lr_schedule", "train.weight_decay",
    "train.label_smoothing", "train.precision", "train.seed",
)
# The hparams table's metrics: written by `Dashboards` into its own run at each validation.
METRICS = {"hparams/val_accuracy": "val accuracy", "hparams/val_loss": "val loss",
           "hparams/clips_per_second": "clips/s"}
_SCAN_RECORDS = 256  # val records looked at to find sample clips of distinct classes
_LINE = 20  # pixels of a line of text under a clip strip


def hparams(config) -> Dict[str, object]:
    """`{field: value}` of the config's `HPARAM_FIELDS`."""
    values = {}
    for field in HPARAM_FIELDS:
        section, key = field.split(".")
        if key not in config[section]:
            raise KeyError(f"dashboards.HPARAM_FIELDS names {field}, which the config does not have")
        values[field] = config[section][key]
    return values


class Throughput(keras.callbacks.Callback):
    """Adds `clips_per_second` (the epoch's `train_clips` over its training time) to the epoch's logs."""

    def __init__(self, train_clips: int):
        super().__init__()
        self._train_clips = train_clips
        self._start = self._end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._end = time.perf_counter(), None

    def on_test_begin(self, logs=None):  # fit's validation: the training part of the epoch is over
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._start is not None:
            seconds = (self._end or time.perf_counter()) - self._start
            logs[CLIPS_PER_SECOND] = self._train_clips / max(seconds, 1e-9)


@dataclasses.dataclass
class _SampleClip:
    inputs: Dict[str, np.ndarray]  # the model's inputs of the clip's views, leading axis views
    frames: np.ndarray  # uint8 [num_frames, size, size, 3]: its first view's frames
    audio: np.ndarray  # float32 [samples]: the sound of those frames
    label: int
    video: str


def _sample_records(data_dir: str, count: int) -> List[bytes]:
    """Up to `count` serialized val clips, of distinct classes first (in file order)."""
    chosen, rest, seen = [], [], set()
    dataset = tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "val")).take(_SCAN_RECORDS)
    for serialized in dataset:
        label = int(record_schema.parse_identity(serialized)[record_schema.LABEL_INDEX])
        if label == record_schema.UNLABELED_INDEX:
            continue
        (rest if label in seen else chosen).append(serialized.numpy())
        seen.add(label)
        if len(chosen) == count:
            break
    return (chosen + rest)[:count]


def _sample_clip(serialized: bytes, options: pipeline.PipelineOptions, input_names) -> _SampleClip:
    features, _ = pipeline.eval_examples(tf.constant(serialized), tf.constant(0, tf.int64), options)
    parsed = record_schema.parse_clip(serialized)
    num_available = tf.shape(parsed[record_schema.IMAGES])[0]
    start = transforms.eval_clip_starts(num_available, options.spec, options.num_clips)[0]
    audio = transforms.audio_window(parsed[record_schema.WAVEFORM], start, options.spec, num_available=num_available)
    return _SampleClip(
        inputs={k: features[k].numpy() for k in input_names},
        frames=features[tensors.FRAMES][0].numpy(),
        audio=np.clip(audio.numpy(), -1.0, 1.0),
        label=int(parsed[record_schema.LABEL_INDEX]),
        video=os.path.basename(parsed[record_schema.FILENAME].numpy().decode("utf-8")),
    )


def clip_strip(frames: np.ndarray, lines: List[str], colour=(0, 0, 0), min_side: int = 96) -> np.ndarray:
    """uint8 `[t, s, s, 3]` frames side by side (enlarged to at least `min_side` pixels), with `lines`
    of text written under them (`_LINE` pixels each).

    >>> clip_strip(np.zeros((4, 32, 32, 3), np.uint8), ["true: a", "predicted: b"]).shape
    (136, 384, 3)
    """
    scale = max(1, -(-min_side // frames.shape[1]))
    strip = np.concatenate(list(frames.repeat(scale, axis=1).repeat(scale, axis=2)), axis=1)
    caption = np.full((_LINE * len(lines), strip.shape[1], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(caption, line, (4, _LINE * i + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return np.concatenate([strip, caption], axis=0)


def output_function(model: keras.Model, output: str = tensors.CLASSES) -> Callable[[Dict[str, np.ndarray]], np.ndarray]:
    """`inputs -> float32 [batch, ...]`: the model's output `output` (by default the fused head's softmax),
    compiled (`tf.function` or `jax.jit`).

    Not a distributed step like `predict_on_batch`, which under a `tf.distribute` strategy hands every
    replica the whole batch and gathers across workers: this runs the batch once, of any size, on this
    process alone, so that no other worker has to take part.
    """
    if keras.backend.backend() == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        @jax.jit
        def softmax(trainable, non_trainable, inputs):
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return outputs[output]

        return lambda inputs: np.asarray(softmax(
            [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], inputs
        )).astype(np.float32)
    softmax = tf.function(lambda inputs: model(inputs, training=False)[output], reduce_retracing=True)
    return lambda inputs: softmax(inputs).numpy().astype(np.float32)


def balanced_accuracy_metric(model: keras.Model) -> Optional[optimization.BalancedAccuracy]:
    """The compiled model's `BalancedAccuracy` metric (of the fused head), or None."""
    pending = list(model.metrics)
    while pending:
        metric = pending.pop(0)
        if isinstance(metric, optimization.BalancedAccuracy):
            return metric
        pending.extend(getattr(metric, "metrics", []))
    return None


class Dashboards(keras.callbacks.Callback):
    """Writes the config, hparams, confusion matrix and sample clips of a `videofusion train` run.

    Args:
      config: the run's resolved config.
      workdir: the run's folder (its `labels.txt` and, for text models, vocabulary are read there).
      accuracy_key: the epoch logs' key of the validation accuracy (`callbacks.validation_accuracy_key`).
      num_clips: sample clips shown at each validation.
    """

    def __init__(self, config, workdir: str, accuracy_key: str, num_clips: int = 3):
        super().__init__()
        self._config = config
        self._workdir = workdir
        self._accuracy_key = accuracy_key
        self._num_clips = num_clips
        self._labels = run_folder.load_labels(workdir)
        self._writer = None
        self._samples: Optional[List[_SampleClip]] = None
        self._options = None
        self._softmax = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(run_folder.RunPaths(self._workdir).tensorboard)
        self._options = pipeline.PipelineOptions.from_config(
            self._config, caption_tokenizer.tokenizer_for_run(self._config, self._workdir), self.model
        )
        self._softmax = output_function(self.model)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:  # once per run: not again in a later fine-tuning phase or after resuming
            self._write_run_summaries()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not any(key.startswith("val_") for key in logs):
            return
        start = time.perf_counter()
        with self._writer.as_default(step=epoch):
            for tag, key in (("hparams/val_accuracy", self._accuracy_key), ("hparams/val_loss", "val_loss"),
                             ("hparams/clips_per_second", CLIPS_PER_SECOND)):
                if key in logs:
                    tf.summary.scalar(tag, float(logs[key]))
            if self._config.train.validation_dashboards:
                self._write_confusion_matrix()
                self._write_sample_clips()
        self._writer.flush()
        logging.info("Dashboards of epoch %d written in %.1f s", epoch + 1, time.perf_counter() - start)

    def _write_run_summaries(self) -> None:
        with self._writer.as_default(step=0):
            tf.summary.text("config", f"```json\n{self._config.to_json(indent=2, sort_keys=True)}\n```",
                            description="The resolved config of the run (its config.json).")
            hp.hparams_config(hparams=[hp.HParam(field) for field in HPARAM_FIELDS],
                              metrics=[hp.Metric(tag, display_name=name) for tag, name in METRICS.items()])
            hp.hparams(hparams(self._config), trial_id=os.path.basename(os.path.abspath(self._workdir)))
        self._writer.flush()

    def _write_confusion_matrix(self) -> None:
        metric = balanced_accuracy_metric(self.model)
        if metric is None:  # a model compiled without it (not by `train`)
            return
        tf.summary.image("validation/confusion_matrix",
                         confusion.render(metric.confusion_matrix(), self._labels)[np.newaxis],
                         description="The validation pass's clips (each view on its own): rows are true classes, "
                                     "columns predicted ones.")

    def _write_sample_clips(self) -> None:
        if self._samples is None:
            self._samples = [_sample_clip(serialized, self._options, list(self.model.input))
                             for serialized in _sample_records(self._config.data.dir, self._num_clips)]
        if not self._samples:
            return
        batch = {k: np.concatenate([clip.inputs[k] for clip in self._samples]) for k in self._samples[0].inputs}
        means = self._softmax(batch).reshape(len(self._samples), -1, len(self._labels)).mean(axis=1)
        rows = ["| clip | video | true | predicted | probability |", "|---|---|---|---|---|"]
        for i, (clip, mean) in enumerate(zip(self._samples, means)):
            predicted, true = self._labels[int(mean.argmax())], self._labels[clip.label]
            lines = [f"true: {true}", f"predicted: {predicted} ({mean.max():.2f})"]
            colour = (0, 130, 0) if predicted == true else (200, 0, 0)
            about = f"{clip.video}, true label {true}"
            tf.summary.image(f"validation/clip_{i}", clip_strip(clip.frames, lines, colour)[np.newaxis],
                             description=f"{about}: the frames the model was shown, its prediction under them.")
            tf.summary.audio(f"validation/clip_{i}_audio", clip.audio[np.newaxis, :, np.newaxis],
                             self._options.spec.sample_rate, description=f"{about}: the sound of those frames.")
            rows.append(f"| {i} | {clip.video} | {true} | {predicted} | {mean.max():.3f} |")
        tf.summary.text("validation/predictions", "\n".join(rows))
