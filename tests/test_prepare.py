"""`prepare` on real files: shards, reports, and bad inputs skipped with their reason."""

import csv
import glob
import json
import os

import media_factory
import numpy as np
import tensorflow as tf
from conftest import write_video

from videofusion.contract import prepared_folder, record_schema
from videofusion.ingest import demo_videos, prepare


def _records(data_dir, split):
    files = sorted(glob.glob(os.path.join(data_dir, f"{split}-*.tfrecord")))
    return [record_schema.parse_clip(r) for r in tf.data.TFRecordDataset(files)]


def test_demo_records_have_the_schema_and_the_reports(demo_records):
    assert sorted(os.listdir(demo_records)) == sorted(
        [".prepare", "dataset.json", "errors.jsonl", "labels.txt"]
        + [prepared_folder.shard_name(split, i, 2) for split in ("train", "val", "test") for i in range(2)]
    )
    labels = open(os.path.join(demo_records, "labels.txt")).read().split()
    assert labels == sorted(demo_videos.LABELS)
    info = json.load(open(os.path.join(demo_records, "dataset.json")))
    assert info["counts"] == {"train": 12, "val": 12, "test": 12}
    assert info["label_counts"]["test"] == {label: 1 for label in labels}
    assert info["fps"] == 10.0 and info["short_side"] == 32 and info["sample_rate"] == 16000
    assert info["total_duration_s"] == 36.0
    assert open(os.path.join(demo_records, "errors.jsonl")).read() == ""
    test = _records(demo_records, "test")
    assert len(test) == 12
    for clip in test:
        label = clip[record_schema.LABEL_TEXT].numpy().decode()
        assert labels[int(clip[record_schema.LABEL_INDEX])] == label
        assert clip[record_schema.FILENAME].numpy().decode().endswith(f"_{label}.mp4")
        assert clip[record_schema.IMAGES].shape[0] == 10  # 1 s at 10 fps
        frame = tf.io.decode_jpeg(clip[record_schema.IMAGES][0])
        assert frame.shape == (32, 32, 3)
        assert 16000 <= clip[record_schema.WAVEFORM].shape[0] <= 17024
        assert int(clip[record_schema.HAS_AUDIO]) == 1 and int(clip[record_schema.END_US]) == 1_000_000


def test_bad_inputs_are_skipped_with_their_reason(tmp_path):
    good = write_video(tmp_path / "good one.mp4", num_frames=10, audio_seconds=0.4)
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    media_factory.write_audio_only(tmp_path / "sound only.m4a")
    mkv = media_factory.write_format(tmp_path, "mkv_hevc_aac")
    media_factory.write_truncated(mkv, tmp_path / "cut short.mkv")  # a download cut short: opens, ends early
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(
            [[os.path.basename(good), "a"], ["notes.mp4", "b"], ["empty.mp4", "a"], ["gone.mp4", "a"],
             ["extra.mp4", "a", "surplus field"], ["sound only.m4a", "b"],
             ["cut short.mkv", "b"]]
        )
    output = tmp_path / "out"
    summary = prepare.prepare_dataset(
        prepare.PrepareOptions(manifest=str(manifest), output_dir=str(output), short_side=16,
                               val_fraction=0, test_fraction=0)
    )
    assert summary["counts"] == {"train": 1, "val": 0, "test": 0}
    errors = [json.loads(line) for line in open(output / "errors.jsonl")]
    reasons = {e["path"]: e["reason"] for e in errors}
    assert set(reasons) == {"notes.mp4", "empty.mp4", "gone.mp4", "extra.mp4", "sound only.m4a", "cut short.mkv"}
    assert "more fields than header columns" in reasons["extra.mp4"]
    assert "cannot decode" in reasons["notes.mp4"]
    assert "empty" in reasons["empty.mp4"]
    assert "not found" in reasons["gone.mp4"]
    assert "no video stream" in reasons["sound only.m4a"]
    assert "truncated" in reasons["cut short.mkv"]
    assert summary["num_errors"] == 6
    assert not [name for name in os.listdir(output) if ".tmp-" in name]  # no temp files left
    (clip,) = _records(str(output), "train")
    assert clip[record_schema.FILENAME].numpy().decode() == "good one.mp4"
    assert clip[record_schema.IMAGES].shape[0] == 4  # 10 frames at 25 fps = 0.4 s, at 10 fps


def test_splits_without_a_column_are_deterministic_by_path():
    from videofusion.ingest import manifest

    splits = [manifest.assign_split(f"videos/{i}.mp4", 0.1, 0.2) for i in range(2000)]
    assert splits == [manifest.assign_split(f"videos/{i}.mp4", 0.1, 0.2) for i in range(2000)]
    assert 0.17 < splits.count("test") / 2000 < 0.23 and 0.07 < splits.count("val") / 2000 < 0.13


def _prepare(tmp_path, rows, header=("path", "label"), **options):
    manifest_path = tmp_path / "manifest.csv"
    with open(manifest_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    output = tmp_path / "out"
    options = dict(dict(short_side=16, val_fraction=0, test_fraction=0, workers=1), **options)
    summary = prepare.prepare_dataset(
        prepare.PrepareOptions(manifest=str(manifest_path), output_dir=str(output), **options)
    )
    return summary, str(output)


def test_long_video_becomes_consecutive_records(tmp_path):
    write_video(tmp_path / "long.mp4", num_frames=125, audio_seconds=5.0)  # 5 s at 25 fps
    summary, output = _prepare(tmp_path, [["long.mp4", "a"]], max_clip_seconds=2.0)
    assert summary["counts"]["train"] == 3 and summary["videos"]["train"] == 1
    clips = _records(output, "train")
    assert [c[record_schema.IMAGES].shape[0] for c in clips] == [20, 20, 10]
    assert [(int(c[record_schema.START_US]), int(c[record_schema.END_US])) for c in clips] == [
        (0, 2_000_000), (2_000_000, 4_000_000), (4_000_000, 5_000_000)]
    assert [c[record_schema.WAVEFORM].shape[0] for c in clips] == [32000, 32000, 16000]
    assert {c[record_schema.FILENAME].numpy() for c in clips} == {b"long.mp4"}
    # Frame 0 of the second record is source frame 50 (t = 2 s): brightness 10 + 4 * 50.
    first = tf.io.decode_jpeg(clips[1][record_schema.IMAGES][0]).numpy()
    assert abs(float(first.mean()) - 210) < 4
    # The tone runs on across the cut: no gap or jump at the start of the second record.
    np.testing.assert_allclose(np.abs(clips[1][record_schema.WAVEFORM].numpy()[:400]).max(), 0.5, atol=0.05)


def test_start_and_end_columns_select_a_span(tmp_path):
    write_video(tmp_path / "v.mp4", num_frames=100, audio_seconds=4.0)
    _, output = _prepare(tmp_path, [["v.mp4", "a", "1.0", "3.0"]], header=("path", "label", "start", "end"))
    (clip,) = _records(output, "train")
    assert (int(clip[record_schema.START_US]), int(clip[record_schema.END_US])) == (1_000_000, 3_000_000)
    assert clip[record_schema.IMAGES].shape[0] == 20
    brightness = [float(tf.io.decode_jpeg(clip[record_schema.IMAGES][i]).numpy().mean()) for i in (0, 5)]
    assert abs(brightness[0] - (10 + 4 * 25)) < 4  # source frame at 1.0 s
    assert abs(brightness[1] - (10 + 4 * 37)) < 4  # at 1.5 s: source frame 37 (1.48 s)
    assert clip[record_schema.WAVEFORM].shape[0] == 32000


def test_class_folders_and_captions(tmp_path):
    root = tmp_path / "root"
    for label, name in [("cat", "a.mp4"), ("dog", "b c.webm"), ("dog", "d.mp4")]:
        (root / label).mkdir(parents=True, exist_ok=True)
        write_video(root / label / name, num_frames=5, audio_seconds=0.2)
    (root / "dog" / "notes.txt").write_text("not a video")
    summary = prepare.prepare_dataset(prepare.PrepareOptions(
        input_dir=str(root), output_dir=str(tmp_path / "out"), short_side=16, val_fraction=0,
        test_fraction=0, workers=1))
    assert summary["label_counts"]["train"] == {"cat": 1, "dog": 2}
    errors = [json.loads(line) for line in open(tmp_path / "out" / "errors.jsonl")]
    assert errors == [{"path": os.path.join("dog", "notes.txt"), "reason": "not a video file extension"}]

    write_video(tmp_path / "e.mp4", num_frames=5, audio_seconds=0.2)
    _, output = _prepare(tmp_path, [["e.mp4", "x", "a cat, purring"]], header=("path", "label", "text"))
    (clip,) = _records(output, "train")
    assert clip[record_schema.CAPTION].numpy().decode() == "a cat, purring"
