"""Prediction on a device: video files → top-k labels from a LiteRT export, without TensorFlow.

Each video is decoded as `prepare` decoded the training data (`model.json`'s `decoding`: PyAV, frame
rate, short side, sample rate, clip length), each frame through the same JPEG round trip (OpenCV encodes
it at `prepare`'s quality), then cut into the evaluation views in NumPy (`edge_views.py`) and scored by
the LiteRT interpreter (`litert_model.py`). The one difference from `predict.py` is the JPEG decoder:
OpenCV's gives pixels a few levels off TensorFlow's `decode_jpeg` (up to 5 of 255 on the demo videos,
other chroma upsampling), so the probabilities differ slightly (tests/test_litert.py: within 0.05, same
top-1). A video longer than the clip length is several
clips; its probabilities are their mean, as in `predict.py`.

Example:

>>> for result in predict("exports/demo/litert/1", ["clip.mp4"], top_k=2, variant="int8"):  # doctest: +SKIP
...     print(result)
{'path': 'clip.mp4', 'top_k': [{'label': 'disk-left-high', 'score': 0.96}, {'label': 'disk-left-low', ...}]}
"""

from typing import Iterator, List, Optional

import cv2
import numpy as np

from videofusion.ingest import clip_encoder, media
from videofusion.serving import edge_views, litert_model
from videofusion.serving.results import top_k_result


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """uint8 RGB `[height, width, 3]` of JPEG bytes, decoded with OpenCV."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def video_clips(path: str, decoding: dict) -> Iterator[media.Media]:
    """The clips `prepare` would store for the video at `path` (`decoding`: a sidecar's), with RGB frames
    after `prepare`'s JPEG round trip; raises `media.MediaError` for a file that can't be used."""
    quality = decoding["jpeg_quality"]
    return media.iter_segments(
        path, fps=decoding["fps"], short_side=decoding["short_side"], sample_rate=decoding["sample_rate"],
        max_clip_seconds=decoding["max_clip_seconds"] or None,
        frame_fn=lambda bgr: decode_jpeg(clip_encoder.encode_bgr_jpeg(bgr, quality)), pixel_format="bgr24",
    )


class LiteRTPredictor:
    """A LiteRT model (`litert_model.LiteRTModel`'s arguments) and the decoding its training data had."""

    def __init__(self, path: str, variant: Optional[str] = None, num_threads: Optional[int] = None):
        self.model = litert_model.LiteRTModel(path, variant, num_threads)

    def clip_views(self, clip: media.Media) -> dict:
        """The evaluation views of one decoded clip (`edge_views.eval_views`)."""
        frames = clip.frames
        return edge_views.eval_views(len(frames), lambda indices: np.stack([frames[i] for i in indices]),
                                     clip.waveform, self.model.view_spec)

    def probabilities(self, path: str) -> np.ndarray:
        """The video's class probabilities `[classes]` (the mean over its clips)."""
        clips = [self.model.probabilities(self.clip_views(clip)) for clip in video_clips(path, self.model.decoding)]
        return np.mean(clips, axis=0)

    def predict_file(self, path: str, top_k: int) -> dict:
        """`{"path", "top_k": [{"label", "score"}...]}` for one video; raises `media.MediaError`."""
        return top_k_result(path, self.probabilities(path), self.model.labels, top_k)


def predict(model_path: str, paths: List[str], top_k: int = 5, variant: Optional[str] = None,
            num_threads: Optional[int] = None) -> Iterator[dict]:
    """Yields one result per path; a file that can't be decoded yields `{"path", "error"}`."""
    predictor = LiteRTPredictor(model_path, variant, num_threads)
    for path in paths:
        try:
            yield predictor.predict_file(path, top_k)
        except media.MediaError as error:
            yield {"path": path, "error": error.reason}
