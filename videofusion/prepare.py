"""Ingest: a manifest of videos → sharded TFRecords, `labels.txt`, `dataset.json` and `errors.jsonl`.

Each video is decoded with `media.read_media` (frames at `fps` by timestamp, short side `short_side`,
JPEG-encoded with OpenCV; audio as mono float32 at `sample_rate`) and written as one SequenceExample
(`records.py`). A file that cannot be used is skipped and reported in `errors.jsonl`, never a crash.
Shards are written under temporary names and renamed when complete.

Example:

>>> summary = prepare_dataset(PrepareOptions(manifest="datasets/demo/raw/manifest.csv",
...                                          output_dir="datasets/demo/records"))  # doctest: +SKIP
>>> summary["counts"]["train"]  # doctest: +SKIP
336
"""

import collections
import contextlib
import dataclasses
import json
import os
from typing import Dict, List

import cv2
import numpy as np
import tensorflow as tf
from absl import logging

import videofusion
from videofusion import fileio, manifest, media, records

LABELS_FILE = "labels.txt"
DATASET_FILE = "dataset.json"
ERRORS_FILE = "errors.jsonl"


@dataclasses.dataclass
class PrepareOptions:
    """The parameters of one `prepare` run (the command line's flags)."""

    manifest: str
    output_dir: str
    fps: float = 10.0
    short_side: int = 128
    sample_rate: int = 16000
    num_shards: int = 4
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    jpeg_quality: int = 90


def shard_name(split: str, index: int, count: int) -> str:
    """`train-00000-of-00004.tfrecord`."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a uint8 RGB image `[height, width, 3]`, encoded with OpenCV."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("OpenCV could not encode a frame as JPEG")
    return buffer.tobytes()


def clip_from_video(entry: manifest.Entry, label_index: int, options: PrepareOptions) -> records.Clip:
    """Decodes `entry` into a clip record; raises `media.MediaError` for a file that can't be used."""
    decoded = media.read_media(
        entry.resolved,
        fps=options.fps,
        short_side=options.short_side,
        sample_rate=options.sample_rate,
        frame_fn=lambda rgb: encode_jpeg(rgb, options.jpeg_quality),
    )
    return records.Clip(
        label_index=label_index,
        label_text=entry.label,
        filename=entry.path,
        start_us=0,
        end_us=int(round(decoded.duration_s * 1e6)),
        frame_rate=decoded.frame_rate,
        jpeg_frames=decoded.frames,
        waveform=decoded.waveform,
        sample_rate=decoded.sample_rate,
        has_audio=decoded.has_audio,
        caption=entry.text,
    )


class _ShardWriters:
    """Round-robin writers over a split's shards, each under a temporary name until `close`."""

    def __init__(self, output_dir: str, split: str, num_shards: int):
        self._paths = [
            os.path.join(output_dir, shard_name(split, i, num_shards)) for i in range(num_shards)
        ]
        self._writers = [tf.io.TFRecordWriter(fileio.temp_name(p)) for p in self._paths]
        self.count = 0

    def write(self, serialized: bytes):
        self._writers[self.count % len(self._writers)].write(serialized)
        self.count += 1

    def close(self, commit: bool):
        for writer, path in zip(self._writers, self._paths):
            writer.close()
            if commit:
                os.replace(fileio.temp_name(path), path)
            else:
                os.remove(fileio.temp_name(path))


def _assign_splits(entries: List[manifest.Entry], options: PrepareOptions) -> Dict[str, list]:
    by_split = collections.defaultdict(list)
    for entry in entries:
        split = entry.split or manifest.assign_split(
            entry.path, options.val_fraction, options.test_fraction
        )
        by_split[split].append(entry)
    return by_split


@contextlib.contextmanager
def _open_writers(output_dir: str, by_split: Dict[str, list], num_shards: int):
    writers = {
        split: _ShardWriters(output_dir, split, max(1, min(num_shards, len(items))))
        for split, items in by_split.items()
    }
    committed = False
    try:
        yield writers
        committed = True
    finally:
        for writer in writers.values():
            writer.close(commit=committed)


def _write_reports(options, labels, counts, label_counts, duration_s, problems) -> dict:
    out = options.output_dir
    with fileio.atomic_open(os.path.join(out, LABELS_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{label}\n" for label in labels))
    with fileio.atomic_open(os.path.join(out, ERRORS_FILE), "w", encoding="utf-8") as f:
        for problem in problems:
            f.write(json.dumps(dataclasses.asdict(problem), ensure_ascii=False) + "\n")
    summary = {
        "schema_version": records.SCHEMA_VERSION,
        "videofusion_version": videofusion.__version__,
        "counts": counts,
        "label_counts": label_counts,
        "num_errors": len(problems),
        "total_duration_s": round(duration_s, 3),
        "fps": options.fps,
        "short_side": options.short_side,
        "sample_rate": options.sample_rate,
        "parameters": dataclasses.asdict(options),
    }
    fileio.write_json(os.path.join(out, DATASET_FILE), summary)
    return summary


def prepare_dataset(options: PrepareOptions) -> dict:
    """Runs the whole ingest; returns what it wrote to `dataset.json`.

    Raises:
      manifest.ManifestError: the manifest itself cannot be read.
    """
    entries, problems = manifest.read_manifest(options.manifest)
    labels = manifest.label_vocabulary(entries)
    label_index = {label: i for i, label in enumerate(labels)}
    by_split = _assign_splits(entries, options)
    os.makedirs(options.output_dir, exist_ok=True)
    counts = {split: 0 for split in manifest.SPLITS}
    label_counts = {split: {label: 0 for label in labels} for split in manifest.SPLITS}
    duration_s = 0.0
    work = [(split, entry) for split in manifest.SPLITS for entry in by_split.get(split, [])]
    with _open_writers(options.output_dir, by_split, options.num_shards) as writers:
        for split, entry in fileio.progress(work, desc="prepare", unit="video"):
            try:
                clip = clip_from_video(entry, label_index[entry.label], options)
            except media.MediaError as error:
                logging.warning("Skipping %s", error)
                problems.append(manifest.Problem(entry.path, error.reason))
                continue
            writers[split].write(records.encode_clip(clip))
            counts[split] += 1
            label_counts[split][entry.label] += 1
            duration_s += clip.end_us / 1e6
    summary = _write_reports(options, labels, counts, label_counts, duration_s, problems)
    logging.info(
        "Wrote %s clips to %s; %d inputs skipped (see %s)",
        counts, options.output_dir, len(problems), ERRORS_FILE,
    )
    return summary


def read_dataset_info(data_dir: str) -> dict:
    """`dataset.json` of a prepared directory, with its labels under `labels`."""
    info_path = os.path.join(data_dir, DATASET_FILE)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{info_path} not found: run `videofusion prepare --output {data_dir}` first"
        )
    info = fileio.read_json(info_path)
    with open(os.path.join(data_dir, LABELS_FILE), encoding="utf-8") as f:
        info["labels"] = [line.rstrip("\n") for line in f if line.strip()]
    return info
