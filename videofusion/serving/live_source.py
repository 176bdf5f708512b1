"""A live source decoded on a thread into a `LiveBuffer`: a video file, a camera or a network stream.

SOURCE is whatever PyAV (FFmpeg) opens: a file; a camera, `/dev/videoN` or its index `N` (Video4Linux);
a network stream (`rtsp://`, `http://`, an HLS playlist, `udp://`, ...). Frames are chosen by timestamp at
the run's fps and scaled to its short side, and the sound is downmixed and resampled to its sample rate,
by the very code `prepare` decodes with (`media.FrameSampler`, `media.AudioTrack`), one frame at a time.

- A file is played at its own speed (`realtime`, as a camera would deliver it) or as fast as the
  reader takes it; its end ends the stream.
- A camera or network stream that fails, ends or stalls (no data for `timeout_s`) is reopened after 1, 2,
  4... seconds (at most `max_backoff_s`), up to `max_retries` times in a row; each new connection
  continues the buffer's timeline where the last one stopped.

Example:

>>> buffer = LiveBuffer(fps=10, sample_rate=16000, window_frames=16, ahead_frames=30)  # doctest: +SKIP
>>> source = LiveSource("rtsp://camera.local/stream", buffer, short_side=64)  # doctest: +SKIP
>>> source.start()  # doctest: +SKIP
>>> buffer.wait(16); buffer.window(16).frames.shape  # doctest: +SKIP
(16, 64, 85, 3)
>>> source.stop(); source.ended  # doctest: +SKIP
'stopped'
"""

import dataclasses
import os
import re
import threading
import time
from typing import Optional

import av
from absl import logging

from videofusion.ingest import media
from videofusion.serving.live_buffer import LiveBuffer

# Source samples resampled at a time: about 20 ms at 48 kHz, so the sound keeps up with the frames.
_AUDIO_CHUNK = 1024
_CAMERA = re.compile(r"^(\d+|/dev/video\d+)$")


class SourceError(Exception):
    """A source that cannot be streamed; the message names the source and the reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """How a source is read.

    Attributes:
      realtime: a file is played at its own speed (else as fast as the reader takes its windows).
      timeout_s: a live source that sends nothing for this long has stalled, and is reopened.
      max_retries: reopenings of a live source in a row before giving up.
      backoff_s, max_backoff_s: the wait before the first reopening, doubled each time up to the cap.
    """

    realtime: bool = True
    timeout_s: float = 10.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


def is_file(source: str) -> bool:
    """Whether `source` is a file (played, then ended) rather than a camera or a network stream.

    >>> is_file("rtsp://127.0.0.1:8554/live"), is_file("0"), is_file("/dev/video0")
    (False, False, False)
    """
    return not _CAMERA.match(source) and "://" not in source


def open_arguments(source: str) -> tuple:
    """(what `av.open` opens, its format or None): a camera index is its Video4Linux device.

    >>> open_arguments("0"), open_arguments("http://127.0.0.1:8080/live.ts")
    (('/dev/video0', 'v4l2'), ('http://127.0.0.1:8080/live.ts', None))
    """
    if _CAMERA.match(source):
        return (source if source.startswith("/dev/") else f"/dev/video{source}"), "v4l2"
    return source, None


class LiveSource:
    """Decodes `source` into `buffer` on a daemon thread (`start`, `stop`); `ended` says why it stopped."""

    def __init__(self, source: str, buffer: LiveBuffer, short_side: int, options: SourceOptions = SourceOptions()):
        self.source, self.is_file = source, is_file(source)
        if self.is_file and not os.path.isfile(source):
            raise SourceError(source, "file not found")
        self._buffer, self._short_side, self._options = buffer, short_side, options
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="videofusion-stream-decoder", daemon=True)
        self.ended: Optional[str] = None  # "end of file", "stopped", "gave up: ...", "failed: ..."
        self.connections = 0
        self.error: Optional[BaseException] = None  # a bug of ours, raised again by the reader

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait_s: float = 2.0) -> None:
        """Stops decoding (within `wait_s`; a read in progress ends by its timeout) and ends the buffer."""
        self._stop.set()
        self._buffer.end()
        self._thread.join(wait_s)

    def _run(self):
        try:
            self.ended = self._read_file() if self.is_file else self._read_live()
        except BaseException as error:  # noqa: BLE001 — handed to the reader, which raises it
            self.error, self.ended = error, f"failed: {error}"
        if self._stop.is_set():
            self.ended = "stopped"
        self._buffer.end()

    def _read_file(self) -> str:
        try:
            self._session()
        except (av.FFmpegError, OSError) as error:
            raise SourceError(self.source, f"cannot decode: {error}") from error
        return "end of file"

    def _read_live(self) -> str:
        attempts = 0  # reopenings since the last connection that delivered frames
        while not self._stop.is_set():
            try:
                delivered = self._session()
                reason = "the stream ended"
            except (av.FFmpegError, OSError) as error:  # refused, reset, timed out: all worth another try
                delivered, reason = False, str(error) or type(error).__name__
            if self._stop.is_set():
                break
            attempts = 0 if delivered else attempts
            if attempts == self._options.max_retries:
                logging.error("%s: giving up after %d reconnections failed: %s", self.source, attempts, reason)
                return f"gave up: {reason}"
            attempts += 1
            wait = min(self._options.backoff_s * 2 ** (attempts - 1), self._options.max_backoff_s)
            logging.warning("%s: %s; reconnecting in %g s (attempt %d of %d)", self.source, reason, wait, attempts,
                            self._options.max_retries)
            self._stop.wait(wait)
        return "stopped"

    def _session(self) -> bool:
        """Reads one connection (a whole file) into the buffer; whether it delivered frames."""
        url, format_name = open_arguments(self.source)
        timeout = None if self.is_file else (self._options.timeout_s, self._options.timeout_s)
        with av.open(url, format=format_name, timeout=timeout) as container:
            if not container.streams.video:
                raise SourceError(self.source, "no video stream")
            if self.connections:
                logging.info("%s: reconnected", self.source)
            self.connections += 1
            return _Session(self, container).run()


class _Session:
    """One connection's decoding: its own clock origin, placed where the buffer's timeline stands."""

    def __init__(self, owner: LiveSource, container):
        self._owner, self._buffer = owner, owner._buffer
        self._container = container
        self._video = container.streams.video[0]
        self._video.thread_type = "AUTO"
        self._audio_stream = container.streams.audio[0] if container.streams.audio else None
        self._video_time_base = media.stream_time_base(self._video)
        self._audio_time_base = media.stream_time_base(self._audio_stream) if self._audio_stream else None
        self._buffer.has_audio = self._audio_stream is not None
        self._buffer.align_audio()
        self._sampler: Optional[media.FrameSampler] = None
        self._audio = media.AudioTrack(self._buffer.sample_rate, chunk=_AUDIO_CHUNK) if self._audio_stream else None
        self._early_audio = []  # audio frames decoded before the first video frame fixed the origin
        self._audio_taken = 0
        self._clock = None  # monotonic time of the origin, for a file played at its speed
        self._decoded = 0

    def run(self) -> bool:
        streams = [s for s in (self._video, self._audio_stream) if s is not None]
        for packet in self._container.demux(streams):
            if self._owner._stop.is_set():
                return self._decoded > 0
            for frame in packet.decode():
                if packet.stream_index == self._video.index:
                    if not self._add_video(frame):
                        return True
                else:
                    self._add_audio(frame)
        if self._sampler is not None:
            self._deliver(self._sampler.finish())
        if self._audio is not None and self._sampler is not None:
            self._audio.finish()
            self._move_audio()
        return self._decoded > 0

    def _add_video(self, frame) -> bool:
        time_s = media.frame_time(frame, self._video_time_base, self._decoded, self._video)
        if self._sampler is None:
            origin = media.stream_start(self._video) if self._owner.is_file else time_s
            self._sampler = media.FrameSampler(self._buffer.fps, self._owner._short_side, lambda rgb: rgb, origin, None)
            self._clock = time.monotonic() - (time_s - origin)
            for early in self._early_audio:
                self._add_audio(early)
            self._early_audio = []
        if self._owner.is_file and self._owner._options.realtime:
            self._owner._stop.wait(max(0.0, self._clock + time_s - self._sampler.origin - time.monotonic()))
        duration = frame.duration * self._video_time_base if frame.duration and self._video_time_base else None
        self._decoded += 1
        return self._deliver(self._sampler.push(frame, time_s, duration))

    def _deliver(self, outputs) -> bool:
        """Adds the sampler's due frames to the buffer (their sound first); False once the buffer has ended."""
        outputs = list(outputs)
        self._sampler.make_pictures()
        self._move_audio()
        arrival = time.monotonic()
        return all(self._buffer.add_frame(output.value, arrival) for output in outputs)

    def _add_audio(self, frame):
        if self._sampler is None:
            self._early_audio.append(frame)
            return
        has_time = frame.pts is not None and self._audio_time_base is not None
        self._audio.push(frame, frame.pts * self._audio_time_base if has_time else None, self._sampler.origin)
        self._audio.drain()
        self._move_audio()

    def _move_audio(self):
        if self._audio is None or self._audio.end <= self._audio_taken:
            return
        count = self._audio.end - self._audio_taken
        self._buffer.add_audio(self._audio.take(self._audio_taken, count))
        self._audio_taken += count
