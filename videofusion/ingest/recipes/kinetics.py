"""Kinetics-400, -600, -700 and -700-2020 (DeepMind): 10-second YouTube clips of 400 to 700 human actions.

The official CSVs (one per split, https://github.com/cvdfoundation/kinetics-dataset) have a header row
and these columns, whichever the edition:

    label,youtube_id,time_start,time_end,split[,is_cc]     train and val (is_cc in Kinetics-400 only)
    youtube_id,time_start,time_end,split                   test of Kinetics-600/700/700-2020: no label

`split` is `train`, `val` or `validate` (→ our `val`) or `test`; labels are kept as written (`air
drumming`, `passing American football (in game)`). The clips are downloaded already cut to
time_start..time_end and named `<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`, as the CVDF archives
and the ActivityNet / MMAction2 download script name them. The layout::

    ROOT/annotations/*.csv   (or ROOT/*.csv; all of them are read, each row carries its split)
    ROOT/train/…clip.mp4     (train/ or videos_train/; clips directly inside or in per-class folders)
    ROOT/val/…               (val/, validate/ or videos_val/)
    ROOT/test/…              (test/ or videos_test/)

A clip's row covers its whole file (it is already trimmed); where only the untrimmed video
`<youtube_id>.mp4` is on disk, the row takes time_start..time_end from the CSV. Many videos have been
taken down from YouTube since the CSVs were published, so clips missing on disk are expected: each is a
line of `errors.jsonl` (with the folder it was looked for in), never an error of the whole run. Test rows
without a label cannot be training or evaluation data: they are left out, with one warning saying how
many (evaluate on `val`, as the Kinetics papers do).

Example:

>>> clip_name("-3B32lodo2M", 59.0, 69.0)
'-3B32lodo2M_000059_000069'
>>> entries, problems = read("/data/kinetics400")  # doctest: +SKIP
"""

import functools
import os
from typing import Dict, List

from absl import logging

from videofusion import fileio
from videofusion.ingest.recipes import common

DESCRIPTION = "Kinetics-400/600/700: annotations/*.csv and train/, val/, test/ clips (missing clips are listed)"
SPLIT_NUMBERS = ()
LABEL = "label"
YOUTUBE_ID = "youtube_id"
TIME_START = "time_start"
TIME_END = "time_end"
SPLIT = "split"
REQUIRED_COLUMNS = (YOUTUBE_ID, TIME_START, TIME_END, SPLIT)
OUR_SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}
SPLIT_FOLDERS = {
    "train": ("train", "videos_train"),
    "val": ("val", "validate", "videos_val"),
    "test": ("test", "videos_test"),
}
ANNOTATION_FOLDERS = ("annotations", ".")


def clip_name(youtube_id: str, start: float, end: float) -> str:
    """The file name (without extension) of a downloaded clip."""
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def annotation_files(root: str) -> List[str]:
    """The CSVs of the first of `ANNOTATION_FOLDERS` under `root` that has any."""
    for folder in ANNOTATION_FOLDERS:
        files = fileio.glob(os.path.join(root, folder, "*.csv"))
        if files:
            return files
    raise common.RecipeError(f"{root}: no Kinetics CSV in annotations/ or in the folder itself")


def _check_header(header: List[str], name: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise common.RecipeError(
            f"{name}: header must have columns {', '.join(REQUIRED_COLUMNS)} (and {LABEL}); missing "
            f"{', '.join(missing)} (header was {','.join(header)})"
        )


def _make(fields: List[str], header: List[str], videos: Dict[str, Dict[str, str]], root: str):
    if len(fields) != len(header):
        raise ValueError(f"{len(fields)} fields where the header has {len(header)}")
    field = dict(zip(header, fields))
    split, label = common.split_and_label(field[SPLIT], field[LABEL], OUR_SPLITS)
    start, end = common.span(field[TIME_START], field[TIME_END])
    clip = clip_name(field[YOUTUBE_ID], start, end)
    found = common.clip_or_source(videos[split], clip, field[YOUTUBE_ID], start, end)
    if found is None:
        folders = " or ".join(f"{folder}/" for folder in SPLIT_FOLDERS[split])
        raise common.Skip(f"{SPLIT_FOLDERS[split][0]}/{clip}.mp4",
                          f"clip not found under {folders} (taken down from YouTube, or not downloaded)")
    return common.entry(root, found[0], label, split, *found[1:])


def read(root: str):
    """(entries, problems) of the Kinetics copy at `root` (any edition)."""
    videos = {split: common.index_videos(root, *folders, key=common.stem)
              for split, folders in SPLIT_FOLDERS.items()}
    rows = common.Rows("kinetics")
    for path in annotation_files(root):
        name = common.relative(root, path)
        lines = common.csv_rows(path)
        header = next(lines, (0, []))[1]
        _check_header(header, name)
        if LABEL not in header:
            logging.warning("%s: %d rows have no label (the test labels of Kinetics-600 and -700 are not "
                            "published); left out", name, sum(1 for _ in lines))
            continue
        rows.add(name, lines, functools.partial(_make, header=header, videos=videos, root=root))
    return rows.result()
