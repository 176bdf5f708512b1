"""HMDB51 (Kuehne, Jhuang, Garrote, Poggio and Serre, 2011): about 7,000 clips of 51 actions, three official splits.

The layout `hmdb51_org.rar` (one .rar per class, each unpacked in place) and `test_train_splits.rar`
unpack to (https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/)::

    ROOT/<class>/<video>.avi
    ROOT/testTrainMulti_7030_splits/<class>_test_split<N>.txt   lines "<video>.avi <code>"

There is one split file per class and split; its name gives the class (which may itself hold
underscores: `brush_hair_test_split1.txt`). The code says what the video is in split N: 1 train,
2 test, 0 neither (70 train and 30 test videos per class; the rest are left out, which is not an
error). HMDB51 has no validation split. A line with another code, or without one, is skipped with the
file and line named in `errors.jsonl`.

Example:

>>> parse_split_line("April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1")
('April_09_brush_hair_u_nm_np1_ba_goo_0.avi', 'train')
>>> parse_split_line("Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi 0")
('Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi', None)
>>> SPLIT_FILE.match("brush_hair_test_split1.txt").group("label")
'brush_hair'
>>> entries, problems = read("/data/hmdb51", split=1)  # doctest: +SKIP
"""

import functools
import os
import re
from typing import Optional, Tuple

from videofusion import fileio
from videofusion.ingest.recipes import common

DESCRIPTION = "HMDB51: <class>/*.avi and testTrainMulti_7030_splits/ (--split 1, 2 or 3 → train, test)"
SPLIT_NUMBERS = (1, 2, 3)
SPLIT_FOLDER = "testTrainMulti_7030_splits"
SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<number>\d+)\.txt$")
CODES = {"1": "train", "2": "test", "0": None}  # 0: in neither split


def parse_split_line(text: str) -> Tuple[str, Optional[str]]:
    """(video file name, our split or None for code 0) of a split file line."""
    fields = text.rsplit(None, 1)
    if len(fields) != 2 or fields[1] not in CODES:
        raise ValueError(f"expected '<video>.avi <code>' with code 0, 1 or 2, got {text!r}")
    return fields[0], CODES[fields[1]]


def read(root: str, split: int = 1):
    """(entries, problems) of official split `split` (1, 2 or 3) of the HMDB51 copy at `root`."""
    folder = os.path.join(root, SPLIT_FOLDER)
    if not fileio.isdir(folder):
        raise common.RecipeError(f"{root}: no {SPLIT_FOLDER}/ folder (unpack test_train_splits.rar there)")
    split_files = sorted(
        (match.group("label"), os.path.join(folder, name))
        for name in fileio.listdir(folder)
        if (match := SPLIT_FILE.match(name)) and int(match.group("number")) == split
    )
    if not split_files:
        raise common.RecipeError(f"{folder}: no <class>_test_split{split}.txt files")
    videos = common.index_videos(root, ".", key=str)

    def make(text: str, label: str):
        video, our_split = parse_split_line(text)
        if our_split is None:
            return None
        path = videos.get(f"{label}/{video}")
        if path is None:
            raise common.Skip(f"{label}/{video}", f"not found under {label}/")
        return common.entry(root, path, label, our_split)

    rows = common.Rows(f"hmdb51 split {split}")
    for label, path in split_files:
        rows.add(common.relative(root, path), common.text_lines(path), functools.partial(make, label=label))
    return rows.result()
