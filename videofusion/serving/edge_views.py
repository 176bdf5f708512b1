"""The evaluation views of one video in NumPy: `transforms.eval_views` for a device without TensorFlow.

A LiteRT model (`litert_export.py`) is the Keras model on ready views — uint8 squares, frame mask,
audio window, audio present — so the host cuts the views itself, as `transforms.eval_views` does in the
SavedModel and the evaluation pipeline: `num_clips` evenly spaced clips (frame indices looped past the
end, or padded with a mask of 0 with `pad_short_videos`), `num_crops` squares of the short side per
clip (the centre, or both ends and the centre of the long side), and the audio window that plays with
each clip (looped with the frames, zero-padded past the sound). The arithmetic is TensorFlow's, in
float32 with round-half-to-even, so the views are equal element for element (tests/test_litert.py
checks it on real records). Frames must already have the model's `frame_size` as their short side (the
size `prepare` decoded them at); other sizes are refused rather than resized with another filter.

Example:

>>> spec = ViewSpec(num_frames=4, stride=2, fps=10.0, sample_rate=16000, frame_size=8, num_clips=2, num_crops=3)
>>> views = eval_views(20, lambda indices: np.zeros([len(indices), 8, 12, 3], np.uint8), np.ones(32000, "float32"),
...                    spec)
>>> {key: value.shape for key, value in views.items()}  # doctest: +NORMALIZE_WHITESPACE
{'frames': (6, 4, 8, 8, 3), 'waveform': (6, 12800), 'frame_mask': (6, 4), 'audio_present': (6, 1)}
>>> clip_starts(20, spec).tolist(), clip_indices(5, spec, 0)[0].tolist()
([0, 13], [0, 2, 4, 1])
"""

import dataclasses
from typing import Callable, Tuple

import numpy as np

from videofusion.contract import tensors

_CROP_OFFSETS = {1: (0.5,), 3: (0.0, 0.5, 1.0)}


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """What the views of a video are: the clip fields of `transforms.ClipSpec` and the evaluation's
    `num_clips` × `num_crops` (a LiteRT model's `model.json` holds them)."""

    num_frames: int
    stride: int
    fps: float
    sample_rate: int
    frame_size: int
    num_clips: int = 1
    num_crops: int = 1
    pad_short_videos: bool = False

    def __post_init__(self):
        if self.num_crops not in _CROP_OFFSETS:
            raise ValueError(f"num_crops={self.num_crops} must be 1 or 3")

    @property
    def audio_samples(self) -> int:
        """Samples of audio that play while a clip's frames are shown."""
        return int(round(self.num_frames * self.stride / self.fps * self.sample_rate))

    @property
    def views(self) -> int:
        return self.num_clips * self.num_crops


def clip_starts(num_available: int, spec: ViewSpec) -> np.ndarray:
    """`[num_clips]` start frames, evenly spaced (`transforms.eval_clip_starts`)."""
    last = max(num_available - ((spec.num_frames - 1) * spec.stride + 1), 0)
    if spec.num_clips == 1:
        return np.array([last // 2], np.int32)
    fractions = np.linspace(0.0, 1.0, spec.num_clips, dtype=np.float32)
    return np.round(fractions * np.float32(last)).astype(np.int32)


def clip_indices(num_available: int, spec: ViewSpec, start: int) -> Tuple[np.ndarray, np.ndarray]:
    """(`[num_frames]` frame indices, `[num_frames]` float32 mask) of the clip from `start`
    (`transforms.clip_indices`: looped, or the last frame repeated with mask 0 with `pad_short_videos`)."""
    available = max(num_available, 1)
    positions = start + np.arange(spec.num_frames, dtype=np.int32) * spec.stride
    if spec.pad_short_videos:
        return np.minimum(positions, available - 1), (positions < available).astype(np.float32)
    return positions % available, np.ones([spec.num_frames], np.float32)


def square_window(height: int, width: int, offset: float) -> Tuple[int, int, int]:
    """`(y, x, side)`: the square of the short side placed along the long side (`transforms.square_window`)."""
    side = min(height, width)

    def place(length):
        slack = length - side
        return min(int(np.floor(np.float32(slack + 1) * np.float32(offset))), slack)

    return place(height), place(width), side


def audio_window(waveform: np.ndarray, start_frame: int, spec: ViewSpec, num_available: int) -> np.ndarray:
    """The `audio_samples` float32 samples that play with the clip from `start_frame`
    (`transforms.audio_window` with `num_available`: looped with the frames, or zero-padded)."""
    rate = np.float32(spec.sample_rate / spec.fps)
    first = int(np.round(np.float32(start_frame) * rate))
    length = spec.audio_samples
    if spec.pad_short_videos:
        period, needed = np.iinfo(np.int32).max, first + length
    else:
        period = max(int(np.round(np.float32(num_available) * rate)), 1)
        needed = period
    if first + length <= min(period, waveform.shape[-1]):
        return waveform[first:first + length]
    padded = np.pad(waveform, [0, max(needed - waveform.shape[-1], 0)])
    return padded[(first + np.arange(length)) % period]


def eval_views(num_available: int, frames_at: Callable[[np.ndarray], np.ndarray], waveform: np.ndarray,
               spec: ViewSpec) -> dict:
    """All `spec.views` views of one video, clip-major (`transforms.eval_views` with the waveform input).

    Args:
      num_available: the number of frames of the video.
      frames_at: a function from `[num_frames]` frame indices to uint8 frames `[num_frames, h, w, 3]`
        whose short side is `spec.frame_size`.
      waveform: float32 `[samples]`, the video's whole mono waveform.

    Returns:
      `{FRAMES: uint8 [views, n, frame_size, frame_size, 3], WAVEFORM: float32 [views, samples],
      FRAME_MASK: float32 [views, n], AUDIO_PRESENT: float32 [views, 1]}`.
    """
    waveform = np.asarray(waveform, np.float32)
    views = {tensors.FRAMES: [], tensors.WAVEFORM: [], tensors.FRAME_MASK: [], tensors.AUDIO_PRESENT: []}
    for start in clip_starts(num_available, spec):
        indices, mask = clip_indices(num_available, spec, int(start))
        frames = np.asarray(frames_at(indices))
        if min(frames.shape[1:3]) != spec.frame_size:
            raise ValueError(f"frames of {frames.shape[1]}×{frames.shape[2]} pixels: their short side must be "
                             f"{spec.frame_size} (decode the video at the model's short side)")
        window = audio_window(waveform, int(start), spec, num_available)
        present = np.array([float(np.abs(window).max(initial=0.0) > 0)], np.float32)
        for offset in _CROP_OFFSETS[spec.num_crops]:
            y, x, side = square_window(frames.shape[1], frames.shape[2], offset)
            squares = frames[:, y:y + side, x:x + side]
            if spec.pad_short_videos:
                squares = squares * mask.astype(np.uint8)[:, None, None, None]
            views[tensors.FRAMES].append(squares)
            views[tensors.WAVEFORM].append(window)
            views[tensors.FRAME_MASK].append(mask)
            views[tensors.AUDIO_PRESENT].append(present)
    return {key: np.stack(value) for key, value in views.items()}
