"""Prediction: video files → top-k labels from an exported SavedModel, one JSON object per video.

Each video is encoded exactly as `prepare` encoded the training data — the same decoder, frame rate,
short side, sample rate, JPEG quality and clip length, read from the export's
`assets.extra/videofusion.json` — into the records `prepare` would have written, and those go through
the SavedModel's `serve_examples` signature, the evaluation pipeline's own preprocessing. So a video
gets the probabilities `evaluate` gives its record (the JPEG round trip included). A video longer than
the clip length is several records; its probabilities are their mean.

Example:

>>> for result in predict("exports/demo/1", ["clip.mp4"], top_k=2):  # doctest: +SKIP
...     print(result)
{'path': 'clip.mp4', 'top_k': [{'label': 'disk-left-high', 'score': 0.97}, {'label': 'disk-left-low', ...}]}
"""

import os
from typing import Iterator, List, Optional

import numpy as np
import tensorflow as tf

from videofusion import fileio
from videofusion.contract import modalities, tensors
from videofusion.ingest import clip_encoder, media
from videofusion.serving import export, signatures
from videofusion.serving.results import top_k_result


def encode_params(decoding: dict) -> clip_encoder.EncodeParams:
    """How `prepare` decoded a model's training data (`export.decoding`'s fields), to decode a video alike."""
    return clip_encoder.EncodeParams(
        fps=decoding["fps"], short_side=decoding["short_side"], sample_rate=decoding["sample_rate"],
        max_clip_seconds=decoding["max_clip_seconds"] or None, jpeg_quality=decoding["jpeg_quality"],
    )


def video_records(path: str, params: clip_encoder.EncodeParams, caption: str = "", start: Optional[float] = None,
                  end: Optional[float] = None) -> List[bytes]:
    """The serialized records `prepare` writes for the video at `path` (from `start` to `end` seconds,
    default all of it); raises `media.MediaError` for a file that can't be used."""
    task = clip_encoder.EncodeTask(path=path, resolved=path, label="", label_index=0, caption=caption or None,
                                   start=start, end=end, params=params)
    return [record for record, _ in clip_encoder.clip_records(task)]


class Predictor:
    """A loaded SavedModel and the decoding parameters its training data was prepared with."""

    def __init__(self, model_dir: str):
        metadata_path = os.path.join(model_dir, export.METADATA_FILE)
        if not os.path.isfile(metadata_path):
            raise FileNotFoundError(f"{metadata_path} not found: is {model_dir} a videofusion export?")
        self.model_dir = model_dir
        self.metadata = fileio.read_json(metadata_path)
        self.labels = list(self.metadata["labels"])
        self.model = tf.saved_model.load(model_dir)
        self._serve_examples = self.model.signatures["serve_examples"]
        self.reads_captions = modalities.TEXT in [m.strip() for m in self.metadata["modalities"].split(",")]
        self.params = encode_params(self.metadata)

    def records(self, path: str, caption: str = "") -> List[bytes]:
        """`path` as the serialized records `prepare` would write for it; raises `media.MediaError`."""
        return video_records(path, self.params, caption)

    def outputs(self, records: List[bytes]) -> dict:
        """`serve_examples`' outputs for serialized records (NumPy arrays, one row per record)."""
        outputs = self._serve_examples(**{signatures.EXAMPLES: tf.constant(records)})
        return {key: value.numpy() for key, value in outputs.items()}

    def check_caption(self, caption: str) -> None:
        """Raises `ValueError` for a caption given to a model that reads no text."""
        if caption and not self.reads_captions:
            raise ValueError(f"{self.model_dir} does not read text (modalities {self.metadata['modalities']}): "
                             "leave --caption out")

    def probabilities(self, path: str, caption: str = "") -> np.ndarray:
        """The video's class probabilities `[classes]` (the mean over its records)."""
        self.check_caption(caption)
        return self.outputs(self.records(path, caption))[tensors.PROBABILITIES].mean(axis=0)

    def predict_file(self, path: str, top_k: int, caption: str = "") -> dict:
        """`{"path", "top_k": [{"label", "score"}...]}` for one video; raises `media.MediaError`.

        `caption` is used by models that read text (an empty one counts as no caption).
        """
        return top_k_result(path, self.probabilities(path, caption), self.labels, top_k)


def predict(model_dir: str, paths: List[str], top_k: int = 5, caption: str = "") -> Iterator[dict]:
    """Yields one result per path; a file that can't be decoded yields `{"path", "error"}`."""
    predictor = Predictor(model_dir)
    for path in paths:
        try:
            yield predictor.predict_file(path, top_k, caption)
        except media.MediaError as error:
            yield {"path": path, "error": error.reason}
