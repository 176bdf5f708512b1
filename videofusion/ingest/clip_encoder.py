"""One video → a file of its TFRecord-framed clip records; the work `prepare`'s worker processes do.

Each segment is encoded and appended to the task's chunk file as soon as it is decoded, so memory holds
one segment, whatever the video's length; `prepare` then appends the finished chunk to its shard. A
video that fails half-way leaves no chunk. This module imports no TensorFlow (records are encoded by
`record_schema.encode_clip`'s own protobuf writer and framed by `tfrecord_writer`), so workers start in a fraction
of a second and stay small.

Example:

>>> task = EncodeTask(path="a.mp4", resolved="/data/a.mp4", label="cat", label_index=0, caption=None,
...                   start=None, end=None, params=EncodeParams(fps=10.0, short_side=128, sample_rate=16000,
...                   max_clip_seconds=30.0, jpeg_quality=90), chunk_path="/tmp/a.part")
>>> result = encode_video(task)  # doctest: +SKIP
>>> result.clips, result.error  # doctest: +SKIP
(1, None)
"""

import dataclasses
import os
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from videofusion.contract import record_schema
from videofusion.ingest import media, tfrecord_writer


@dataclasses.dataclass(frozen=True)
class EncodeParams:
    """How every video of a `prepare` run is decoded and stored (`prepare.PrepareOptions.encode_params`)."""

    fps: float
    short_side: int
    sample_rate: int
    max_clip_seconds: Optional[float]
    jpeg_quality: int
    decoder_threads: int = 0  # 0: FFmpeg chooses; prepare uses 1 when videos are decoded in parallel


@dataclasses.dataclass(frozen=True)
class EncodeTask:
    """One manifest entry to encode."""

    path: str
    resolved: str
    label: str
    label_index: int
    caption: Optional[str]
    start: Optional[float]
    end: Optional[float]
    params: EncodeParams
    chunk_path: Optional[str] = None  # where `encode_video` writes; unused by `clip_records`


@dataclasses.dataclass
class EncodeResult:
    """What one video became: `clips` records in `chunk_path`, or the reason it was skipped."""

    path: str
    label: str
    clips: int
    duration_s: float
    chunk_path: Optional[str]
    error: Optional[str] = None


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 RGB image `[height, width, 3]`, encoded with OpenCV."""
    return encode_bgr_jpeg(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)


def encode_bgr_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 BGR image `[height, width, 3]` (OpenCV's channel order; `prepare` has FFmpeg
    scale its frames to it)."""
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode a frame as JPEG")
    return buffer.tobytes()


def _segment_record(task: EncodeTask, segment: media.Media) -> List[bytes]:
    """The clip record of `segment`, as `record_schema.encode_clip_parts` (the JPEGs not copied)."""
    start_s = (task.start or 0.0) + segment.start_s
    return record_schema.encode_clip_parts(
        record_schema.Clip(
            label_index=task.label_index,
            label_text=task.label,
            filename=task.path,
            start_us=int(round(start_s * 1e6)),
            end_us=int(round((start_s + segment.duration_s) * 1e6)),
            frame_rate=segment.frame_rate,
            jpeg_frames=segment.frames,
            waveform=segment.waveform,
            sample_rate=segment.sample_rate,
            has_audio=segment.has_audio,
            caption=task.caption,
        )
    )


def clip_records(task: EncodeTask) -> Iterator[Tuple[bytes, float]]:
    """`(serialized record, duration in seconds)` of each of `task`'s clips, as it is decoded: what
    `prepare` stores and `videofusion predict` feeds the SavedModel. Raises `media.MediaError`."""
    for segment in _segments(task, task.params):
        yield b"".join(_segment_record(task, segment)), segment.duration_s


def encode_video(task: EncodeTask) -> EncodeResult:
    """Decodes `task`'s video into its chunk file; a file that can't be used gives a result with `error`."""
    clips, duration_s = 0, 0.0
    try:
        with open(task.chunk_path, "wb") as chunk:
            for segment in _segments(task, task.params):
                chunk.writelines(tfrecord_writer.frame_parts(_segment_record(task, segment)))
                clips += 1
                duration_s += segment.duration_s
    except media.MediaError as error:
        os.remove(task.chunk_path)
        return EncodeResult(task.path, task.label, 0, 0.0, None, error.reason)
    return EncodeResult(task.path, task.label, clips, duration_s, task.chunk_path)


def _segments(task: EncodeTask, params: EncodeParams):
    return media.iter_segments(
        task.resolved,
        fps=params.fps,
        short_side=params.short_side,
        sample_rate=params.sample_rate,
        max_clip_seconds=params.max_clip_seconds,
        start_s=task.start,
        end_s=task.end,
        frame_fn=lambda bgr: encode_bgr_jpeg(bgr, params.jpeg_quality),
        threads=params.decoder_threads,
        pixel_format="bgr24",
    )
