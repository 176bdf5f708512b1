"""Media decoding with PyAV: a video file → frames at a target rate and 16 kHz mono float32 audio.

Frames are chosen by presentation timestamp, not by index: the frame kept for time `t` is the last one
whose timestamp is at or before `t`, so a 25 fps or variable-rate source resampled to 10 fps shows what a
player would show at each tenth of a second. Each kept frame is scaled by FFmpeg so that its short side
is `short_side` pixels, then handed to `frame_fn` (e.g. a JPEG encoder) so that raw frames never pile up
in memory. The file is demuxed once; video and audio packets are decoded as they arrive.

Example:

>>> media = read_media("clip.mp4", fps=10, short_side=64)  # doctest: +SKIP
>>> len(media.frames), media.frames[0].shape, media.waveform.dtype  # doctest: +SKIP
(20, (64, 64, 3), dtype('float32'))
"""

import dataclasses
import os
from typing import Any, Callable, List, Optional

import av
import numpy as np

_EPSILON_S = 1e-6


class MediaError(Exception):
    """A file that cannot be decoded; the message names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclasses.dataclass
class Media:
    """Decoded media: `frames` (whatever `frame_fn` made of each frame) and the mono waveform."""

    frames: List[Any]
    frame_rate: float
    waveform: np.ndarray
    sample_rate: int
    has_audio: bool
    duration_s: float


def scaled_size(width: int, height: int, short_side: int) -> tuple:
    """(width, height) scaled, aspect kept, so that the short side is `short_side` pixels.

    >>> scaled_size(320, 240, 128)
    (171, 128)
    """
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _FrameResampler:
    """Turns a stream of timestamped frames into frames at `fps`, by presentation time."""

    def __init__(self, fps: float, short_side: int, frame_fn: Callable[[np.ndarray], Any]):
        self._step = 1.0 / fps
        self._short_side = short_side
        self._frame_fn = frame_fn
        self._origin: Optional[float] = None
        self._held = None
        self._held_output = None
        self._last_time = 0.0
        self._last_duration = self._step
        self.outputs: List[Any] = []

    def _emit_held(self):
        if self._held_output is None:
            width, height = scaled_size(self._held.width, self._held.height, self._short_side)
            rgb = self._held.reformat(width=width, height=height, format="rgb24").to_ndarray()
            self._held_output = self._frame_fn(rgb)
        self.outputs.append(self._held_output)

    def _next_target(self) -> float:
        return self._origin + len(self.outputs) * self._step

    def push(self, frame: av.VideoFrame, time_s: float, duration_s: Optional[float]):
        if self._origin is None:
            self._origin = time_s
        while self._held is not None and self._next_target() < time_s - _EPSILON_S:
            self._emit_held()
        self._held, self._held_output = frame, None
        if duration_s:
            self._last_duration = duration_s
        elif time_s > self._last_time:
            self._last_duration = time_s - self._last_time
        self._last_time = time_s

    def finish(self) -> float:
        """Emits the frames still due before the end of the last frame; returns the video's duration."""
        if self._held is None:
            return 0.0
        end = self._last_time + self._last_duration
        while not self.outputs or self._next_target() < end - _EPSILON_S:
            self._emit_held()
        return end - self._origin


def _frame_time(frame, stream, index: int) -> float:
    if frame.pts is not None and stream.time_base is not None:
        return float(frame.pts * stream.time_base)
    rate = float(stream.average_rate or 25)
    return index / rate


def read_media(
    path: str,
    *,
    fps: float,
    short_side: int,
    sample_rate: int = 16000,
    frame_fn: Callable[[np.ndarray], Any] = lambda rgb: rgb,
) -> Media:
    """Decodes `path`: frames resampled to `fps` (short side `short_side`), audio to mono `sample_rate`.

    Args:
      path: a video file PyAV (FFmpeg) can read.
      fps: target frame rate; frames are picked by presentation timestamp.
      short_side: the short side of the output frames, in pixels.
      sample_rate: the output audio rate; a file without audio gets silence of the video's length.
      frame_fn: applied to each output frame (uint8 RGB `[height, width, 3]`), e.g. a JPEG encoder.

    Raises:
      MediaError: the file is missing, empty, unreadable, or has no video stream or no frames.
    """
    if not os.path.exists(path):
        raise MediaError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        return _decode(path, fps, short_side, sample_rate, frame_fn)
    except MediaError:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        raise MediaError(path, f"cannot decode: {error}") from error


def _decode(path, fps, short_side, sample_rate, frame_fn) -> Media:
    with av.open(path) as container:
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        streams = [video] + ([audio] if audio is not None else [])
        frames = _FrameResampler(fps, short_side, frame_fn)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        decoded_video = 0
        for packet in container.demux(streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    time_s = _frame_time(frame, video, decoded_video)
                    duration = float(frame.duration * video.time_base) if frame.duration else None
                    frames.push(frame, time_s, duration)
                    decoded_video += 1
                else:
                    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        if audio is not None:
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    duration_s = frames.finish()
    if not frames.outputs:
        raise MediaError(path, "video stream has no decodable frames")
    has_audio = audio is not None and bool(chunks)
    if has_audio:
        waveform = np.clip(np.concatenate(chunks).astype(np.float32), -1.0, 1.0)
    else:
        waveform = np.zeros(int(round(duration_s * sample_rate)), np.float32)
    return Media(frames.outputs, float(fps), waveform, sample_rate, has_audio, duration_s)
