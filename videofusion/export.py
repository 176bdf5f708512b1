"""Export: a trained run → a versioned SavedModel (`exports/NAME/<version>/`) for TF Serving.

The default signature (`serving_default`) takes decoded media, not features, so that every step that
training applied after decoding is inside the graph:

- `frames`: uint8 `[batch, frames, height, width, 3]` at the dataset's frame rate (any size);
- `waveform`: float32 `[batch, samples]`, mono, at the dataset's sample rate;

and returns `probabilities` `[batch, classes]`, `top_k_labels` (strings) and `top_k_scores`
`[batch, k]`. It picks the centred clip, crops, resizes and scales the frames and computes the log-mel
of the matching audio window with `transforms.clip_features`, the very function the evaluation
pipeline uses. What a client needs to decode videos the same way (frame rate, short side, sample rate)
is in `assets.extra/videofusion.json`, the place TF Serving leaves alone.

Example:

>>> export("runs/demo", "exports/demo")  # doctest: +SKIP
'exports/demo/1'
"""

import os
import shutil

import tensorflow as tf
from absl import logging

import videofusion
from videofusion import fileio, names, transforms, workdir as workdir_lib
from videofusion.transforms import ClipSpec

METADATA_FILE = os.path.join("assets.extra", "videofusion.json")


class ServingModule(tf.Module):
    """The trained Keras model wrapped with its preprocessing and label lookup."""

    def __init__(self, model, spec: ClipSpec, labels, top_k: int):
        super().__init__()
        self.model = model
        self._spec = spec
        self._labels = list(labels)
        self._top_k = min(top_k, len(labels))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=names.SERVING_FRAMES),
            tf.TensorSpec([None, None], tf.float32, name=names.SERVING_WAVEFORM),
        ]
    )
    def serve(self, frames, waveform):
        spec = self._spec
        num_available = tf.shape(frames)[1]
        start = transforms.clip_start(num_available, spec, training=False)
        indices = transforms.clip_indices(num_available, spec.num_frames, spec.stride, start)
        features = transforms.clip_features(tf.gather(frames, indices, axis=1), waveform, start, spec)
        inputs = {key: value for key, value in features.items() if key in self.model.input}
        probabilities = tf.cast(self.model(inputs, training=False), tf.float32)
        scores, top = tf.math.top_k(probabilities, k=self._top_k)
        return {
            names.PROBABILITIES: probabilities,
            names.TOP_K_LABELS: tf.gather(tf.constant(self._labels), top),
            names.TOP_K_SCORES: scores,
        }


def next_version(output_dir: str) -> int:
    """1 + the largest integer-named version folder in `output_dir` (1 for a new one)."""
    if not os.path.isdir(output_dir):
        return 1
    versions = [int(name) for name in os.listdir(output_dir) if name.isdigit()]
    return max(versions, default=0) + 1


def export(workdir: str, output_dir: str, top_k: int = 5) -> str:
    """Exports the run in `workdir` as `output_dir/<next version>`; returns that path."""
    config, labels, model = workdir_lib.load_run(workdir)
    spec = ClipSpec.from_config(config.data)
    module = ServingModule(model, spec, labels, top_k)
    target = os.path.join(output_dir, str(next_version(output_dir)))
    staging = fileio.temp_name(target)
    try:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve})
        fileio.write_json(
            os.path.join(staging, METADATA_FILE),
            {
                "videofusion_version": videofusion.__version__,
                "labels": labels,
                "fps": spec.fps,
                "short_side": config.data.short_side,
                "sample_rate": spec.sample_rate,
                "num_frames": spec.num_frames,
                "modalities": config.model.modalities,
            },
        )
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logging.info("Exported %s to %s", workdir, target)
    return target
