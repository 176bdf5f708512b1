"""Serving speed: the exported SavedModel against the Keras model called the same way, on the same clips.

Both sides take the same decoded clips (uint8 frames and the waveform of test videos of the prepared
demo data) and return per-video probabilities:

- `savedmodel`: the export's `serving_default` signature, loaded with `tf.saved_model.load`, as TF
  Serving runs it (all preprocessing inside; its input checks, top-k labels and embedding too).
- `keras_call`, the reference: the same work through the same compiled-call path, one `tf.function`
  that makes the evaluation views of each video by the same code (`transforms.eval_views`), calls the
  Keras model on them (`model(x, training=False)`) and averages the softmax per video.
- `keras_predict`, for information: what a user without the export might run, the views made as above,
  then `model.predict` on them, then the mean per video in numpy. Its per-call set-up (a data adapter,
  an iterator, callbacks) dominates one clip: it is no fair reference for the SavedModel's speed.

Figures, measured interleaved (savedmodel, keras_call, keras_predict, savedmodel, …) after warm-up
calls on every side:

- `ratio_savedmodel_vs_keras_call_p50`, `ratio_savedmodel_vs_keras_call_p95`: the SavedModel's latency of
  one clip over the reference's (goal ≤ 1.0; what the export's extras and the restored function cost);
  `savedmodel_p50_ms`, `savedmodel_p95_ms`, `keras_call_p50_ms`, `keras_call_p95_ms`, the latencies;
- `ratio_savedmodel_vs_keras_call_batch_time`: the time of a batch of `--batch_size` clips, SavedModel
  over the reference (goal ≤ 1.0); `savedmodel_batch_clips_per_s`, `keras_call_batch_clips_per_s`;
- `keras_predict_p50_ms`, `keras_predict_p95_ms`, `keras_predict_batch_clips_per_s`: `model.predict`'s.

The run is `--workdir` (default `runs/demo`, which `make train` writes); without one there, a demo run
is made first in a scratch folder (36 videos, one epoch of `experiments/demo.py`).

    .venv/bin/python benchmarks/bench_serving.py
    .venv/bin/python benchmarks/bench_serving.py --workdir runs/fusion_bottleneck --calls 50

The last line of output is one JSON object with the figures and the settings.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import models  # noqa: E402
from videofusion.contract import prepared_folder, record_schema, tensors  # noqa: E402
from videofusion.data import pipeline, transforms  # noqa: E402
from videofusion.serving import export  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("workdir", os.path.join(REPO, "runs", "demo"), "A trained run (made if missing).")
flags.DEFINE_integer("calls", 30, "Timed calls per side for the one-clip latency.")
flags.DEFINE_integer("batch_calls", 8, "Timed calls per side at --batch_size.")
flags.DEFINE_integer("batch_size", 16, "Clips per call for the throughput figure.")
flags.DEFINE_integer("warmup", 3, "Untimed calls per side first.")
FLAGS = flags.FLAGS


def _cli(*args, cwd):
    subprocess.run([sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, check=True,
                   env=dict(os.environ, PYTHONPATH=REPO))


def make_demo_run(scratch: str) -> str:
    """A one-epoch run of `experiments/demo.py` on 36 fresh demo videos; returns its workdir."""
    logging.info("No run at %s: training a one-epoch demo run in %s", FLAGS.workdir, scratch)
    _cli("demo-data", "--output", "raw", "--num-videos", "36", "--seed", "0", cwd=scratch)
    _cli("prepare", "--manifest", "raw/manifest.csv", "--output", "records", "--short-side", "64", cwd=scratch)
    _cli("train", "--config", os.path.join(REPO, "experiments", "demo.py"), "--workdir", "run",
         f"--config.data.dir={os.path.join(scratch, 'records')}", "--config.train.epochs=1", cwd=scratch)
    return os.path.join(scratch, "run")


def test_clips(data_dir: str, count: int) -> list:
    """`count` decoded test clips `(frames, waveform)`, repeated if the split has fewer."""
    files = prepared_folder.shard_files(data_dir, "test")
    clips = []
    for serialized in tf.data.TFRecordDataset(files).take(count):
        parsed = record_schema.parse_clip(serialized)
        frames = pipeline.decode_frames(parsed[record_schema.IMAGES])
        clips.append((frames.numpy(), parsed[record_schema.WAVEFORM].numpy()))
    return [clips[i % len(clips)] for i in range(count)]


def batch_of(clips: list) -> dict:
    """Clips of equal length (the demo's) as one batch of the signature's inputs."""
    return {"frames": tf.constant(np.stack([c[0] for c in clips])),
            "waveform": tf.constant(np.stack([c[1] for c in clips])),
            "num_frames": tf.constant([-1]), "num_samples": tf.constant([-1])}


class KerasPath:
    """The Keras model behind the same preprocessing code: called in one `tf.function`, or by `predict`."""

    def __init__(self, workdir: str):
        self.config, _, self.model = models.load_run(workdir)
        self.options = pipeline.PipelineOptions.from_config(self.config, model=self.model)
        self.views = self.options.num_clips * self.options.num_crops
        self._inputs = list(self.model.input)
        self.preprocess = tf.function(self._preprocess)
        self.classify = tf.function(self._classify)

    def _preprocess(self, frames, waveform):
        def one(video):
            frames, waveform = video
            return transforms.eval_views(tf.shape(frames)[0], lambda i: tf.gather(frames, i), waveform,
                                         self.options.spec, self.options.num_clips, self.options.num_crops,
                                         self.options.audio_input)

        views = tf.map_fn(one, (frames, waveform), fn_output_signature={
            key: tf.TensorSpec(None, tf.uint8 if key == tensors.FRAMES else tf.float32)
            for key in (tensors.FRAMES, self.options.audio_input, tensors.FRAME_MASK, tensors.AUDIO_PRESENT)})
        return {k: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)) for k, v in views.items() if k in self._inputs}

    def _classify(self, frames, waveform):
        per_view = tf.cast(self.model(self._preprocess(frames, waveform), training=False)[tensors.CLASSES], tf.float32)
        return tf.reduce_mean(tf.reshape(per_view, [-1, self.views, per_view.shape[-1]]), axis=1)

    def call(self, batch: dict) -> np.ndarray:
        """The reference: preprocessing, model and mean in one `tf.function`, as the SavedModel runs them."""
        return self.classify(batch["frames"], batch["waveform"]).numpy()

    def predict(self, batch: dict) -> np.ndarray:
        views = self.preprocess(batch["frames"], batch["waveform"])
        per_view = self.model.predict(views, verbose=0)[tensors.CLASSES]
        return per_view.reshape(-1, self.views, per_view.shape[-1]).mean(axis=1)


def timed(function, batch) -> tuple:
    start = time.perf_counter()
    result = function(batch)
    return time.perf_counter() - start, result


def interleaved(sides: dict, batch: dict, calls: int, warmup: int) -> dict:
    """`{side: [seconds per call]}`, the sides called in turn; checks they agree."""
    results = {}
    for _ in range(warmup):
        results = {name: np.asarray(function(batch)) for name, function in sides.items()}
    reference = next(iter(results.values()))
    for name, result in results.items():
        gap = float(np.abs(result - reference).max())
        if gap > 1e-4:
            raise AssertionError(f"{name} disagrees with the SavedModel by {gap}")
    times = {name: [] for name in sides}
    for _ in range(calls):
        for name, function in sides.items():
            times[name].append(timed(function, batch)[0])
    return times


def percentile_ms(times: list, q: float) -> float:
    return round(1000 * float(np.percentile(times, q)), 2)


def main(_):
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as scratch:
        print(json.dumps(measure(scratch)))


def measure(scratch: str) -> dict:
    """The figures above; the export (and a demo run, if needed) go into `scratch`."""
    workdir = FLAGS.workdir
    if not os.path.isfile(os.path.join(workdir, "model.keras")):
        workdir = make_demo_run(scratch)
    export_dir = export.export(workdir, os.path.join(scratch, "exports"))
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    keras_path = KerasPath(workdir)
    sides = {
        "savedmodel": lambda batch: serve(**batch)[tensors.PROBABILITIES].numpy(),
        "keras_call": keras_path.call,
        "keras_predict": keras_path.predict,
    }
    clips = test_clips(keras_path.config.data.dir, FLAGS.batch_size)
    load_before = os.getloadavg()[0]
    one = interleaved(sides, batch_of(clips[:1]), FLAGS.calls, FLAGS.warmup)
    many = interleaved(sides, batch_of(clips), FLAGS.batch_calls, FLAGS.warmup)
    batch_s = {name: statistics.median(times) for name, times in many.items()}
    figures = {}
    for name in sides:
        figures[f"{name}_p50_ms"] = percentile_ms(one[name], 50)
        figures[f"{name}_p95_ms"] = percentile_ms(one[name], 95)
        figures[f"{name}_batch_clips_per_s"] = round(FLAGS.batch_size / batch_s[name], 1)
    for q in ("p50", "p95"):
        figures[f"ratio_savedmodel_vs_keras_call_{q}"] = round(
            figures[f"savedmodel_{q}_ms"] / figures[f"keras_call_{q}_ms"], 3)
    figures["ratio_savedmodel_vs_keras_call_batch_time"] = round(batch_s["savedmodel"] / batch_s["keras_call"], 3)
    figures.update(workdir=workdir, views_per_clip=keras_path.views, batch_size=FLAGS.batch_size,
                   calls=FLAGS.calls, batch_calls=FLAGS.batch_calls, frames_per_clip=int(clips[0][0].shape[0]),
                   cpu_cores=os.cpu_count(), load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    return figures


if __name__ == "__main__":
    app.run(main)
