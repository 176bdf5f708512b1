"""A ring buffer of a live stream's last seconds: frames at the run's fps and mono audio at its sample rate.

A decoder thread appends (`add_frame`, `add_audio`); the inference loop reads the window that ends at a
frame index (`window`) once it is `ready`. The timeline is the buffer's own: frame `i` shows stream time
`i / fps` seconds after the first frame, and sample `j` plays at `j / sample_rate`, whatever the source's
timestamps (a reconnected network stream continues where the last one stopped, `align_audio`).

A window is ready when its frames are in and its sound is too, or when the sound cannot be waited for:
the source has no audio track, or the frames have run `audio_grace_s` ahead of the sound (a lost track,
or one that stopped): what is missing is then silence, which the model treats as absent sound
(`transforms.audio_present`). Frames of different sizes (a source whose resolution changed) are
centre-cropped to their common size: their short sides are equal, so the model's centre square is
unchanged.

With `block=True` (a file played as fast as possible) the decoder waits rather than overwrite what the
reader has not taken; otherwise the oldest frames are dropped, and the reader skips windows.

Example:

>>> buffer = LiveBuffer(fps=10, sample_rate=8, window_frames=2, ahead_frames=2)
>>> for i in range(3):
...     _ = buffer.add_frame(np.full((2, 3, 3), i, np.uint8), arrival=float(i))
>>> buffer.add_audio(np.ones(2, np.float32))  # 0.25 s of sound: the first 2 frames and a half
>>> buffer.ready_end()
2
>>> window = buffer.window(2)
>>> window.frames[:, 0, 0, 0].tolist(), window.waveform.tolist(), window.end_s, window.arrival
([0, 1], [1.0, 1.0], 0.2, 1.0)
"""

import collections
import dataclasses
import threading
from typing import Optional

import numpy as np


@dataclasses.dataclass
class Window:
    """The frames uint8 `[window_frames, h, w, 3]` and waveform float32 `[samples]` of one window, its
    span on the stream's timeline (seconds) and the monotonic time its last frame arrived."""

    frames: np.ndarray
    waveform: np.ndarray
    start_s: float
    end_s: float
    arrival: float


class LiveBuffer:
    """The last `window_frames + ahead_frames` frames of a stream and their sound; thread-safe.

    Args:
      fps, sample_rate: the run's frame rate and sample rate.
      window_frames: the frames of one window (the model's clip).
      ahead_frames: how far the newest frame may run past the end of the window being read: the hop
        and the audio grace.
      audio_grace_s: how far the frames may run ahead of the sound before a window goes without it.
      block: whether `add_frame` waits for the reader (nothing dropped) instead of dropping old frames.
    """

    def __init__(self, fps: float, sample_rate: int, window_frames: int, ahead_frames: int,
                 audio_grace_s: float = 1.0, block: bool = False):
        self.fps, self.sample_rate, self.window_frames = fps, sample_rate, window_frames
        self._capacity = window_frames + ahead_frames
        self._ahead = ahead_frames
        self._grace = int(round(audio_grace_s * fps))
        self._block = block
        self._frames = collections.deque()  # (picture, arrival) of frames [first_frame, frames_count)
        self._first_frame = 0
        self._audio = np.zeros(0, np.float32)  # samples [_first_sample, audio_count)
        self._first_sample = 0
        self.has_audio = True  # False while the source has no audio track
        self._taken = 0  # end of the last window read
        self._ended = False
        self._changed = threading.Condition()

    @property
    def frames_count(self) -> int:
        return self._first_frame + len(self._frames)

    @property
    def audio_count(self) -> int:
        return self._first_sample + len(self._audio)

    def sample_index(self, frame_index: int) -> int:
        """The first sample that plays with frame `frame_index`."""
        return int(round(frame_index * self.sample_rate / self.fps))

    def add_frame(self, picture: np.ndarray, arrival: float) -> bool:
        """Appends a frame uint8 `[h, w, 3]` that arrived at monotonic time `arrival`; False once ended."""
        with self._changed:
            while self._block and not self._ended and self.frames_count >= self._taken + self._ahead:
                self._changed.wait()
            if self._ended:
                return False
            self._frames.append((picture, arrival))
            while len(self._frames) > self._capacity:
                self._frames.popleft()
                self._first_frame += 1
            self._trim_audio()
            self._changed.notify_all()
            return True

    def add_audio(self, samples: np.ndarray) -> None:
        """Appends mono float32 samples that follow the last ones."""
        with self._changed:
            self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
            self._trim_audio()
            self._changed.notify_all()

    def align_audio(self) -> None:
        """Pads the sound with silence, or cuts it, to end where the frames end (a new connection starts)."""
        with self._changed:
            missing = self.sample_index(self.frames_count) - self.audio_count
            if missing > 0:
                self._audio = np.concatenate([self._audio, np.zeros(missing, np.float32)])
            elif missing < 0:
                self._audio = self._audio[: max(0, len(self._audio) + missing)]
            self._trim_audio()

    def _trim_audio(self):
        drop = min(len(self._audio), self.sample_index(self._first_frame) - self._first_sample)
        if drop > 0:
            self._audio = self._audio[drop:]
            self._first_sample += drop

    def ready_end(self) -> int:
        """The end (exclusive frame index) up to which windows can be read now."""
        with self._changed:
            return self._ready_end()

    def _ready_end(self) -> int:
        if self._ended or not self.has_audio:
            return self.frames_count
        heard = int(self.audio_count * self.fps / self.sample_rate)  # frames whose sound is complete
        return min(self.frames_count, max(heard, self.frames_count - self._grace))

    def wait(self, end: int, timeout: Optional[float] = None) -> int:
        """Waits until the window ending at frame `end` is ready or the stream has ended; `ready_end()`."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or self._ready_end() >= end, timeout)
            return self._ready_end()

    def window(self, end: int) -> Window:
        """The window of frames `[end - window_frames, end)` and their sound; lets a blocked decoder go on."""
        with self._changed:
            start = end - self.window_frames
            if start < self._first_frame or end > self.frames_count:
                raise IndexError(f"window [{start}, {end}) is not in the buffer [{self._first_frame}, "
                                 f"{self.frames_count})")
            chosen = [self._frames[i - self._first_frame] for i in range(start, end)]
            first, last = self.sample_index(start), self.sample_index(end)
            waveform = np.zeros(last - first, np.float32)
            held = self._audio[first - self._first_sample : last - self._first_sample]
            waveform[: len(held)] = held
            self._taken = max(self._taken, end)
            self._changed.notify_all()
        frames = _common_size([picture for picture, _ in chosen])
        return Window(frames, waveform, start / self.fps, end / self.fps, chosen[-1][1])

    def end(self) -> None:
        """Marks the stream ended: readers stop waiting, `add_frame` refuses more."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def ended(self) -> bool:
        return self._ended


def _common_size(pictures) -> np.ndarray:
    """The pictures `[h, w, 3]` stacked, each centre-cropped to the smallest height and width among them.

    >>> _common_size([np.zeros((4, 6, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)]).shape
    (2, 4, 4, 3)
    """
    height = min(picture.shape[0] for picture in pictures)
    width = min(picture.shape[1] for picture in pictures)
    cropped = []
    for picture in pictures:
        top, left = (picture.shape[0] - height) // 2, (picture.shape[1] - width) // 2
        cropped.append(picture[top : top + height, left : left + width])
    return np.stack(cropped)
