"""The demo data: deterministic real mp4 files whose labels are what the videos show and play."""

import csv
import filecmp
import os

import numpy as np
import pytest
from test_media import dominant_frequency

from videofusion.ingest import demo_videos, media

SMALL = dict(size=32, duration_s=1.0)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = demo_videos.write_demo_dataset(str(tmp_path / "a"), num_videos=4, seed=3, **SMALL)
    second = demo_videos.write_demo_dataset(str(tmp_path / "b"), num_videos=4, seed=3, **SMALL)
    other = demo_videos.write_demo_dataset(str(tmp_path / "c"), num_videos=4, seed=4, **SMALL)
    names = sorted(os.listdir(tmp_path / "a" / "videos"))
    assert len(names) == 4
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / "videos" / name, tmp_path / "b" / "videos" / name, shallow=False)
        assert not filecmp.cmp(tmp_path / "a" / "videos" / name, tmp_path / "c" / "videos" / name, shallow=False)
    assert open(first).read() == open(second).read() == open(other).read()


def test_labels_are_kind_direction_pitch():
    assert len(demo_videos.LABELS) == len(set(demo_videos.LABELS)) == 12
    assert {tuple(label.split("-")) for label in demo_videos.LABELS} == {
        (k, d, p) for k in demo_videos.KINDS for d in demo_videos.DIRECTIONS for p in demo_videos.PITCHES}


def test_manifest_balanced_classes_and_splits(demo_raw):
    with open(demo_raw) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 36
    for split in ("train", "val", "test"):
        labels = sorted(row["label"] for row in rows if row["split"] == split)
        assert labels == sorted(demo_videos.LABELS * (len(labels) // 12)) and labels
    splits = [demo_videos.demo_split(i) for i in range(120)]
    assert [splits.count(s) for s in ("train", "val", "test")] == [84, 12, 24]


def test_middle_place_says_nothing_about_the_direction_and_the_object_stays_in_frame():
    videos = [demo_videos.sample_demo_video(i, seed=0, **SMALL) for i in range(240)]
    middle = {d: np.array([v.middle_x for v in videos if v.direction == d]) for d in demo_videos.DIRECTIONS}
    assert abs(middle["left"].min() - middle["right"].min()) < 2
    assert abs(middle["left"].max() - middle["right"].max()) < 2
    assert abs(middle["left"].mean() - middle["right"].mean()) < 1
    area = {"disk": np.pi / 4, "triangle": 1 / 2, "cross": 5 / 9}
    for video in videos[:48]:
        coverage = demo_videos.render_coverage(video)
        assert coverage.shape == (25, 32, 32)
        edges = np.concatenate([coverage[:, 0], coverage[:, -1], coverage[:, :, 0], coverage[:, :, -1]], 1)
        assert not edges.any()  # never touches the edge, so never cut off
        # Drawn at 4x the resolution of 6–13 px objects: every frame's area is right within 10 %.
        np.testing.assert_allclose(coverage.sum(axis=(1, 2)), area[video.kind] * video.object_size**2, rtol=0.1)
        moved = (video.center_x()[-1] - video.center_x()[0]) / 32
        assert 0.23 < (moved if video.direction == "right" else -moved) < 0.45


def _object_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels whose luminance is far from the background's (the median: the object covers < 1/6); the
    demo keeps 80 levels between the two colours, the background's texture stays well within 40."""
    luma = frame.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    return np.abs(luma - np.median(luma)) > 40


def _kind(mask: np.ndarray) -> str:
    """Triangles (pointing up) have their mass low in their box; disks fill π/4 of it, crosses 5/9."""
    rows, columns = np.nonzero(mask)
    top, height = rows.min(), rows.max() - rows.min() + 1
    box = height * (columns.max() - columns.min() + 1)
    if (rows.mean() + 0.5 - top) / height > 0.58:  # 2/3 for the triangle, 1/2 for the others
        return "triangle"
    return "disk" if len(rows) / box > 0.67 else "cross"


@pytest.fixture(scope="module")
def full_size_demo(tmp_path_factory):
    """One 64-pixel, 2 s video of every class (the settings `videofusion demo-data` uses)."""
    return demo_videos.write_demo_dataset(str(tmp_path_factory.mktemp("demo_full")), num_videos=12, seed=5)


@pytest.mark.parametrize("index", range(12))
def test_videos_show_the_kind_and_direction_and_play_the_pitch_of_their_label(full_size_demo, index):
    with open(full_size_demo) as f:
        row = list(csv.DictReader(f))[index]
    decoded = media.read_media(os.path.join(os.path.dirname(full_size_demo), row["path"]), fps=10, short_side=64)
    masks = [_object_mask(frame) for frame in decoded.frames]
    kinds = [_kind(mask) for mask in masks]
    kind = max(set(kinds), key=kinds.count)
    columns = [np.nonzero(mask)[1].mean() for mask in masks]
    moved = (columns[-1] - columns[0]) / 64  # 0.95 of the travel: 1.9 s of 2 s at 10 fps
    direction = "left" if moved < 0 else "right"
    pitch = "low" if dominant_frequency(decoded.waveform, 16000) < 700 else "high"
    assert f"{kind}-{direction}-{pitch}" == row["label"]
    assert kinds.count(kind) >= 0.9 * len(kinds)
    assert 0.2 < abs(moved) < 0.45
