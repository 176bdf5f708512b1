"""The prepared-data contract: what `videofusion prepare` writes and everything after it reads.

A prepared folder holds, besides the TFRecord shards (their records: `records.py`):

- `{split}-{index:05d}-of-{count:05d}.tfrecord` shards per split (`shard_name`, `shard_files`);
- `labels.txt`: one class name per line, the label index = the line number (from 0);
- `dataset.json`: what was written (the keys below) and with which parameters;
- `errors.jsonl`: one `{"path", "reason"}` per input that was skipped.

Ingest (`prepare.py`) writes these names and keys; training, evaluation, export, `info` and `summary`
read them through this module only, so none of them imports ingest (nor PyAV and OpenCV with it). The
folder may be a URL that `tf.io.gfile` opens (`data.dir=gs://bucket/records`; `fileio`), which
`tf.data.TFRecordDataset` reads too.

Example:

>>> shard_name("train", 0, 4)
'train-00000-of-00004.tfrecord'
>>> read_dataset_info("datasets/demo/records")[FPS]  # doctest: +SKIP
10.0
"""

import os
from typing import List

from videofusion import fileio

SPLITS = ("train", "val", "test")
# What `prepare` stores unless told otherwise (its options, `prepare.PrepareOptions`, start from these).
DEFAULT_FPS = 10.0
DEFAULT_SHORT_SIDE = 128
DEFAULT_SAMPLE_RATE = 16000
LABELS_FILE = "labels.txt"
DATASET_FILE = "dataset.json"
ERRORS_FILE = "errors.jsonl"

# dataset.json keys.
SCHEMA_VERSION = "schema_version"  # records.SCHEMA_VERSION of the shards
VIDEOFUSION_VERSION = "videofusion_version"
COUNTS = "counts"  # {split: clips}
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
