"""VGGSound (Chen, Xie, Vedaldi and Zisserman, 2020): 10-second YouTube clips of some 300 sound classes.

The official `vggsound.csv` (https://www.robots.ox.ac.uk/~vgg/data/vggsound/) has no header row; its
columns are YouTube ID, start seconds, label and split (`train` or `test`; there is no validation split).
Labels with a comma are quoted (`"heart sounds, heartbeat"`) and kept as written. Each clip is the 10
seconds from its start, downloaded already cut and named `<youtube_id>_<start:06d>.mp4`, as the authors'
own lists (github.com/hche11/VGGSound, data/test.csv) name them. The layout::

    ROOT/vggsound.csv
    ROOT/…/<youtube_id>_<start:06d>.mp4   (anywhere below ROOT: video/, train/ and test/, …)

A clip's row covers its whole file; where only the untrimmed video `<youtube_id>.mp4` is on disk, the
row takes start..start+10 s. Clips missing on disk (videos taken down from YouTube) are each a line of
`errors.jsonl`, not an error of the whole run.

Example:

>>> clip_name("glLQrEijrKg", 300.0)
'glLQrEijrKg_000300'
>>> entries, problems = read("/data/vggsound")  # doctest: +SKIP
"""

import functools
from typing import Dict, List

from videofusion.ingest.recipes import common

DESCRIPTION = "VGGSound: vggsound.csv (no header) and <youtube_id>_<start:06d>.mp4 clips anywhere below --root"
SPLIT_NUMBERS = ()
CSV_FILE = "vggsound.csv"
COLUMNS = ("youtube_id", "start_seconds", "label", "split")  # the CSV's order; it has no header row
OUR_SPLITS = {"train": "train", "test": "test"}
CLIP_SECONDS = 10.0


def clip_name(youtube_id: str, start: float) -> str:
    """The file name (without extension) of a downloaded clip."""
    return f"{youtube_id}_{int(start):06d}"


def _make(fields: List[str], videos: Dict[str, str], root: str):
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{len(fields)} fields, expected {len(COLUMNS)}: {','.join(COLUMNS)}")
    youtube_id, start_text, label_text, split_text = fields
    split, label = common.split_and_label(split_text, label_text, OUR_SPLITS)
    start = common.seconds(start_text)
    clip = clip_name(youtube_id, start)
    found = common.clip_or_source(videos, clip, youtube_id, start, start + CLIP_SECONDS)
    if found is None:
        raise common.Skip(f"{clip}.mp4", "clip not found below the dataset folder (taken down, or not downloaded)")
    return common.entry(root, found[0], label, split, *found[1:])


def read(root: str):
    """(entries, problems) of the VGGSound copy at `root`."""
    path = common.annotation_path(root, CSV_FILE)
    videos = common.index_videos(root, ".", key=common.stem)
    rows = common.Rows("vggsound")
    rows.add(CSV_FILE, common.csv_rows(path), functools.partial(_make, videos=videos, root=root))
    return rows.result()
