"""What the recipes share: reading annotation files as published, finding the videos on disk, making rows.

Every recipe reads its files through `text_lines` (plain text, any line ending, blank lines skipped) or
`csv_rows`, turns each line into a row with `Rows.add` (a line it cannot use becomes a problem that names
the file, relative to the dataset root, and the line), and finds its videos through an index of the
video files under a folder (`index_videos`), built once, so that a dataset of 650,000 clips costs one
walk of the folder rather than a look-up per row. The dataset root may be a URL (`gs://bucket/UCF101`):
recipes reach files only through `fileio`, which opens both.

Example:

>>> where("ucfTrainTestlist/trainlist01.txt", 3)
'ucfTrainTestlist/trainlist01.txt line 3'
>>> span("6", "8")
(6.0, 8.0)
>>> span("0", "0")
Traceback (most recent call last):
...
ValueError: the span 0.0-0.0 s is empty
"""

import csv
import os
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from absl import logging

from videofusion import fileio
from videofusion.contract.prepared_folder import SPLITS
from videofusion.ingest import manifest

Lines = Iterator[Tuple[int, str]]


class RecipeError(manifest.ManifestError):
    """The dataset as a whole cannot be read: an annotation file or folder is missing or malformed."""


def annotation_path(root: str, name: str) -> str:
    """`root/name`, an annotation file the dataset must have; raises if it is not there."""
    path = os.path.join(root, name)
    if not fileio.isfile(path):
        raise RecipeError(f"{root}: {name} not found; is --root the folder that holds the dataset as published "
                          "(see datasets/README.md)?")
    return path


def where(name: str, line: int) -> str:
    """How problems name a line of an annotation file."""
    return f"{name} line {line}"


def relative(root: str, path: str) -> str:
    """`path` as seen from the dataset root, with `/` separators (how rows and problems name files)."""
    return fileio.relative(path, root).replace(os.sep, "/")


def text_lines(path: str) -> Lines:
    """(line number, text without surrounding whitespace) of each non-blank line; CRLF, LF or a BOM alike."""
    with fileio.open_file(path, encoding="utf-8-sig", newline=None) as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if text:
                yield number, text


def csv_rows(path: str) -> Iterator[Tuple[int, List[str]]]:
    """(line number, fields) of each non-empty CSV row; quoted fields may hold commas."""
    with fileio.open_file(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        for fields in reader:
            if any(field.strip() for field in fields):
                yield reader.line_num, [field.strip() for field in fields]


def index_videos(root: str, *folders: str, key: Callable[[str], str]) -> Dict[str, str]:
    """{key(path under its folder): path under `root`} of every video file below each of `root/folders`.

    Paths are relative and use `/`; the folders are walked in order, each in sorted order, and the first
    file found wins a key. A missing folder adds nothing (its rows then report their videos missing).
    """
    index: Dict[str, str] = {}
    for folder in folders:
        top = os.path.join(root, folder)
        for directory, subdirs, files in fileio.walk(top):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or os.path.splitext(name)[1].lower() not in manifest.VIDEO_EXTENSIONS:
                    continue
                path = os.path.join(directory, name)
                index.setdefault(key(relative(top, path)), relative(root, path))
    return index


def stem(path: str) -> str:
    """The file name without folder and extension: the key under which clips named by ID are found."""
    return os.path.splitext(os.path.basename(path))[0]


def split_and_label(split: str, label: str, our_splits: Dict[str, str]) -> Tuple[str, str]:
    """(our split, label) of a row's split and label fields; ValueError if the split is unknown or no label."""
    if split not in our_splits:
        raise ValueError(f"split {split!r} is not one of {', '.join(our_splits)}")
    if not label:
        raise ValueError("no label")
    return our_splits[split], label


def seconds(text: str) -> float:
    """A non-negative number of seconds, or ValueError naming the text."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"time {text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"time {text!r} must be a non-negative number of seconds")
    return value


def span(start: str, end: str) -> Tuple[float, float]:
    """(start, end) seconds of an annotated span; ValueError if either is bad or the span is empty."""
    start_s, end_s = seconds(start), seconds(end)
    if end_s <= start_s:
        raise ValueError(f"the span {start_s}-{end_s} s is empty")
    return start_s, end_s


def clip_or_source(index: Dict[str, str], clip: Optional[str], video_id: str, start: float,
                   end: float) -> Optional[Tuple[str, Optional[float], Optional[float]]]:
    """(path, start, end) of a clip: the trimmed file named `clip` (start and end None: the whole file),
    else the untrimmed source video named `video_id` with the annotated span; None if neither exists."""
    if clip is not None and clip in index:
        return index[clip], None, None
    if video_id in index:
        return index[video_id], start, end
    return None


class Skip(ValueError):
    """A row that cannot be used; `path` names its video where the row names one."""

    def __init__(self, path: Optional[str], reason: str):
        super().__init__(reason)
        self.path = path


class Rows:
    """A recipe's entries and problems, gathered file by file.

    `add(name, rows, make)` applies `make` to each (line, row) of the file `name`: what it returns is an
    entry (None: the row is left out on purpose), and a row it rejects with ValueError (or `Skip`) becomes
    a problem naming the file and line.
    """

    def __init__(self, recipe: str):
        self.recipe = recipe
        self.entries: List[manifest.Entry] = []
        self.problems: List[manifest.Problem] = []

    def add(self, name: str, rows: Iterator[Tuple[int, object]],
            make: Callable[[object], Optional[manifest.Entry]]) -> None:
        for line, row in rows:
            at = where(name, line)
            try:
                made = make(row)
            except ValueError as error:
                self.problems.append(manifest.Problem(getattr(error, "path", None) or at, f"{at}: {error}"))
                continue
            if made is not None:
                self.entries.append(made)

    def result(self) -> Tuple[List[manifest.Entry], List[manifest.Problem]]:
        """(entries, problems), as `read_inputs` returns them; logs their counts."""
        counts = {split: sum(e.split == split for e in self.entries) for split in SPLITS}
        logging.info("%s: %d videos (%s) of %d classes; %d rows skipped (see errors.jsonl)", self.recipe,
                     len(self.entries), ", ".join(f"{n} {split}" for split, n in counts.items() if n),
                     len({e.label for e in self.entries}), len(self.problems))
        return self.entries, self.problems


def entry(root: str, path: str, label: str, split: str, start: Optional[float] = None,
          end: Optional[float] = None) -> manifest.Entry:
    """A manifest row for the video at `path` (relative to `root`); the recipes have no captions."""
    return manifest.Entry(path, os.path.join(root, path), label, split, None, start, end)
