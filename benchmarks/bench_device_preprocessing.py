"""What the frame preprocessing costs where it now runs: in the model, on the accelerator.

The input pipeline hands the model uint8 squares of the data's short side; the model's first layer
(`videofusion/models/frame_preprocessing.py`) resizes them, scales them and, in training, applies the
random resized crop, flip and colour jitter. This script measures, in one run, the training step of
the default model (`config.base_config().model`: LSTM video encoder, cross-attention fusion) on the
pipeline benchmark's clip — 16 frames, 1.6 s of 16 kHz audio (whose log-mel the model computes, the same
on both sides) — fed two ways from memory:

- `on_device`: uint8 128×128 squares, resized to 112×112 and augmented by the model's first layer;
- `pre_resized`: uint8 112×112 frames and no augmentation — what the model would get if the host had
  done the resizing and augmenting (its first layer then only scales the pixels).

It prints the median step time of each (warm-up steps left out) and `ratio_step_on_device_vs_pre_resized`.
Keras only, no TensorFlow: run it under any backend, e.g. on a GPU machine

    KERAS_BACKEND=jax python benchmarks/bench_device_preprocessing.py --batch_size 128
    .venv/bin/python benchmarks/bench_device_preprocessing.py --batch_size 8 --steps 6   # CPU, here

The last line of output is one JSON object with the figures.
"""

import json
import statistics
import time

import keras
import numpy as np
from absl import app, flags, logging

from videofusion.config import base_config
from videofusion.contract import tensors
from videofusion.contract.log_mel import LogMelSpec
from videofusion.models import FrameAugment, InputShapes, build_model

_BATCH = flags.DEFINE_integer("batch_size", 128, "Clips per training step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed training steps per measurement.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Steps left out before timing (compilation, first transfers).")

NUM_FRAMES, FRAME_SIZE, IMAGE_SIZE, AUDIO_SAMPLES, NUM_CLASSES = 16, 128, 112, 25600, 4
LOG_MEL = LogMelSpec(sample_rate=16000, mel_bins=64, window_ms=25.0, hop_ms=10.0, fmin_hz=60.0, fmax_hz=7600.0)


class _StepTimes(keras.callbacks.Callback):
    """Wall time between the ends of consecutive training steps."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # waits for the step to finish where the backend dispatches asynchronously
        self.times.append(time.perf_counter())


def _data(frame_size: int, clips: int):
    rng = np.random.default_rng(0)
    features = {
        tensors.FRAMES: rng.integers(0, 256, (clips, NUM_FRAMES, frame_size, frame_size, 3), dtype=np.uint8),
        tensors.FRAME_MASK: np.ones((clips, NUM_FRAMES), "float32"),
        tensors.WAVEFORM: 0.1 * rng.normal(size=(clips, AUDIO_SAMPLES)).astype("float32"),
        tensors.AUDIO_PRESENT: np.ones((clips, 1), "float32"),
    }
    return features, rng.integers(0, NUM_CLASSES, clips)


def median_step_seconds(frame_size: int, augment: FrameAugment, batch_size: int, steps: int, warmup: int) -> float:
    """Median training-step time of the default model taking `frame_size` squares with `augment`."""
    shapes = InputShapes(NUM_FRAMES, IMAGE_SIZE, AUDIO_SAMPLES, LOG_MEL, frame_size=frame_size)
    model = build_model(base_config().model, shapes, NUM_CLASSES, frame_augment=augment, seed=0)
    model.compile(optimizer="adam", loss={k: "sparse_categorical_crossentropy" for k in model.output})
    features, labels = _data(frame_size, batch_size * (warmup + steps))
    timer = _StepTimes()
    model.fit(features, {k: labels for k in model.output}, batch_size=batch_size, epochs=1, shuffle=False,
              verbose=0, callbacks=[timer])
    return statistics.median(np.diff(timer.times)[warmup:])


def main(_):
    batch, steps, warmup = _BATCH.value, _STEPS.value, _WARMUP.value
    augment = FrameAugment.from_config(base_config().augment)
    timings = {"on_device": [], "pre_resized": []}
    for name in ("pre_resized", "on_device", "pre_resized", "on_device"):  # interleaved, twice each
        frame_size, frame_augment = (FRAME_SIZE, augment) if name == "on_device" else (IMAGE_SIZE, FrameAugment())
        timings[name].append(median_step_seconds(frame_size, frame_augment, batch, steps, warmup))
        logging.info("%s: %.4f s per step of %d clips", name, timings[name][-1], batch)
    on_device, pre_resized = statistics.mean(timings["on_device"]), statistics.mean(timings["pre_resized"])
    print(json.dumps({
        "backend": keras.config.backend(),
        "batch_size": batch,
        "step_s_on_device": round(on_device, 5),
        "step_s_pre_resized": round(pre_resized, 5),
        "clips_per_s_on_device": round(batch / on_device, 1),
        "clips_per_s_pre_resized": round(batch / pre_resized, 1),
        "ratio_step_on_device_vs_pre_resized": round(on_device / pre_resized, 3),
        "clip": "16 frames (uint8 128x128 -> 112x112 with random resized crop, flip, colour) + 158x64 log-mel",
    }))


if __name__ == "__main__":
    app.run(main)
