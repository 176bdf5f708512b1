"""Prediction: video files → top-k labels from an exported SavedModel, one JSON object per video.

Videos are decoded exactly as `prepare` decoded the training data (frame rate, short side and sample
rate from the export's `assets.extra/videofusion.json`); the SavedModel does the rest.

Example:

>>> for result in predict("exports/demo/1", ["clip.mp4"], top_k=2):  # doctest: +SKIP
...     print(result)
{'path': 'clip.mp4', 'top_k': [{'label': 'disk-left-high', 'score': 0.97}, {'label': 'disk-left-low', ...}]}
"""

import os
from typing import Iterator, List

import numpy as np
import tensorflow as tf

from videofusion import export, fileio, media, names


class Predictor:
    """A loaded SavedModel and the decoding parameters it was trained with."""

    def __init__(self, model_dir: str):
        metadata_path = os.path.join(model_dir, export.METADATA_FILE)
        if not os.path.isfile(metadata_path):
            raise FileNotFoundError(f"{metadata_path} not found: is {model_dir} a videofusion export?")
        self.metadata = fileio.read_json(metadata_path)
        if "text" in self.metadata["modalities"]:
            import tensorflow_text  # noqa: F401  (registers the tokenizer's ops before loading)
        self._serve = tf.saved_model.load(model_dir).signatures["serving_default"]
        self.reads_captions = names.SERVING_CAPTION in self._serve.structured_input_signature[1]

    def predict_file(self, path: str, top_k: int, caption: str = "") -> dict:
        """`{"path", "top_k": [{"label", "score"}...]}` for one video; raises `media.MediaError`.

        `caption` is used by models that read text (an empty one counts as no caption).
        """
        decoded = media.read_media(
            path,
            fps=self.metadata["fps"],
            short_side=self.metadata["short_side"],
            sample_rate=self.metadata["sample_rate"],
        )
        inputs = {
            names.SERVING_FRAMES: tf.constant(np.stack(decoded.frames)[np.newaxis]),
            names.SERVING_WAVEFORM: tf.constant(decoded.waveform[np.newaxis]),
        }
        if self.reads_captions:
            inputs[names.SERVING_CAPTION] = tf.constant([caption])
        outputs = self._serve(**inputs)
        labels = outputs[names.TOP_K_LABELS].numpy()[0][:top_k]
        scores = outputs[names.TOP_K_SCORES].numpy()[0][:top_k]
        return {
            "path": path,
            "top_k": [
                {"label": label.decode("utf-8"), "score": round(float(score), 6)}
                for label, score in zip(labels, scores)
            ],
        }


def predict(model_dir: str, paths: List[str], top_k: int = 5, caption: str = "") -> Iterator[dict]:
    """Yields one result per path; a file that can't be decoded yields `{"path", "error"}`."""
    predictor = Predictor(model_dir)
    for path in paths:
        try:
            yield predictor.predict_file(path, top_k, caption)
        except media.MediaError as error:
            yield {"path": path, "error": error.reason}
