"""Export: a trained run → a versioned SavedModel (`exports/NAME/<version>/`) for TF Serving.

The default signature (`serving_default`) takes decoded media, not features, so that every step that
training applied after decoding is inside the graph:

- `frames`: uint8 `[batch, frames, height, width, 3]` at the dataset's frame rate (any size);
- `waveform`: float32 `[batch, samples]`, mono, at the dataset's sample rate (silence: no audio);
- `caption`: string `[batch]`, only for models that read text (tokenized inside, with the run's
  vocabulary; serving it needs TensorFlow Text's ops, `import tensorflow_text` before loading);

and returns `probabilities` `[batch, classes]`, `top_k_labels` (strings) and `top_k_scores`
`[batch, k]`. Like `evaluate`, it scores `eval.num_clips * eval.num_crops` views of each video and
averages their softmax; the views (clip sampling, square crops, the log-mel of each clip's audio window)
come from `transforms.eval_views`, the very function the evaluation pipeline uses, and the model's own
first layer resizes and scales the frames, as it did in training and evaluation. What a client needs
to decode videos the same way (frame rate, short side, sample rate) is in
`assets.extra/videofusion.json`, the place TF Serving leaves alone.

Example:

>>> export("runs/demo", "exports/demo")  # doctest: +SKIP
'exports/demo/1'
"""

import os
import shutil

import tensorflow as tf
from absl import logging

import videofusion
from videofusion import fileio, names, pipeline, text, transforms, workdir as workdir_lib

METADATA_FILE = os.path.join("assets.extra", "videofusion.json")


class ServingModule(tf.Module):
    """The trained Keras model wrapped with its preprocessing and label lookup.

    `serve` takes `frames` and `waveform`, plus `caption` (string `[batch]`) when the model reads text.
    """

    def __init__(self, model, options: pipeline.PipelineOptions, labels, top_k: int):
        super().__init__()
        self.model = model
        self._options = options
        self._labels = list(labels)
        self._top_k = min(top_k, len(labels))
        signature = [
            tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=names.SERVING_FRAMES),
            tf.TensorSpec([None, None], tf.float32, name=names.SERVING_WAVEFORM),
        ]
        if names.TOKENS in model.input:
            self.tokenizer = options.tokenizer
            signature.append(tf.TensorSpec([None], tf.string, name=names.SERVING_CAPTION))
        self.serve = tf.function(self._serve, input_signature=signature)

    def _views(self, video_and_audio):
        frames, waveform = video_and_audio
        options = self._options
        return transforms.eval_views(
            tf.shape(frames)[0], lambda indices: tf.gather(frames, indices), waveform, options.spec,
            options.num_clips, options.num_crops,
        )

    def _serve(self, frames, waveform, caption=None):
        spec, views = self._options.spec, self._options.num_clips * self._options.num_crops
        signature = {
            names.FRAMES: tf.TensorSpec([views, spec.num_frames, spec.frame_size, spec.frame_size, 3], tf.uint8),
            names.MEL: tf.TensorSpec([views, spec.mel_frames, spec.mel_bins]),
            names.FRAME_MASK: tf.TensorSpec([views, spec.num_frames]),
            names.AUDIO_PRESENT: tf.TensorSpec([views, 1]),
        }
        features = tf.map_fn(self._views, (frames, waveform), fn_output_signature=signature)
        inputs = {
            key: tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))
            for key, value in features.items() if key in self.model.input
        }
        if caption is not None:
            inputs[names.TOKENS] = tf.repeat(self.tokenizer(caption), views, axis=0)
        per_view = tf.cast(self.model(inputs, training=False)[names.CLASSES], tf.float32)
        probabilities = tf.reduce_mean(tf.reshape(per_view, [-1, views, len(self._labels)]), axis=1)
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


def export(workdir: str, output_dir: str) -> str:
    """Exports the run in `workdir` as `output_dir/<next version>` (top-k outputs for the run's
    `eval.top_k`); returns that path."""
    config, labels, model = workdir_lib.load_run(workdir)
    options = pipeline.PipelineOptions.from_config(config, text.tokenizer_for_run(config, workdir))
    spec = options.spec
    module = ServingModule(model, options, labels, config.eval.top_k)
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
