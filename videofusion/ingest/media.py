"""Media decoding with PyAV: a video file → frames at a target rate and mono float32 audio, streamed.

Frames are chosen by presentation timestamp, not by index: the frame kept for time `t` is the last one
whose timestamp is at or before `t`, so a 25 fps or variable-rate source resampled to 10 fps shows what a
player would show at each tenth of a second. Each kept frame is scaled by FFmpeg so that its short side is
`short_side` pixels, turned upright when the file carries rotation metadata, and handed to `frame_fn`
(e.g. a JPEG encoder), so raw frames never pile up. Audio is downmixed to mono (as FFmpeg downmixes),
resampled by FFmpeg and placed on the video's clock (leading silence where audio starts late, samples
dropped where it starts early or before the span asked for).

The file is demuxed once and cut into consecutive segments of at most `max_clip_seconds`; each segment
is yielded as soon as its frames and audio are complete, so memory stays bounded whatever the length.
A local file is opened by FFmpeg itself; a URL (`gs://…`, any path `tf.io.gfile` opens) is read through
a Python file object (`fileio.open_file`), which FFmpeg reads, seeks and sizes (by seeking to its end)
as it would a local file.

Example:

>>> media = read_media("clip.mp4", fps=10, short_side=64)  # doctest: +SKIP
>>> len(media.frames), media.frames[0].shape, media.waveform.dtype  # doctest: +SKIP
(20, (64, 64, 3), dtype('float32'))
"""

import contextlib
import dataclasses
import math
from typing import Any, Callable, Iterator, List, Optional

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from videofusion import fileio

_EPSILON_S = 1e-6
# A file whose decoded video ends this much before its declared duration is reported as truncated:
# tight when the video stream states its own duration, loose when only the container's (audio may
# legitimately run on past the video) is known.
_TRUNCATION_TOLERANCE_S = 0.25
_LOOSE_TRUNCATION_TOLERANCE_S = 0.5
_LOOSE_TRUNCATION_TOLERANCE_FRACTION = 0.05


class MediaError(Exception):
    """A file that cannot be decoded; the message names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclasses.dataclass
class Media:
    """Decoded media: `frames` (whatever `frame_fn` made of each frame) and the mono waveform.

    `start_s` is the time of the first frame relative to the start of the file (or of the span asked
    for), `duration_s` the time the frames cover.
    """

    frames: List[Any]
    frame_rate: float
    waveform: np.ndarray
    sample_rate: int
    has_audio: bool
    start_s: float
    duration_s: float


def scaled_size(width: int, height: int, short_side: int) -> tuple:
    """(width, height) scaled, aspect kept, so that the short side is `short_side` pixels.

    >>> scaled_size(320, 240, 128)
    (171, 128)
    """
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _picture(frame: av.VideoFrame, short_side: int, reformatter: VideoReformatter, pixel_format: str) -> np.ndarray:
    """The frame as upright uint8 `[h, w, 3]` (`pixel_format`: `rgb24` or `bgr24`) with short side `short_side`.

    One `reformatter` serves a whole video: `VideoFrame.reformat` would set up a new FFmpeg scaler for
    every frame (about 3x the cost). One scaling thread: `prepare` parallelises over videos.
    """
    width, height = scaled_size(frame.width, frame.height, short_side)
    picture = reformatter.reformat(frame, width=width, height=height, format=pixel_format, threads=1).to_ndarray()
    quarter_turns = round(frame.rotation / 90) % 4  # rotation: counter-clockwise degrees for display
    return np.ascontiguousarray(np.rot90(picture, quarter_turns)) if quarter_turns else picture


# Kept frames whose pictures are made (scaled, converted, `frame_fn`) together, a few at a time, rather
# than each between two decoded frames: the decoder's data and the scaler's and encoder's then evict each
# other from the CPU caches less often. At most this many pixels of decoded frames wait (8 frames of
# 640×360, 4 of 1080p, 1 of 4K).
_PICTURE_BATCH_FRAMES = 8
_PICTURE_BATCH_PIXELS = 1 << 23


class _Output:
    """A kept frame, then (once `FrameSampler.make_pictures` has run) what `frame_fn` made of it."""

    __slots__ = ("frame", "value")

    def __init__(self, frame):
        self.frame, self.value = frame, None


class FrameSampler:
    """Turns timestamped frames into frames at `fps` from `origin_s`, by presentation time.

    Used by `iter_segments` and by live streams (`serving/live_source.py`), which call `make_pictures`
    after every push so that no frame waits for the batch.

    Its outputs are `_Output`s, made into pictures by `make_pictures` every few kept frames (at most
    `_PICTURE_BATCH_FRAMES`) and before a segment is handed out.
    """

    def __init__(self, fps: float, short_side: int, frame_fn, origin_s: float, end_s: Optional[float],
                 pixel_format: str = "rgb24"):
        self.step = 1.0 / fps
        self._short_side = short_side
        self._frame_fn = frame_fn
        self._pixel_format = pixel_format
        self._reformatter = VideoReformatter()
        self.origin = origin_s
        self._end = end_s
        self._held = None
        self._held_output = None
        self._last_time = None
        self._last_duration = self.step
        self.emitted = 0
        self._waiting: List[_Output] = []  # outputs without their picture yet
        self._batch = _PICTURE_BATCH_FRAMES

    def make_pictures(self):
        """Makes the picture of every output still without one, in order."""
        for output in self._waiting:
            picture = _picture(output.frame, self._short_side, self._reformatter, self._pixel_format)
            output.value, output.frame = self._frame_fn(picture), None
        self._waiting = []

    def target(self, index: int) -> float:
        return self.origin + index * self.step

    def _due(self, before: float) -> Iterator[Any]:
        while self.target(self.emitted) < before - _EPSILON_S and (
            self._end is None or self.target(self.emitted) < self._end - _EPSILON_S
        ):
            if self._held_output is None:
                if not self._waiting:
                    pixels = self._held.width * self._held.height
                    self._batch = max(1, min(_PICTURE_BATCH_FRAMES, _PICTURE_BATCH_PIXELS // max(1, pixels)))
                self._held_output = _Output(self._held)
                self._waiting.append(self._held_output)
                if len(self._waiting) >= self._batch:
                    self.make_pictures()
            self.emitted += 1
            yield self._held_output

    def push(self, frame: av.VideoFrame, time_s: float, duration_s: Optional[float]) -> Iterator[Any]:
        """Yields the output frames that are due before `frame` is shown, then holds `frame`."""
        if self._held is not None:
            yield from self._due(time_s)
        if self._held is None or time_s <= self.target(self.emitted) + _EPSILON_S:
            self._held, self._held_output = frame, None
        if duration_s:
            self._last_duration = duration_s
        elif self._last_time is not None and time_s > self._last_time:
            self._last_duration = time_s - self._last_time
        self._last_time = max(time_s, self._last_time or time_s)

    def finish(self) -> Iterator[Any]:
        """Yields the frames still due before the end of the last frame (at least one)."""
        if self._held is None:
            return
        yield from self._due(max(self._last_time + self._last_duration, self.origin + 2 * _EPSILON_S))

    @property
    def stopped_at_end(self) -> bool:
        """True once every frame of a span with an end time has been emitted."""
        return self._end is not None and self.target(self.emitted) >= self._end - _EPSILON_S


_SQRT1_2 = np.float32(np.sqrt(0.5))
# Source samples gathered before a call of the resampler: one call per decoded frame (1024 AAC samples)
# spent more time in PyAV's per-call work than in resampling.
_RESAMPLE_CHUNK = 16384
# Source samples queued (as decoded frames) before they are downmixed and resampled, in chunks of
# `_RESAMPLE_CHUNK`: each round of that work starts with cold CPU caches, so fewer, longer rounds.
_DRAIN_SAMPLES = 4 * _RESAMPLE_CHUNK


def _float_mono(frame: av.AudioFrame) -> Optional[np.ndarray]:
    """The frame's samples downmixed to mono as FFmpeg downmixes (mono kept, stereo (L + R) / √2), for
    float mono or stereo frames (AAC's, the usual case); None for the others, which FFmpeg downmixes.

    Read from the frame's buffers and mixed by numpy, the same samples to within float rounding: with
    `AudioFrame.to_ndarray` and FFmpeg's downmix frame by frame, the audio of a 10 s 48 kHz stereo AAC
    clip took 47 ms; this way, resampled in chunks, 16 ms.
    """
    layout, sample_format, count = frame.layout, frame.format, frame.samples
    if layout.name not in ("mono", "stereo") or sample_format.name not in ("flt", "fltp"):
        return None
    channels = layout.nb_channels
    if sample_format.is_planar:
        planes = [np.frombuffer(plane, np.float32, count) for plane in frame.planes[:channels]]
    else:
        planes = list(np.frombuffer(frame.planes[0], np.float32, count * channels).reshape(count, channels).T)
    return planes[0].copy() if channels == 1 else (planes[0] + planes[1]) * _SQRT1_2


class AudioTrack:
    """Mono float32 samples on the video's clock, kept only until the segments that need them are out.

    `chunk` (default `_RESAMPLE_CHUNK`) is how many source samples are resampled at a time, and a
    quarter of how many are queued before that work starts: a live stream (`serving/live_source.py`)
    asks for small chunks, so that its sound arrives with little delay.

    Decoded frames are downmixed to mono at their own rate (`_float_mono`, else FFmpeg), gathered, and
    resampled by FFmpeg `_RESAMPLE_CHUNK` source samples at a time. `push` only queues a frame: the
    queue is downmixed and resampled in one go once it holds a chunk's samples (the same chunks, so the
    same samples, as frame by frame), in fewer, longer rounds: each round starts with caches the video
    decoder has just filled (the same work costs ~3x more between decoded frames than alone; the audio
    stage of `bench_prepare` went from 0.067 to 0.044 CPU s per minute of video).
    """

    def __init__(self, sample_rate: int, chunk: Optional[int] = None):
        self.sample_rate = sample_rate
        self._chunk = chunk or _RESAMPLE_CHUNK  # a live stream resamples small chunks: less delay
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        self._downmixer: Optional[av.AudioResampler] = None  # FFmpeg's, for what `_float_mono` does not take
        self._source: List[np.ndarray] = []  # mono samples at `_source_rate`, not resampled yet
        self._source_count = 0
        self._source_rate: Optional[int] = None
        self._chunks: List[np.ndarray] = []
        self._buffer_start = 0  # sample index (on the video clock) of the first buffered sample
        self._buffered = 0
        self._next_index: Optional[int] = None  # where the next resampled sample goes
        self._queue: List[av.AudioFrame] = []  # pushed frames, not downmixed yet
        self._queued = 0  # their samples
        self.finished = False
        self.seen = False

    @property
    def end(self) -> int:
        return self._buffer_start + self._buffered

    def _append(self, samples: np.ndarray):
        if self._next_index is None:
            return
        if self._next_index < self._buffer_start:  # before the span (or what was taken): dropped, counted
            dropped = min(len(samples), self._buffer_start - self._next_index)
            samples, self._next_index = samples[dropped:], self._next_index + dropped
            if not len(samples):
                return
        if self._next_index > self.end:  # audio starts after the video: leading silence
            gap = self._next_index - self.end
            self._chunks.append(np.zeros(gap, np.float32))
            self._buffered += gap
        if len(samples):
            self._chunks.append(samples)
            self._buffered += len(samples)
        self._next_index = self.end

    def _mono(self, frame: Optional[av.AudioFrame]) -> List[np.ndarray]:
        """`frame` (None: the end) downmixed to mono at its own rate."""
        mono = None if frame is None else _float_mono(frame)
        if mono is not None:
            return [mono]
        if self._downmixer is None:
            if frame is None:
                return []
            self._downmixer = av.AudioResampler(format="flt", layout="mono", rate=frame.sample_rate)
        return [out.to_ndarray().reshape(-1) for out in self._downmixer.resample(frame)]

    def _resample(self, flush: bool = False):
        """Resamples the gathered source samples (and with `flush`, those FFmpeg still holds)."""
        if self._source:
            source = av.AudioFrame.from_ndarray(np.concatenate(self._source)[np.newaxis], format="flt", layout="mono")
            source.sample_rate = self._source_rate
            self._source, self._source_count = [], 0
            for out in self._resampler.resample(source):
                self._append(out.to_ndarray().reshape(-1))
        if flush:
            for out in self._resampler.resample(None):
                self._append(out.to_ndarray().reshape(-1))

    def push(self, frame: av.AudioFrame, time_s: Optional[float], origin_s: float):
        """Adds a decoded frame. The first frame's `time_s` (None: the origin) places the track on the
        video's clock; later frames follow on contiguously."""
        if self._next_index is None:
            start = (time_s if time_s is not None else origin_s) - origin_s
            self._next_index = int(round(start * self.sample_rate))
            self.seen = True
        self._queue.append(frame)
        self._queued += frame.samples
        if self._source_count + self._queued >= _DRAIN_SAMPLES * self._chunk // _RESAMPLE_CHUNK:
            self.drain()

    def drain(self):
        """Downmixes the queued frames, resampling a chunk as soon as it is gathered, as frame by frame."""
        queue, self._queue, self._queued = self._queue, [], 0
        for frame in queue:
            if self._source_rate not in (None, frame.sample_rate):
                self._resample()  # a new rate (rare): what came at the old one first
            self._source_rate = frame.sample_rate
            for mono in self._mono(frame):
                self._source.append(mono)
                self._source_count += len(mono)
            if self._source_count >= self._chunk:
                self._resample()

    def finish(self):
        if self.seen:
            self.drain()
            self._source += self._mono(None)
            self._resample(flush=True)
        self.finished = True

    def take(self, first: int, count: int) -> np.ndarray:
        """Samples `[first, first + count)`, zero-padded; drops everything before `first + count`."""
        chunks = self._chunks or [np.zeros(0, np.float32)]
        buffer = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        window = buffer[max(0, first - self._buffer_start) : max(0, first + count - self._buffer_start)]
        waveform = np.zeros(count, np.float32)
        np.clip(window, -1.0, 1.0, out=waveform[: len(window)])
        keep_from = max(0, first + count - self._buffer_start)
        rest = buffer[keep_from:]
        self._chunks, self._buffer_start, self._buffered = [rest], first + count, len(rest)
        return waveform


def stream_time_base(stream) -> Optional[float]:
    """The stream's time base as a float: multiplying every frame's `pts` by the `Fraction` cost more
    than the rest of the frame's bookkeeping."""
    return float(stream.time_base) if stream.time_base is not None else None


def frame_time(frame, time_base: Optional[float], index: int, stream) -> float:
    if frame.pts is not None and time_base is not None:
        return frame.pts * time_base
    return index / float(stream.average_rate or 25)


def _parse_clock(text: str) -> Optional[float]:
    """'00:00:02.000000000' (Matroska's per-track DURATION tag) → seconds."""
    try:
        hours, minutes, seconds = text.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


def _declared_duration(container, stream) -> tuple:
    """(seconds, exact): the video stream's own duration if the file states one (exact), else the
    container's, which may include a longer audio track."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), True
    tagged = _parse_clock(stream.metadata.get("DURATION"))
    if tagged:
        return tagged, True
    if container.duration:
        return container.duration / 1e6, False
    return None, False


class _Segmenter:
    """Collects output frames into segments and pairs each with its audio window."""

    def __init__(self, sampler: FrameSampler, audio: Optional[AudioTrack], sample_rate: int, frames_per_segment: int):
        self._sampler = sampler
        self._audio = audio
        self._sample_rate = sample_rate
        self._per_segment = frames_per_segment
        self._current: List[Any] = []
        self._first_index = 0
        self._pending: List[tuple] = []

    def add(self, outputs: Iterator[Any]):
        for output in outputs:
            self._current.append(output)
            if len(self._current) == self._per_segment:
                self._close()

    def _close(self):
        if self._current:
            self._pending.append((self._first_index, self._current))
            self._first_index += len(self._current)
            self._current = []

    @property
    def has_pending(self) -> bool:
        """Whether a segment's frames are complete (it goes out once its audio is)."""
        return bool(self._pending)

    def ready(self, flush: bool = False) -> Iterator[Media]:
        if flush:
            self._close()
        step = self._sampler.step
        while self._pending:
            first, frames = self._pending[0]
            start_s = first * step
            first_sample = int(round(start_s * self._sample_rate))
            count = int(round((first + len(frames)) * step * self._sample_rate)) - first_sample
            audio = self._audio
            if not (flush or audio is None or audio.finished or audio.end >= first_sample + count):
                return
            self._pending.pop(0)
            self._sampler.make_pictures()
            frames = [output.value for output in frames]
            if self._audio is not None and self._audio.seen:
                waveform = self._audio.take(first_sample, count)
            else:
                waveform = np.zeros(count, np.float32)
            yield Media(frames, 1.0 / step, waveform, self._sample_rate,
                        self._audio is not None and self._audio.seen, start_s, len(frames) * step)


def iter_segments(
    path: str,
    *,
    fps: float,
    short_side: int,
    sample_rate: int = 16000,
    max_clip_seconds: Optional[float] = None,
    start_s: Optional[float] = None,
    end_s: Optional[float] = None,
    frame_fn: Callable[[np.ndarray], Any] = lambda rgb: rgb,
    threads: int = 0,
    pixel_format: str = "rgb24",
) -> Iterator[Media]:
    """Decodes `path` (or its `[start_s, end_s)` span) into consecutive segments, streaming.

    Args:
      path: a video file PyAV (FFmpeg) can read: a local path or a URL (`fileio`).
      fps: target frame rate; frames are picked by presentation timestamp.
      short_side: the short side of the output frames, in pixels.
      sample_rate: the output audio rate; a file without audio gets silence of the video's length.
      max_clip_seconds: longest segment; None for one segment with everything.
      start_s, end_s: the span to decode, in seconds from the start of the file (None: all of it).
      frame_fn: applied to each output frame (uint8 `[height, width, 3]`, channels as `pixel_format`
        says), e.g. a JPEG encoder.
      threads: decoder threads; 0 lets FFmpeg choose (best for one video), 1 suits many videos
        decoded in parallel processes.
      pixel_format: `rgb24`, or `bgr24` for OpenCV (FFmpeg converts to it in half the time, as fast as
        to planar YUV, and no less accurately: its `rgb24` output takes a slower path).

    Yields:
      `Media` per segment; `start_s` of each is relative to the first frame of the span.

    Raises:
      MediaError: the file is missing, empty, unreadable, truncated, or has no video stream or frames.
    """
    try:
        size, _ = fileio.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise MediaError(path, "file not found") from None
    except OSError as error:  # e.g. no permission to read the bucket
        raise MediaError(path, f"cannot read: {error}") from error
    if size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        yield from _decode(path, fps, short_side, sample_rate, max_clip_seconds, start_s, end_s, frame_fn,
                           threads, pixel_format)
    except MediaError:
        raise
    except (av.FFmpegError, OSError) as error:  # the decoder's and the file system's errors only: a bug
        raise MediaError(path, f"cannot decode: {error}") from error  # of ours must not pass for a bad file


def stream_start(stream) -> float:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


@contextlib.contextmanager
def _open(path: str):
    """The container of `path`: opened by name for a local file (FFmpeg's own reader, the fast path),
    from a `fileio` file object for a URL."""
    if not fileio.is_url(path):
        with av.open(path) as container:
            yield container
        return
    with fileio.open_file(path, "rb") as file, av.open(file) as container:
        yield container


def _decode(path, fps, short_side, sample_rate, max_clip_seconds, start_s, end_s, frame_fn, threads, pixel_format):
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        video.codec_context.thread_count = threads
        audio_stream = container.streams.audio[0] if container.streams.audio else None
        origin = stream_start(video) + (start_s or 0.0)
        if start_s:
            container.seek(int(origin / video.time_base), stream=video, backward=True, any_frame=False)
        end = None if end_s is None else stream_start(video) + end_s
        sampler = FrameSampler(fps, short_side, frame_fn, origin, end, pixel_format)
        audio = AudioTrack(sample_rate) if audio_stream is not None else None
        per_segment = max(1, int(round(max_clip_seconds * fps))) if max_clip_seconds else math.inf
        segments = _Segmenter(sampler, audio, sample_rate, per_segment)
        video_time_base = stream_time_base(video)
        audio_time_base = stream_time_base(audio_stream) if audio_stream is not None else None
        decoded = 0
        video_index = video.index
        for packet in container.demux([s for s in (video, audio_stream) if s is not None]):
            if packet.stream_index == video_index:
                for frame in packet.decode():
                    time_s = frame_time(frame, video_time_base, decoded, video)
                    duration = frame.duration * video_time_base if frame.duration and video_time_base else None
                    segments.add(sampler.push(frame, time_s, duration))
                    decoded += 1
            else:
                for frame in packet.decode():
                    has_time = frame.pts is not None and audio_time_base is not None
                    audio.push(frame, frame.pts * audio_time_base if has_time else None, origin)
            if segments.has_pending:
                yield from segments.ready()
            if sampler.stopped_at_end:
                if audio is not None:
                    audio.drain()  # what is queued may already cover the span
                if audio is None or audio.end >= _span_end_sample(sampler, sample_rate):
                    break
        if decoded == 0:
            raise MediaError(path, "video stream has no decodable frames")
        segments.add(sampler.finish())
        if sampler.emitted == 0:
            raise MediaError(path, f"no frames in the span {start_s}–{end_s} s")
        if audio is not None:
            audio.finish()
        _check_complete(path, container, video, sampler)
        yield from segments.ready(flush=True)


def _span_end_sample(sampler: FrameSampler, sample_rate: int) -> int:
    return int(round(sampler.emitted * sampler.step * sample_rate))


def _check_complete(path, container, video, sampler):
    """Raises if the decoded video ends well before the duration the container declares."""
    declared, exact = _declared_duration(container, video)
    if declared is None or sampler.stopped_at_end:
        return
    decoded_end = sampler.origin - stream_start(video) + sampler.emitted * sampler.step
    if exact:
        tolerance = max(_TRUNCATION_TOLERANCE_S, 2 * sampler.step)
    else:
        tolerance = max(_LOOSE_TRUNCATION_TOLERANCE_S, _LOOSE_TRUNCATION_TOLERANCE_FRACTION * declared)
    if decoded_end < declared - tolerance:
        raise MediaError(path, f"truncated: video stream ends at {decoded_end:.2f} s of {declared:.2f} s declared")


def read_media(
    path: str,
    *,
    fps: float,
    short_side: int,
    sample_rate: int = 16000,
    frame_fn: Callable[[np.ndarray], Any] = lambda rgb: rgb,
) -> Media:
    """The whole of `path` as one `Media` (see `iter_segments` for the arguments and errors)."""
    (whole,) = iter_segments(path, fps=fps, short_side=short_side, sample_rate=sample_rate, frame_fn=frame_fn)
    return whole
