"""The demo data set: real H.264 + AAC mp4 files whose classes need appearance, motion and sound at once.

Each video shows one filled object — a disk, a triangle or a cross (a plus sign, arms a third of its size
thick) — at a random place and scale (0.2–0.4 of the frame side), in a colour that stands out from a
textured background (a random colour plus smooth colour noise and a little grain, new for every video).
The object moves left or right, travelling 0.25–0.45 of the frame side over the clip and always staying
entirely inside the frame, while a tone plays that is low (250–450 Hz) or high (1–1.8 kHz). The 12
classes are kind × direction × pitch (`disk-left-low`, …, `cross-right-high`):

- the object's place at the middle of the clip is drawn uniformly over the places that keep the whole
  path in frame, the same way for both directions, and the path goes half the travel either side of it;
  so every single frame has the same distribution whichever way the object moves;
- the picture says nothing about the tone and the sound nothing about the object.

So what a model can know depends on what it sees (chance is 1/12 ≈ 0.083):

- one frame, or frames averaged without their order: the kind only; direction and pitch are guesses, so
  its accuracy tops out at 1/4 = 0.25;
- a model of the frames in order (video alone): kind and direction, at most 0.5;
- audio alone: the pitch only, at most 1/6 ≈ 0.167;
- only a fusion of ordered frames and sound knows all three and can reach 1.0.

Everything is drawn from `numpy.random.default_rng([seed, index])` (and `[seed, index, 1]` for the
texture and the noise), so a seed gives the same files, byte for byte.

Example:

>>> len(LABELS), LABELS[0], LABELS[-1]
(12, 'disk-left-low', 'cross-right-high')
>>> manifest = write_demo_dataset("datasets/demo/raw", num_videos=24, seed=0)  # doctest: +SKIP
"""

import csv
import dataclasses
import itertools
import os
from typing import List

import av
import cv2
import numpy as np
from absl import logging

from videofusion import fileio, progress

KINDS = ("disk", "triangle", "cross")
DIRECTIONS = ("left", "right")
PITCHES = ("low", "high")
LABELS = tuple("-".join(c) for c in itertools.product(KINDS, DIRECTIONS, PITCHES))

_FPS = 25
_SAMPLE_RATE = 16000
_AUDIO_CHUNK = 1024
# Without B-frames x264 gives the same bytes every run (with them, its output varied between runs).
_X264_OPTIONS = {"preset": "veryfast", "bf": "0", "threads": "1"}
_AAC_OPTIONS = {"aac_coder": "fast"}  # about 3x faster than FFmpeg's default coder, as good for tones

# Outlines of the objects, centred on (0, 0) in a box of side 1 (y points down): a 64-gon for the disk
# (area π/4), a triangle pointing up (area 1/2), a plus sign with arms 1/3 thick (area 5/9).
_ARM = 1 / 6
_ANGLES = np.linspace(0, 2 * np.pi, 64, endpoint=False)
_SHAPES = {
    "disk": 0.5 * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], -1),
    "triangle": np.array([(0, -0.5), (0.5, 0.5), (-0.5, 0.5)]),
    "cross": np.array([(-_ARM, -0.5), (_ARM, -0.5), (_ARM, -_ARM), (0.5, -_ARM), (0.5, _ARM), (_ARM, _ARM),
                       (_ARM, 0.5), (-_ARM, 0.5), (-_ARM, _ARM), (-0.5, _ARM), (-0.5, -_ARM), (-_ARM, -_ARM)]),
}
_OBJECT_SIZE = (0.2, 0.4)  # side of the object's box, as a fraction of the frame side
_TRAVEL = (0.25, 0.45)  # distance moved over the whole clip, as a fraction of the frame side
_MARGIN_PX = 1.0  # the object keeps this far from the frame's edges
_MIN_CONTRAST = 80  # luminance levels between the object's colour and the background colour
_TEXTURE_GRID = 4  # the smooth colour noise is this many random values per side, interpolated
_TEXTURE_STD = 10.0
_GRAIN_STD = 3.0
_SUPERSAMPLE = 4  # objects are drawn at 4x and scaled down: anti-aliased edges
_SHIFT = 4  # fractional bits of the vertex coordinates given to cv2.fillPoly


@dataclasses.dataclass
class DemoVideo:
    """What one demo video shows and plays; `render_frames` and `render_audio` turn it into data.

    Lengths are in pixels of a `size` × `size` frame: the object's box has side `object_size`; its centre
    stays on row `y`, is at `middle_x` at the middle of the clip and moves `travel` over the whole clip.
    """

    kind: str
    direction: str
    pitch: str
    size: int
    object_size: float
    middle_x: float
    y: float
    travel: float
    color: tuple
    background: tuple
    tone_hz: float
    duration_s: float

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.direction}-{self.pitch}"

    def center_x(self) -> np.ndarray:
        """x of the object's centre in each frame, `[time]`; the middle of the clip is at `middle_x`."""
        t = np.arange(int(round(self.duration_s * _FPS))) / _FPS
        sign = -1.0 if self.direction == "left" else 1.0
        return self.middle_x + sign * self.travel * (t / self.duration_s - 0.5)


def luminance(rgb) -> float:
    """Luma (ITU-R BT.601) of an RGB colour; also what the H.264 file keeps at full resolution.

    >>> round(luminance((255, 255, 255)), 6)  # the dot product's rounding follows the CPU's BLAS kernel
    255.0
    """
    return float(np.dot([0.299, 0.587, 0.114], rgb))


def _contrasting_color(rng: np.random.Generator, background: tuple) -> tuple:
    """A random colour whose luminance is at least `_MIN_CONTRAST` away from the background's."""
    while True:
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if abs(luminance(color) - luminance(background)) >= _MIN_CONTRAST:
            return color


def sample_demo_video(index: int, seed: int, size: int = 64, duration_s: float = 2.0) -> DemoVideo:
    """Draws the parameters of video `index` (frames of `size` ≥ 16 pixels); its class is
    `LABELS[index % 12]`.

    >>> video = sample_demo_video(13, seed=0)
    >>> video.label, video.size, len(video.center_x())
    ('disk-left-high', 64, 50)
    """
    rng = np.random.default_rng([seed, index])
    kind, direction, pitch = LABELS[index % len(LABELS)].split("-")
    object_size = rng.uniform(*_OBJECT_SIZE) * size
    travel = rng.uniform(*_TRAVEL) * size
    reach = _MARGIN_PX + object_size / 2  # nearest the object's centre may come to an edge
    background = tuple(int(c) for c in rng.integers(0, 256, size=3))
    return DemoVideo(
        kind=kind,
        direction=direction,
        pitch=pitch,
        size=size,
        object_size=float(object_size),
        middle_x=float(rng.uniform(reach + travel / 2, size - reach - travel / 2)),
        y=float(rng.uniform(reach, size - reach)),
        travel=float(travel),
        color=_contrasting_color(rng, background),
        background=background,
        tone_hz=float(rng.uniform(250, 450) if pitch == "low" else rng.uniform(1000, 1800)),
        duration_s=duration_s,
    )


def inset(outline: np.ndarray, distance: float) -> np.ndarray:
    """The polygon `outline` `[vertices, 2]` with every edge moved `distance` inwards.

    >>> inset(np.array([(0.0, 0.0), (4.0, 0.0), (4.0, 2.0), (0.0, 2.0)]), 0.5).tolist()
    [[0.5, 0.5], [3.5, 0.5], [3.5, 1.5], [0.5, 1.5]]
    """
    edges = np.roll(outline, -1, axis=0) - outline
    x, y = outline.T
    clockwise = np.sign(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))  # +1: clockwise with y down
    normals = clockwise * np.stack([-edges[:, 1], edges[:, 0]], -1) / np.linalg.norm(edges, axis=1, keepdims=True)
    before = np.roll(normals, 1, axis=0)  # the normal of the edge that ends at each vertex
    return outline + distance * (before + normals) / (1 + np.sum(before * normals, axis=1, keepdims=True))


def render_coverage(video: DemoVideo) -> np.ndarray:
    """float32 `[time, size, size]`: the share of each pixel that the object covers, frame by frame."""
    canvas = np.zeros((video.size * _SUPERSAMPLE,) * 2, np.uint8)
    # cv2 fills every canvas pixel whose centre is within half a pixel of the outline: inset by half a pixel,
    # the filled area is the outline's. Pixel (i, j) spans [j, j + 1) × [i, i + 1), cv2 centres it on (j, i).
    shape = inset(_SHAPES[video.kind] * video.object_size * _SUPERSAMPLE, 0.5)
    coverage = []
    for x in video.center_x():
        outline = shape + np.array([x, video.y]) * _SUPERSAMPLE - 0.5
        canvas[:] = 0
        cv2.fillPoly(canvas, [np.round(outline * 2**_SHIFT).astype(np.int32)], 255, cv2.LINE_8, _SHIFT)
        coverage.append(cv2.resize(canvas, (video.size, video.size), interpolation=cv2.INTER_AREA))
    return np.stack(coverage).astype(np.float32) / 255


def render_background(video: DemoVideo, rng: np.random.Generator) -> np.ndarray:
    """float32 RGB `[size, size, 3]`: the background colour plus smooth colour noise and grain."""
    coarse = rng.normal(0, _TEXTURE_STD, (_TEXTURE_GRID, _TEXTURE_GRID, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (video.size, video.size), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, _GRAIN_STD, smooth.shape)
    return (np.asarray(video.background) + smooth + grain).astype(np.float32)


def render_frames(video: DemoVideo, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB frames `[time, size, size, 3]` at 25 fps: the object over the background."""
    background = render_background(video, rng)
    frames = background + render_coverage(video)[..., np.newaxis] * (np.float32(video.color) - background)
    return (np.clip(frames, 0, 255, out=frames) + 0.5).astype(np.uint8)


def render_audio(video: DemoVideo, rng: np.random.Generator) -> np.ndarray:
    """float32 mono samples at 16 kHz: the tone plus a little noise."""
    t = np.arange(int(round(video.duration_s * _SAMPLE_RATE))) / _SAMPLE_RATE
    phase = rng.uniform(0, 2 * np.pi)
    samples = 0.3 * np.sin(2 * np.pi * video.tone_hz * t + phase) + rng.normal(0, 0.02, t.shape)
    return samples.astype(np.float32)


def write_mp4(path: str, frames: np.ndarray, fps: int, samples: np.ndarray, sample_rate: int):
    """Writes H.264 video (and AAC audio when `samples` is not None) to `path` with PyAV."""
    with av.open(path, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options=_X264_OPTIONS)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = None
        if samples is not None:
            audio = container.add_stream("aac", rate=sample_rate, layout="mono", options=_AAC_OPTIONS)
        for rgb in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(video.encode(None))
        if audio is not None:
            for start in range(0, len(samples), _AUDIO_CHUNK):
                chunk = samples[np.newaxis, start : start + _AUDIO_CHUNK]
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))


# The split of each group of len(LABELS) consecutive videos (one of every class), over ten groups:
# 7 train, 1 val, 2 test, with all three splits in the first three groups.
_SPLIT_CYCLE = ("train", "val", "test", "train", "train", "train", "test", "train", "train", "train")


def demo_split(index: int) -> str:
    """Class-balanced split: every group of 12 consecutive videos (one per class) goes to one split.

    >>> [demo_split(i) for i in range(0, 12 * 12, 12)]
    ['train', 'val', 'test', 'train', 'train', 'train', 'test', 'train', 'train', 'train', 'train', 'val']
    """
    return _SPLIT_CYCLE[(index // len(LABELS)) % len(_SPLIT_CYCLE)]


def write_demo_dataset(output_dir: str, num_videos: int = 240, seed: int = 0, size: int = 64,
                       duration_s: float = 2.0) -> str:
    """Writes `num_videos` mp4 files under `output_dir/videos/` and `output_dir/manifest.csv`.

    Frames are `size` × `size` pixels at 25 fps, clips `duration_s` long. Returns the manifest's path.
    Classes are balanced (video `i` has class `LABELS[i % 12]`) and the manifest's `split` column gives
    each split the same number of videos of every class.
    """
    videos_dir = os.path.join(output_dir, "videos")
    os.makedirs(videos_dir, exist_ok=True)
    rows: List[dict] = []
    for index in progress.track(range(num_videos), desc="demo videos", unit="video"):
        video = sample_demo_video(index, seed, size, duration_s)
        rng = np.random.default_rng([seed, index, 1])
        relative = f"videos/{index:05d}_{video.label}.mp4"
        with fileio.atomic_path(os.path.join(output_dir, relative)) as tmp:
            write_mp4(tmp, render_frames(video, rng), _FPS, render_audio(video, rng), _SAMPLE_RATE)
        rows.append({"path": relative, "label": video.label, "split": demo_split(index)})
    manifest = os.path.join(output_dir, "manifest.csv")
    with fileio.atomic_open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    logging.info("Wrote %d demo videos and %s", num_videos, manifest)
    return manifest
