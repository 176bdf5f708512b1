"""Reading the inputs of `prepare`: a CSV manifest or class folders, splits and the label vocabulary.

A manifest has a header row with at least `path` and `label`; `text`, `split`, `start` and `end`
(seconds) are optional. Relative paths are relative to the manifest's folder. Class folders are
`ROOT/<label>/<video>`. A row with an empty label, and every video under a folder of unlabeled videos
(`read_unlabeled_folder`), is an unlabeled entry (`label` ""): `pretrain` learns from it, `train` and
`evaluate` skip it, and it goes to the train split unless its row names another. The manifest, the
folders and the paths in a manifest may be URLs that
`tf.io.gfile` opens (`gs://bucket/videos/a.mp4`; `fileio`).

Example:

>>> entries, problems = read_manifest("datasets/demo/raw/manifest.csv")  # doctest: +SKIP
>>> assign_split("videos/00001.mp4", val_fraction=0.1, test_fraction=0.2)
'val'
"""

import csv
import dataclasses
import hashlib
import os
from typing import List, Optional, Tuple

from videofusion import fileio
from videofusion.contract.prepared_folder import SPLITS

REQUIRED_COLUMNS = ("path", "label")


class ManifestError(Exception):
    """The manifest as a whole cannot be used (missing file or columns)."""


@dataclasses.dataclass
class Entry:
    """One input video: `path` as written in the manifest, `resolved` the file to open."""

    path: str
    resolved: str
    label: str  # "" for an unlabeled video
    split: Optional[str] = None
    text: Optional[str] = None
    start: Optional[float] = None
    end: Optional[float] = None


@dataclasses.dataclass
class Problem:
    """An input that is skipped, and why."""

    path: str
    reason: str


def _entry_from_row(row: dict, line: int, root: str) -> Tuple[Optional[Entry], Optional[Problem]]:
    path = (row.get("path") or "").strip()
    label = (row.get("label") or "").strip()
    where = f"manifest line {line}"
    if None in row:
        return None, Problem(path or where, f"{where}: more fields than header columns")
    if not path:
        return None, Problem(where, f"{where}: empty path")
    split = (row.get("split") or "").strip() or None
    if split is not None and split not in SPLITS:
        return None, Problem(path, f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    try:
        start, end = _seconds(row.get("start")), _seconds(row.get("end"))
    except ValueError as error:
        return None, Problem(path, f"{where}: {error}")
    if start is not None and end is not None and end <= start:
        return None, Problem(path, f"{where}: end {end} s is not after start {start} s")
    text = row.get("text")
    resolved = path if os.path.isabs(path) or fileio.is_url(path) else os.path.join(root, path)
    return Entry(path, resolved, label, split, text if text else None, start, end), None


def _seconds(value: Optional[str]) -> Optional[float]:
    value = (value or "").strip()
    if not value:
        return None
    seconds = float(value)  # ValueError names the bad text
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"time {value!r} must be a non-negative number of seconds")
    return seconds


def _read_rows(reader: csv.DictReader, manifest_path: str, root: str):
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ManifestError(
            f"{manifest_path}: header must have columns {', '.join(REQUIRED_COLUMNS)}; "
            f"missing {', '.join(missing)} (header was {reader.fieldnames})"
        )
    entries, problems = [], []
    for row in reader:
        entry, problem = _entry_from_row(row, reader.line_num, root)
        if entry is not None:
            entries.append(entry)
        if problem is not None:
            problems.append(problem)
    return entries, problems


def read_manifest(manifest_path: str) -> Tuple[List[Entry], List[Problem]]:
    """Reads a CSV manifest into entries, and the rows that cannot be used into problems.

    Raises:
      ManifestError: the file is missing, not UTF-8 CSV, or its header lacks `path` or `label`.
    """
    if not fileio.isfile(manifest_path):
        raise ManifestError(f"{manifest_path}: manifest not found")
    root = os.path.dirname(fileio.absolute(manifest_path))
    try:
        with fileio.open_file(manifest_path, newline="", encoding="utf-8-sig") as f:
            return _read_rows(csv.DictReader(f), manifest_path, root)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ManifestError(f"{manifest_path}: not a UTF-8 CSV file ({error})") from error


VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .mts .flv .wmv .3gp .ogv".split()
)


def read_class_folders(root: str) -> Tuple[List[Entry], List[Problem]]:
    """Entries for `root/<label>/<video>` (any depth below the label folder), sorted by path.

    Files whose extension is not a video extension are reported as problems, hidden files ignored.
    """
    _check_folder(root)
    entries, problems = [], []
    for label in sorted(fileio.listdir(root)):
        if not label.startswith(".") and fileio.isdir(os.path.join(root, label)):
            _add_videos(os.path.join(root, label), root, label, entries, problems)
    return entries, problems


def read_unlabeled_folder(root: str) -> Tuple[List[Entry], List[Problem]]:
    """Unlabeled entries (label "") for every video below `root` (any depth), sorted by path, named by
    their path from `root`'s parent (`unlabeled/cam1/a.mp4`), so that they never collide with a class
    folder's videos."""
    _check_folder(root)
    entries, problems = [], []
    _add_videos(root, os.path.dirname(fileio.absolute(root).rstrip("/")), "", entries, problems)
    return entries, problems


def _check_folder(root: str) -> None:
    if not fileio.isdir(root):
        raise ManifestError(f"{root}: input folder not found")


def _add_videos(folder: str, root: str, label: str, entries: List[Entry], problems: List[Problem]) -> None:
    """Appends an entry of `label` for each video below `folder`, named by its path from `root`."""
    for directory, subdirs, files in fileio.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            resolved = os.path.join(directory, name)
            relative = fileio.relative(resolved, root)
            if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
                entries.append(Entry(relative, resolved, label))
            else:
                problems.append(Problem(relative, "not a video file extension"))


def assign_split(path: str, val_fraction: float, test_fraction: float) -> str:
    """A deterministic split for `path`, from a hash of the path (same file, same split, every run).

    Every segment of one source file gets the same split, so segments never straddle splits.
    """
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def label_vocabulary(entries: List[Entry]) -> List[str]:
    """The sorted labels (unlabeled entries have none); a label's index is its position (the line number
    in `labels.txt`)."""
    return sorted({e.label for e in entries if e.label})


def entry_split(entry: Entry, val_fraction: float, test_fraction: float) -> str:
    """The split `entry` goes to: its own, else train for an unlabeled entry (its clips are for
    pretraining, which learns from the train split), else `assign_split` of its path."""
    if entry.split:
        return entry.split
    return assign_split(entry.path, val_fraction, test_fraction) if entry.label else "train"
