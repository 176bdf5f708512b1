"""`prepare` on real files: shards, reports, and bad inputs skipped with their reason."""

import csv
import glob
import json
import os

import tensorflow as tf

from conftest import write_video
from videofusion import prepare, records


def _records(data_dir, split):
    files = sorted(glob.glob(os.path.join(data_dir, f"{split}-*.tfrecord")))
    return [records.parse_clip(r) for r in tf.data.TFRecordDataset(files)]


def test_demo_records_have_the_schema_and_the_reports(demo_records):
    assert sorted(os.listdir(demo_records)) == sorted(
        [".prepare", "dataset.json", "errors.jsonl", "labels.txt"]
        + [prepare.shard_name(split, i, 2) for split in ("train", "val", "test") for i in range(2)]
    )
    labels = open(os.path.join(demo_records, "labels.txt")).read().split()
    assert labels == sorted(["left-low", "left-high", "right-low", "right-high"])
    info = json.load(open(os.path.join(demo_records, "dataset.json")))
    assert info["counts"] == {"train": 4, "val": 4, "test": 8}
    assert info["label_counts"]["test"] == {label: 2 for label in labels}
    assert info["fps"] == 10.0 and info["short_side"] == 32 and info["sample_rate"] == 16000
    assert info["total_duration_s"] == 32.0
    assert open(os.path.join(demo_records, "errors.jsonl")).read() == ""
    test = _records(demo_records, "test")
    assert len(test) == 8
    for clip in test:
        label = clip[records.LABEL_TEXT].numpy().decode()
        assert labels[int(clip[records.LABEL_INDEX])] == label
        assert clip[records.FILENAME].numpy().decode().endswith(f"_{label}.mp4")
        assert clip[records.IMAGES].shape[0] == 20  # 2 s at 10 fps
        frame = tf.io.decode_jpeg(clip[records.IMAGES][0])
        assert frame.shape == (32, 32, 3)
        assert 32000 <= clip[records.WAVEFORM].shape[0] <= 33024
        assert int(clip[records.HAS_AUDIO]) == 1 and int(clip[records.END_US]) == 2_000_000


def test_bad_inputs_are_skipped_with_their_reason(tmp_path):
    good = write_video(tmp_path / "good one.mp4", num_frames=10, audio_seconds=0.4)
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(
            [[os.path.basename(good), "a"], ["notes.mp4", "b"], ["empty.mp4", "a"], ["gone.mp4", "a"],
             ["no_label.mp4", ""]]
        )
    output = tmp_path / "out"
    summary = prepare.prepare_dataset(
        prepare.PrepareOptions(manifest=str(manifest), output_dir=str(output), short_side=16,
                               val_fraction=0, test_fraction=0)
    )
    assert summary["counts"] == {"train": 1, "val": 0, "test": 0}
    errors = [json.loads(line) for line in open(output / "errors.jsonl")]
    reasons = {e["path"]: e["reason"] for e in errors}
    assert set(reasons) == {"notes.mp4", "empty.mp4", "gone.mp4", "no_label.mp4"}
    assert "cannot decode" in reasons["notes.mp4"]
    assert "empty" in reasons["empty.mp4"]
    assert "not found" in reasons["gone.mp4"]
    assert "no label" in reasons["no_label.mp4"]
    assert summary["num_errors"] == 4
    assert not [name for name in os.listdir(output) if ".tmp-" in name]  # no temp files left
    (clip,) = _records(str(output), "train")
    assert clip[records.FILENAME].numpy().decode() == "good one.mp4"
    assert clip[records.IMAGES].shape[0] == 4  # 10 frames at 25 fps = 0.4 s, at 10 fps


def test_splits_without_a_column_are_deterministic_by_path():
    from videofusion import manifest

    splits = [manifest.assign_split(f"videos/{i}.mp4", 0.1, 0.2) for i in range(2000)]
    assert splits == [manifest.assign_split(f"videos/{i}.mp4", 0.1, 0.2) for i in range(2000)]
    assert 0.17 < splits.count("test") / 2000 < 0.23 and 0.07 < splits.count("val") / 2000 < 0.13
