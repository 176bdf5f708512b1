"""The prepared-data contract: what `videofusion prepare` writes and everything after it reads.

A prepared folder holds, besides the TFRecord shards (their records: `record_schema.py`):

- `{split}-{index:05d}-of-{count:05d}.tfrecord` shards per split (`shard_name`, `shard_files`);
- `labels.txt`: one class name per line, the label index = the line number (from 0);
- `dataset.json`: what was written (the keys below) and with which parameters;
- `errors.jsonl`: one `{"path", "reason"}` per input that was skipped.

Ingest (`ingest/prepare.py`) writes these names and keys; training, evaluation, export, `info` and
`summary` read them through this module only, so none of them imports ingest (nor PyAV and OpenCV with it). The
folder may be a URL that `tf.io.gfile` opens (`data.dir=gs://bucket/records`; `fileio`), which
`tf.data.TFRecordDataset` reads too.

Example:

>>> shard_name("train", 0, 4)
'train-00000-of-00004.tfrecord'
>>> read_dataset_info("datasets/demo/records")[FPS]  # doctest: +SKIP
10.0
>>> print(format_info("datasets/demo/records"))  # `videofusion info`  # doctest: +SKIP
datasets/demo/records: 480 clips from 480 videos, 960.0 s; 0 inputs skipped
...
"""

import os
from typing import List

from videofusion import fileio

SPLITS = ("train", "val", "test")
# What `prepare` stores unless told otherwise (its options, `ingest.prepare.PrepareOptions`, start from these;
# `predict` repeats the last two for a run whose data folder it cannot read).
DEFAULT_FPS = 10.0
DEFAULT_SHORT_SIDE = 128
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_MAX_CLIP_SECONDS = 30.0
DEFAULT_JPEG_QUALITY = 90
LABELS_FILE = "labels.txt"
DATASET_FILE = "dataset.json"
ERRORS_FILE = "errors.jsonl"

# dataset.json keys.
SCHEMA_VERSION = "schema_version"  # record_schema.SCHEMA_VERSION of the shards
VIDEOFUSION_VERSION = "videofusion_version"
COUNTS = "counts"  # {split: clips}, labeled and unlabeled
UNLABELED_COUNTS = "unlabeled_counts"  # {split: clips without a label}; absent before 0.3: none
VIDEOS = "videos"  # {split: videos the clips came from}
LABEL_COUNTS = "label_counts"  # {split: {label: clips}}
NUM_ERRORS = "num_errors"  # lines of errors.jsonl
TOTAL_DURATION_S = "total_duration_s"
FPS = "fps"  # frames per second kept
SHORT_SIDE = "short_side"  # pixels of the frames' short side
SAMPLE_RATE = "sample_rate"  # Hz of the mono waveform
SHARDS = "shards"  # {split: number of shards}
PARAMETERS = "parameters"  # every option `prepare` ran with
LABELS = "labels"  # not in the file: `read_dataset_info` adds labels.txt's lines


def shard_name(split: str, index: int, count: int) -> str:
    """`train-00000-of-00004.tfrecord`."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_files(data_dir: str, split: str) -> List[str]:
    """The sorted shard paths of `split` in `data_dir`; raises if there are none."""
    files = fileio.glob(os.path.join(data_dir, f"{split}-*-of-*.tfrecord"))
    if not files:
        raise FileNotFoundError(
            f"no {split} shards ({split}-*-of-*.tfrecord) in {data_dir}: run `videofusion prepare`"
        )
    return files


def read_labels(path: str) -> List[str]:
    """The class names of a `labels.txt`, index = position."""
    with fileio.open_file(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def read_dataset_info(data_dir: str) -> dict:
    """`dataset.json` of a prepared directory, with its labels under `LABELS`."""
    info_path = os.path.join(data_dir, DATASET_FILE)
    if not fileio.isfile(info_path):
        raise FileNotFoundError(f"{info_path} not found: run `videofusion prepare --output {data_dir}` first")
    info = fileio.read_json(info_path)
    info[LABELS] = read_labels(os.path.join(data_dir, LABELS_FILE))
    return info


def labeled_counts(info: dict) -> dict:
    """{split: clips with a label} of a `read_dataset_info` result.

    >>> labeled_counts({COUNTS: {"train": 10, "val": 2}, UNLABELED_COUNTS: {"train": 7, "val": 0}})
    {'train': 3, 'val': 2}
    """
    unlabeled = info.get(UNLABELED_COUNTS, {})
    return {split: count - unlabeled.get(split, 0) for split, count in info[COUNTS].items()}


def format_info(data_dir: str) -> str:
    """`videofusion info DIR`: the summary of `data_dir`'s `dataset.json`: totals, parameters, and clips
    per label and split."""
    info = read_dataset_info(data_dir)
    counts, videos = info[COUNTS], info.get(VIDEOS, info[COUNTS])
    lines = [
        f"{data_dir}: {sum(counts.values())} clips from {sum(videos.values())} videos, "
        f"{info[TOTAL_DURATION_S]:.1f} s; {info[NUM_ERRORS]} inputs skipped",
        f"frames: {info[FPS]:g} fps, short side {info[SHORT_SIDE]} px; "
        f"audio: {info[SAMPLE_RATE]} Hz mono; "
        f"schema {info[SCHEMA_VERSION]}, videofusion {info[VIDEOFUSION_VERSION]}",
        "",
    ]
    unlabeled = info.get(UNLABELED_COUNTS, {})
    rows = [(label, [info[LABEL_COUNTS][split].get(label, 0) for split in SPLITS]) for label in info[LABELS]]
    if any(unlabeled.values()):
        rows += [("labeled", [labeled_counts(info)[split] for split in SPLITS]),
                 ("unlabeled", [unlabeled.get(split, 0) for split in SPLITS])]
    rows.append(("total", [counts[split] for split in SPLITS]))
    width = max(len("label"), *(len(name) for name, _ in rows))
    header = f"{'label':<{width}}" + "".join(f"{split:>8}" for split in SPLITS) + f"{'all':>8}"
    lines += [header, "-" * len(header)]
    for name, row in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{n:>8}" for n in row) + f"{sum(row):>8}")
    return "\n".join(lines)
