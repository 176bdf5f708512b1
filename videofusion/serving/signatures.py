"""The exported model's signatures: a trained Keras model wrapped with all of its preprocessing.

`ServingModule` has two signatures, both returning `probabilities` `[batch, classes]`, `top_k_labels`
(strings) and `top_k_scores` `[batch, k]`, and `embedding` `[batch, embed_dim]` (the fused vector the
classifier reads, averaged over the views, for retrieval and clustering):

- `serving_default` takes decoded media: `frames` uint8 `[batch, frames, height, width, 3]` at the
  dataset's frame rate (any size: squares are cut and resized inside), `num_frames` int32 `[batch]`
  (how many of each video's frames are real, the rest being padding of a batch of unequal videos),
  `waveform` float32 `[batch, samples]`, mono at the dataset's sample rate, `num_samples` int32
  `[batch]`, and, for models that read text, `caption` string `[batch]`. `num_frames`, `num_samples`
  and `caption` may be left out (defaults in the SignatureDef, which TF Serving and `saved_model_cli`
  apply): all frames, all samples, no caption. A default counts for the whole batch (shape `[1]`,
  value -1): a batch of unequal videos must send both counts.
- `serve_examples` takes `examples`: serialized `tf.train.SequenceExample`s in the schema `prepare`
  writes (`contract/record_schema.py`), read by the evaluation pipeline's own `pipeline.eval_examples`.

Both score `eval.num_clips * eval.num_crops` views of each video with `transforms.eval_views`, the very
code `evaluate` runs, and average the views' softmax. Labels come from the SavedModel's asset
`labels.txt`; captions are tokenized with core TensorFlow ops (`wordpiece.CoreWordPiece`), so the
graph needs nothing but TensorFlow. Bad input (a wrong rank, no frames, an empty waveform, batch sizes
that differ, counts out of range) fails with an `InvalidArgumentError` whose message says which input
and what is expected.

Example:

>>> module = ServingModule(model, options, "runs/demo/labels.txt", top_k=5)  # doctest: +SKIP
>>> tf.saved_model.save(module, "exports/demo/1", signatures=module.signatures())  # doctest: +SKIP
"""

import dataclasses
import types
from typing import Optional

import keras
import tensorflow as tf

from videofusion.contract import tensors
from videofusion.data import pipeline, transforms
from videofusion.serving.wordpiece import CoreWordPiece

NUM_FRAMES = "num_frames"
NUM_SAMPLES = "num_samples"
EXAMPLES = "examples"
EMBEDDING = "embedding"
EMBEDDING_LAYER = "head_dropout"  # `build_model`: the layer between the fused vector and the classifier
ALL = -1  # the default of `num_frames` and `num_samples`: every frame, every sample


def with_embedding(model: keras.Model) -> keras.Model:
    """The classifier with a second output: the fused vector its classifier reads (`build_model`)."""
    return keras.Model(
        model.input,
        {tensors.CLASSES: model.output[tensors.CLASSES], EMBEDDING: model.get_layer(EMBEDDING_LAYER).input},
    )


def _check(condition, message: str):
    return tf.debugging.Assert(condition, [message])


def _lengths(counts: tf.Tensor, batch: tf.Tensor, available: tf.Tensor, what: str) -> tf.Tensor:
    """`[batch]` real lengths from a `num_frames`/`num_samples` input (`ALL` entries: `available`)."""
    counts = tf.ensure_shape(counts, [None])
    checks = [
        _check((tf.size(counts) == batch) | (tf.reduce_all(counts == ALL) & (tf.size(counts) == 1)),
               f"{what} must have one entry per video of the batch (leave it out only for a single video, "
               "or send -1 for all)"),
        _check(tf.reduce_all((counts == ALL) | ((counts >= 1) & (counts <= available))),
               f"{what} must be -1 (all) or between 1 and the padded length of the input"),
    ]
    with tf.control_dependencies(checks):
        return tf.where(counts == ALL, available, tf.broadcast_to(counts, [batch]))


def view_signature(options: pipeline.PipelineOptions, text_length: int = 0) -> dict:
    """The `TensorSpec`s of one video's views `[views, ...]` as the model takes them (`tokens` only with a
    `text_length`)."""
    spec, views, audio_input = options.spec, options.num_clips * options.num_crops, options.audio_input
    audio_shape = [spec.mel_frames, spec.mel_bins] if audio_input == tensors.MEL else [spec.audio_samples]
    signature = {
        tensors.FRAMES: tf.TensorSpec([views, spec.num_frames, spec.frame_size, spec.frame_size, 3], tf.uint8),
        tensors.FRAME_MASK: tf.TensorSpec([views, spec.num_frames]),
        audio_input: tf.TensorSpec([views, *audio_shape]),
        tensors.AUDIO_PRESENT: tf.TensorSpec([views, 1]),
    }
    if text_length:
        signature[tensors.TOKENS] = tf.TensorSpec([views, text_length], tf.int32)
    return signature


def example_views(examples: tf.Tensor, options: pipeline.PipelineOptions, signature: dict) -> dict:
    """Serialized records `[batch]` (`contract/record_schema.py`) → their evaluation views `{key: [batch,
    views, ...]}` for the keys of `signature` (`view_signature`), by the evaluation pipeline's own
    `pipeline.eval_examples`; an empty batch fails with an `InvalidArgumentError`."""
    examples = tf.ensure_shape(examples, [None])
    with tf.control_dependencies([_check(tf.size(examples) > 0, "examples is empty")]):
        examples = tf.identity(examples)

    def views(serialized):
        features = pipeline.eval_examples(serialized, tf.constant(0, tf.int64), options)[0]
        return {key: features[key] for key in signature}

    return tf.map_fn(views, examples, fn_output_signature=signature)


def mean_over_views(per_view: tf.Tensor, views: int) -> tf.Tensor:
    """`[batch * views, d]`, each video's views in a row → `[batch, d]` float32, the mean of its views."""
    per_view = tf.cast(per_view, tf.float32)
    return tf.reduce_mean(tf.reshape(per_view, [-1, views, per_view.shape[-1]]), axis=1)


def flatten_views(features: dict, inputs) -> dict:
    """Per-video views `{key: [batch, views, ...]}` → `{key: [batch * views, ...]}` for the keys `inputs` has."""
    return {key: tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))
            for key, value in features.items() if key in inputs}


class ServingModule(tf.Module):
    """The trained model, its preprocessing (`options`) and its labels, as the SavedModel's signatures.

    Args:
      model: the trained Keras classifier (`build_model`).
      options: the run's evaluation preprocessing (`pipeline.PipelineOptions.from_config` of its config
        and model); its `tokenizer` is replaced by `tokenizer`.
      labels_path: the run's `labels.txt`, stored in the SavedModel as an asset.
      top_k: how many labels `top_k_labels` has (at most the number of classes).
      tokenizer: the core-ops tokenizer for models that read text (`CoreWordPiece`), else None.
    """

    def __init__(self, model: keras.Model, options: pipeline.PipelineOptions, labels_path: str, top_k: int,
                 tokenizer: Optional[CoreWordPiece] = None):
        super().__init__()
        # The SavedModel tracks the model's TensorFlow variables, not its Keras objects: saved through
        # the Keras model (or its Keras variables), the checkpoint restores in Python, object by object,
        # but not through the SaverDef that TF Serving and `saved_model_cli` use — a variable whose
        # name another one shares (the frame and audio CNNs both have a `bn1/gamma`) is left
        # uncreated there: "Could not find variable bn1/gamma_1" (measured; the test runs
        # `saved_model_cli run`).
        self._keras = types.SimpleNamespace(model=with_embedding(model))
        self.model_variables = [variable.value for variable in model.variables]
        self.tokenizer = tokenizer
        self._options = dataclasses.replace(options, tokenizer=tokenizer and self._tokenize_one)
        self._num_classes = model.output[tensors.CLASSES].shape[-1]
        self._top_k = min(top_k, self._num_classes)
        self._views = options.num_clips * options.num_crops
        self.labels_file = tf.saved_model.Asset(labels_path)
        self.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.labels_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )
        frames = [
            tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=tensors.SERVING_FRAMES),
            tf.TensorSpec([None, None], tf.float32, name=tensors.SERVING_WAVEFORM),
            tf.TensorSpec([None], tf.int32, name=NUM_FRAMES),
            tf.TensorSpec([None], tf.int32, name=NUM_SAMPLES),
        ]
        if tokenizer is None:
            self.serve = tf.function(self._serve_media, input_signature=frames)
        else:
            self.serve = tf.function(
                self._serve_media_and_caption,
                input_signature=frames + [tf.TensorSpec([None], tf.string, name=tensors.SERVING_CAPTION)],
            )
        self.serve_examples = tf.function(
            self._serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)]
        )

    def signatures(self) -> dict:
        return {"serving_default": self.serve, "serve_examples": self.serve_examples}

    # === Signatures ===

    def _serve_media(self, frames, waveform, num_frames=tf.constant([ALL]), num_samples=tf.constant([ALL])):
        return self._classify(self._media_views(frames, num_frames, waveform, num_samples))

    def _serve_media_and_caption(self, frames, waveform, num_frames=tf.constant([ALL]),
                                 num_samples=tf.constant([ALL]), caption=tf.constant([""])):
        features = self._media_views(frames, num_frames, waveform, num_samples)
        batch = tf.shape(frames)[0]
        caption = tf.ensure_shape(caption, [None])
        with tf.control_dependencies([
            _check((tf.size(caption) == batch) | (tf.size(caption) == 1),
                   "caption must have one entry per video (or one for all of them)"),
        ]):
            tokens = self.tokenizer(tf.broadcast_to(caption, [batch]))
        features[tensors.TOKENS] = tf.repeat(tokens[:, tf.newaxis], self._views, axis=1)
        return self._classify(features)

    def _serve_examples(self, examples):
        return self._classify(example_views(examples, self._options, self._view_signature(with_tokens=True)))

    # === Preprocessing ===

    def _tokenize_one(self, caption: tf.Tensor) -> tf.Tensor:
        return self.tokenizer(caption[tf.newaxis])[0]

    def _view_signature(self, with_tokens: bool) -> dict:
        return view_signature(self._options, self.tokenizer.sequence_length if with_tokens and self.tokenizer else 0)

    def _media_views(self, frames, num_frames, waveform, num_samples) -> dict:
        """Checks the media inputs; → per-video views `{key: [batch, views, ...]}`."""
        # Function inputs are not checked against the signature's shapes when the graph runs (TF Serving
        # feeds whatever the request holds), and `tf.rank` would be folded to the declared rank.
        frames = tf.ensure_shape(frames, [None, None, None, None, 3])
        waveform = tf.ensure_shape(waveform, [None, None])
        batch = tf.shape(frames)[0]
        checks = [
            _check(tf.shape(waveform)[0] == batch, "frames and waveform must have the same batch size"),
            _check(tf.shape(frames)[1] > 0, "frames has zero frames: a video needs at least one"),
            _check(tf.reduce_min(tf.shape(frames)[2:4]) > 0, "frames has an empty height or width"),
            # Every model needs one: the clips' audio windows are cut from it (even if only to be ignored).
            _check(tf.shape(waveform)[1] > 0, "waveform is empty: send the sound of the video, "
                                              "or zeros of its length for a silent video"),
        ]
        with tf.control_dependencies(checks):  # nothing reads the inputs before they passed
            frames, waveform = tf.identity(frames), tf.identity(waveform)
            frame_counts = _lengths(num_frames, batch, tf.shape(frames)[1], NUM_FRAMES)
            sample_counts = _lengths(num_samples, batch, tf.shape(waveform)[1], NUM_SAMPLES)

        def views(video):
            frames, frame_count, waveform, sample_count = video
            frames = frames[:frame_count]
            return transforms.eval_views(
                frame_count, lambda indices: tf.gather(frames, indices), waveform[:sample_count],
                self._options.spec, self._options.num_clips, self._options.num_crops, self._options.audio_input,
            )

        return tf.map_fn(views, (frames, frame_counts, waveform, sample_counts),
                         fn_output_signature=self._view_signature(with_tokens=False))

    # === Model and outputs ===

    def _classify(self, features: dict) -> dict:
        """Per-video views `[batch, views, ...]` → the signature's outputs."""
        outputs = self._keras.model(flatten_views(features, self._keras.model.input), training=False)
        probabilities = self._per_video(outputs[tensors.CLASSES])
        scores, top = tf.math.top_k(probabilities, k=self._top_k)
        return {
            tensors.PROBABILITIES: probabilities,
            tensors.TOP_K_LABELS: self.labels.lookup(tf.cast(top, tf.int64)),
            tensors.TOP_K_SCORES: scores,
            EMBEDDING: self._per_video(outputs[EMBEDDING]),
        }

    def _per_video(self, per_view: tf.Tensor) -> tf.Tensor:
        return mean_over_views(per_view, self._views)
