"""Input pipeline speed: the training pipeline against the JPEG-decode limit and against a cached batch.

Measures, in one run, on synthetic shards shaped like real data (JPEG frames with a 128-pixel short
side, 16 kHz audio), the path training takes: `pipeline.training_epochs` (endless batches, one pass
per epoch, with its `tf.data` options), not `make_dataset`:

- `clips_per_s`: the training pipeline (16 frames as uint8 128×128 squares, plus the matching 1.6 s
  of audio as a waveform window). Goal ≥ 270 on 2 cores. The resize to 112×112 and the image
  augmentation (random resized crop, flip, colour), the log-mel and SpecAugment are the model's first
  layers, so they run on the accelerator and are in the step times below, not here
  (`bench_device_preprocessing.py` measures what the frames' cost there).
- `ratio_pipeline_vs_decode`: that rate over the rate of reading the same shards and only decoding 16
  JPEGs per clip through the pipeline's own decode (`pipeline.decode_frames` on a static-length gather:
  the unrolled decodes the pipeline runs, same parallelism), under the same `tf.data` options as the
  pipeline (autotuning off). Goal ≥ 0.8. Each side is measured `--repeats` times, interleaved, and the
  medians are compared (an earlier reference sliced a tensor of unknown length and so fell back to
  `tf.map_fn`'s slower decode loop, which flattered the ratio; a later one ran with autotuning on while
  the pipeline ran without).
- `ratio_pipeline_vs_decode_cpu`: the same from this process's CPU seconds per clip (the reference's
  over the pipeline's; `pipeline_cpu_ms_per_clip`, `decode_cpu_ms_per_clip`): both are bound by the CPU,
  so at full speed the wall-time ratio comes to this, and other load on the machine hardly moves it.
  What the pipeline does beyond the decode is the gap: the audio window, the square crop, the shuffles
  (the log-mel was 1.7 of 6.7 CPU ms per clip until it moved into the model, in 0.4.0).
- `iterator_delete_s`: the longest time deleting an iterator of either side took (after `--seconds`
  of use): with tf.data's autotuning thread, deleting one waits for that thread's sleep (seconds,
  growing with the iterator's age), which Keras does at every epoch; without it, a fraction of a second.
- `ratio_step_real_vs_cached`: the steady-state time of a training step of the default model (batch
  8, with the default image augmentation in its first layer) fed by the pipeline, over that of a step
  on one batch cached in memory (median step times, the first steps of each run left out). Goal ≤ 1.1.
  On a CPU-only machine the model and the pipeline share the same cores, so this ratio is the
  pipeline's CPU cost as a share of the step's.

    .venv/bin/python benchmarks/bench_pipeline.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_pipeline.py --quick    # smoke run

The last line of output is one JSON object with the figures.
"""

import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import config as config_lib  # noqa: E402
from videofusion.contract import prepared_folder, record_schema  # noqa: E402
from videofusion.data import pipeline  # noqa: E402
from videofusion.ingest.clip_encoder import encode_jpeg  # noqa: E402
from videofusion.models import FrameAugment, SpecAugment, build_model  # noqa: E402
from videofusion.training import train  # noqa: E402

_QUICK = flags.DEFINE_boolean("quick", False, "Small sizes, for a smoke run.")
_CLIPS = flags.DEFINE_integer("clips", 256, "Clips in the synthetic shards.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Batch size of the pipeline measurements.")
_SECONDS = flags.DEFINE_float("seconds", 20.0, "How long each throughput measurement runs.")
_STEPS = flags.DEFINE_integer("steps", 12, "Training steps timed for each of real and cached input.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved measurements of each throughput (median kept).")


def synthetic_frame(rng: np.random.Generator, height: int = 128, width: int = 171) -> np.ndarray:
    """A smooth random image with some texture: JPEG sizes like natural frames, not like noise."""
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-12, 13, size=image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_shards(directory: str, clips: int, frames_per_clip: int = 32, shards: int = 4) -> None:
    """`clips` records of 3.2 s (32 frames at 10 fps) in `shards` train shards."""
    rng = np.random.default_rng(0)
    writers = [tf.io.TFRecordWriter(os.path.join(directory, f"train-{i:05d}-of-{shards:05d}.tfrecord"))
               for i in range(shards)]
    for index in range(clips):
        clip = record_schema.Clip(
            label_index=index % 4, label_text=str(index % 4), filename=f"{index}.mp4", start_us=0,
            end_us=3_200_000, frame_rate=10.0,
            jpeg_frames=[encode_jpeg(synthetic_frame(rng)) for _ in range(frames_per_clip)],
            waveform=rng.normal(0, 0.1, 51200).astype(np.float32), sample_rate=16000, has_audio=True,
        )
        writers[index % shards].write(record_schema.encode_clip(clip))
    for writer in writers:
        writer.close()


def bench_config(data_dir: str):
    config = config_lib.base_config()
    config.data.update(dict(dir=data_dir, num_frames=16, stride=1, image_size=112, fps=10.0,
                            sample_rate=16000, short_side=128))
    return config


def decode_only(data_dir: str, num_frames: int, batch_size: int, options: tf.data.Options) -> tf.data.Dataset:
    """The same reading, parsing and gathering of `num_frames` JPEGs per clip, then only their decode,
    by the pipeline's own code path (a gather of static length → the unrolled `decode_jpeg`s), with the
    pipeline's `tf.data` `options`."""
    def decode(serialized):
        jpegs = tf.gather(record_schema.parse_clip(serialized)[record_schema.IMAGES], tf.range(num_frames))
        return pipeline.decode_frames(jpegs)

    files = prepared_folder.shard_files(data_dir, "train")
    dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def clips_per_second(dataset: tf.data.Dataset, seconds: float) -> tuple:
    """(clips per second, CPU milliseconds of this process per clip, seconds to delete the iterator) of
    drawing from `dataset` (repeated) for about `seconds`, after a warm-up."""
    iterator = iter(dataset.repeat())
    for _ in range(3):
        next(iterator)
    clips, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        batch = next(iterator)
        clips += int(tf.shape(tf.nest.flatten(batch)[0])[0])
    rate, cpu_ms = clips / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / clips
    start = time.perf_counter()
    del iterator
    return rate, cpu_ms, time.perf_counter() - start


class _StepTimes(keras.callbacks.Callback):
    """Wall time between consecutive training batches."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def _steady_step_seconds(model, source: tf.data.Dataset, steps: int, warmup: int = 3) -> float:
    """Median step time of one `fit` over `warmup + steps` steps, the warm-up steps left out (they
    include tracing and, with real input, the start of the pipeline: filling its shuffle buffer)."""
    timer = _StepTimes()
    model.fit(source, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return statistics.median(np.diff(timer.times)[warmup:])


def step_seconds(config, dataset: tf.data.Dataset, steps: int) -> tuple:
    """(seconds per step with `dataset`, seconds per step with its first batch cached), same model,
    measured twice each, interleaved."""
    options = pipeline.PipelineOptions.from_config(config)
    spec = options.spec
    model = build_model(config.model, train.input_shapes(config, spec), 4,
                        frame_augment=FrameAugment.from_config(config.augment),
                        audio_augment=SpecAugment.from_config(config.augment), seed=0)
    model.compile(optimizer="adam", loss={k: "sparse_categorical_crossentropy" for k in model.output})
    real = pipeline.model_inputs(dataset, model).repeat()  # endless already (`training_epochs`)
    cached = real.take(1).cache().repeat()
    timings = {"real": [], "cached": []}
    for name, source in (("cached", cached), ("real", real), ("cached", cached), ("real", real)):
        timings[name].append(_steady_step_seconds(model, source, steps))
    return statistics.mean(timings["real"]), statistics.mean(timings["cached"])


def main(_):
    clips, seconds, steps = (_CLIPS.value, _SECONDS.value, _STEPS.value)
    if _QUICK.value:
        clips, seconds, steps = 32, 3.0, 2
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as data_dir:
        write_shards(data_dir, clips)
        config = bench_config(data_dir)
        options = pipeline.PipelineOptions.from_config(config)
        epochs = pipeline.training_epochs(data_dir, options, _BATCH.value, seed=0)
        sides = {"pipeline": epochs, "decode": decode_only(data_dir, 16, _BATCH.value, epochs.options())}
        runs = {name: [] for name in sides}
        for repeat in range(2 if _QUICK.value else max(2, _REPEATS.value)):
            for name in (sides if repeat % 2 == 0 else list(sides)[::-1]):
                runs[name].append(clips_per_second(sides[name], seconds))
        rate, cpu_ms = ({name: statistics.median(run[i] for run in runs[name]) for name in runs} for i in (0, 1))
        logging.info("decode only: %s clips/s; training pipeline: %s clips/s (medians %.1f, %.1f; CPU ms per clip "
                     "%.2f, %.2f)", *([round(r[0], 1) for r in runs[name]] for name in ("decode", "pipeline")),
                     rate["decode"], rate["pipeline"], cpu_ms["decode"], cpu_ms["pipeline"])
        small_batches = pipeline.training_epochs(data_dir, options, 8, seed=0)
        real, cached = step_seconds(config, small_batches, steps)
        logging.info("training step, batch 8: %.3f s with the pipeline, %.3f s cached", real, cached)
    print(json.dumps({
        "clips_per_s": round(rate["pipeline"], 1),
        "decode_only_clips_per_s": round(rate["decode"], 1),
        "throughput_repeats": len(runs["decode"]),
        "ratio_pipeline_vs_decode": round(rate["pipeline"] / rate["decode"], 3),
        "ratio_pipeline_vs_decode_cpu": round(cpu_ms["decode"] / cpu_ms["pipeline"], 3),
        "pipeline_cpu_ms_per_clip": round(cpu_ms["pipeline"], 2),
        "decode_cpu_ms_per_clip": round(cpu_ms["decode"], 2),
        "iterator_delete_s": round(max(run[2] for name in runs for run in runs[name]), 3),
        "step_s_real": round(real, 4),
        "step_s_cached": round(cached, 4),
        "ratio_step_real_vs_cached": round(real / cached, 3),
        "tf_data_autotune": epochs.options().autotune.enabled is not False,
        "cpu_cores": os.cpu_count(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "clip": "16 frames as uint8 128x128 squares of 128-short-side JPEGs (model: 112x112) + 1.6 s waveform",
    }))


if __name__ == "__main__":
    app.run(main)
