"""The demo data set: real H.264 + AAC mp4 files whose classes need both motion and sound.

Each video shows a bright square that drifts left or right across a noisy background, wrapping around at
the edges, while a tone plays that is low (250–450 Hz) or high (1–1.8 kHz). The four classes are
direction × pitch (`left-low`, `left-high`, `right-low`, `right-high`):

- the square starts at a uniformly random place and wraps around, so every single frame has the same
  distribution in both directions: one frame, or frames averaged without their order, cannot tell the
  direction (at best 50 %);
- the picture says nothing about the tone and the sound nothing about the direction, so video alone and
  audio alone each top out at 50 %; only a model that uses both, and time, can reach 100 %.

Everything is drawn from `numpy.random.default_rng([seed, index])`, so a seed gives the same videos.

Example:

>>> manifest = write_demo_dataset("datasets/demo/raw", num_videos=8, seed=0)  # doctest: +SKIP
"""

import csv
import dataclasses
import os
from typing import List

import av
import numpy as np
from absl import logging

from videofusion import fileio

LABELS = ("left-low", "left-high", "right-low", "right-high")
_SIZE = 64
_FPS = 25
_SAMPLE_RATE = 16000
_AUDIO_CHUNK = 1024
# Without B-frames x264 gives the same bytes every run (with them, its output varied between runs).
_X264_OPTIONS = {"preset": "veryfast", "bf": "0", "threads": "1"}


@dataclasses.dataclass
class DemoVideo:
    """What one demo video shows and plays; `render` turns it into pixels and samples."""

    label: str
    start_x: float
    y: int
    speed_px_per_s: float
    side: int
    color: tuple
    background: int
    tone_hz: float
    duration_s: float


def sample_demo_video(index: int, seed: int, duration_s: float = 2.0) -> DemoVideo:
    """Draws the parameters of video `index`; the class is `LABELS[index % 4]`."""
    rng = np.random.default_rng([seed, index])
    label = LABELS[index % len(LABELS)]
    side = int(rng.integers(12, 18))
    low = label.endswith("low")
    return DemoVideo(
        label=label,
        start_x=float(rng.uniform(0, _SIZE)),
        y=int(rng.integers(0, _SIZE - side)),
        speed_px_per_s=float(rng.uniform(20, 32)),
        side=side,
        color=tuple(int(c) for c in rng.integers(150, 256, size=3)),
        background=int(rng.integers(10, 90)),
        tone_hz=float(rng.uniform(250, 450) if low else rng.uniform(1000, 1800)),
        duration_s=duration_s,
    )


def render_frames(video: DemoVideo, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB frames `[time, 64, 64, 3]` at 25 fps."""
    num_frames = int(round(video.duration_s * _FPS))
    direction = -1.0 if video.label.startswith("left") else 1.0
    frames = np.full((num_frames, _SIZE, _SIZE, 3), video.background, np.float32)
    frames += rng.normal(0, 6, size=frames.shape)
    rows = slice(video.y, video.y + video.side)
    for t in range(num_frames):
        x = video.start_x + direction * video.speed_px_per_s * t / _FPS
        columns = (int(round(x)) + np.arange(video.side)) % _SIZE
        frames[t, rows, columns] = video.color
    return np.clip(frames, 0, 255).astype(np.uint8)


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
            audio = container.add_stream("aac", rate=sample_rate, layout="mono")
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


def demo_split(index: int) -> str:
    """Class-balanced split: of each ten groups of four videos (one per class), two test, one validates.

    >>> [demo_split(i) for i in range(0, 48, 4)]
    ['test', 'test', 'val', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'test', 'test']
    """
    return {0: "test", 1: "test", 2: "val"}.get((index // len(LABELS)) % 10, "train")


def write_demo_dataset(output_dir: str, num_videos: int = 240, seed: int = 0) -> str:
    """Writes `num_videos` mp4 files under `output_dir/videos/` and `output_dir/manifest.csv`.

    Returns the manifest's path. Classes are balanced (video `i` has class `LABELS[i % 4]`) and the
    manifest's `split` column gives each split the same number of videos of every class.
    """
    videos_dir = os.path.join(output_dir, "videos")
    os.makedirs(videos_dir, exist_ok=True)
    rows: List[dict] = []
    for index in fileio.progress(range(num_videos), desc="demo videos", unit="video"):
        video = sample_demo_video(index, seed)
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
