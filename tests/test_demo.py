"""The demo data: deterministic real mp4 files whose labels are what the videos show and play."""

import csv
import filecmp
import os

import numpy as np
import pytest

from videofusion import demo, media
from test_media import dominant_frequency


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = demo.write_demo_dataset(str(tmp_path / "a"), num_videos=4, seed=3)
    second = demo.write_demo_dataset(str(tmp_path / "b"), num_videos=4, seed=3)
    other = demo.write_demo_dataset(str(tmp_path / "c"), num_videos=4, seed=4)
    names = sorted(os.listdir(tmp_path / "a" / "videos"))
    assert len(names) == 4
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / "videos" / name, tmp_path / "b" / "videos" / name, shallow=False)
        assert not filecmp.cmp(tmp_path / "a" / "videos" / name, tmp_path / "c" / "videos" / name, shallow=False)
    assert open(first).read() == open(second).read() == open(other).read()


def test_manifest_balanced_classes_and_splits(demo_raw):
    with open(demo_raw) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16
    for split in ("train", "val", "test"):
        labels = sorted(row["label"] for row in rows if row["split"] == split)
        assert labels == sorted(demo.LABELS * (len(labels) // 4)) and labels


def _square_column(frame: np.ndarray) -> float:
    """Circular mean of the bright square's columns (it wraps around the edges)."""
    columns = np.nonzero((frame.max(axis=2) > 140).any(axis=0))[0]
    angles = 2 * np.pi * columns / frame.shape[1]
    return np.angle(np.exp(1j * angles).mean()) * frame.shape[1] / (2 * np.pi)


@pytest.mark.parametrize("index", range(8))
def test_videos_show_the_direction_and_play_the_pitch_of_their_label(demo_raw, index):
    with open(demo_raw) as f:
        row = list(csv.DictReader(f))[index]
    decoded = media.read_media(
        os.path.join(os.path.dirname(demo_raw), row["path"]), fps=10, short_side=64
    )
    steps = np.diff([_square_column(frame) for frame in decoded.frames])
    steps = (steps + 32) % 64 - 32  # shortest way round the wrap
    direction = "left" if np.median(steps) < 0 else "right"
    pitch = "low" if dominant_frequency(decoded.waveform, 16000) < 700 else "high"
    assert f"{direction}-{pitch}" == row["label"]
    assert 1.5 < abs(np.median(steps)) < 4  # 20–32 px/s at 10 fps
