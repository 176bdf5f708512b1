"""UCF101 (Soomro, Zamir and Shah, 2012): 13,320 YouTube clips of 101 actions, three official train/test splits.

The layout `UCF101.rar` and `UCF101TrainTestSplits-RecognitionTask.zip` unpack to
(https://www.crcv.ucf.edu/data/UCF101.php)::

    ROOT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi
    ROOT/ucfTrainTestlist/classInd.txt      lines "1 ApplyEyeMakeup": index (from 1) and class
    ROOT/ucfTrainTestlist/trainlist0N.txt   lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist0N.txt    lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" (no index)

Split N's train list becomes `train`, its test list `test`; UCF101 has no validation split (training then
runs without one). Quirks of the files as published:

- they have Windows line endings (CRLF);
- names differ in case between the places they appear: classInd.txt and the folder say
  `HandstandPushups`, the file names and the lists `v_HandStandPushups_…` (and some re-packed copies of
  the videos `v_HandstandPushups_…`). A listed path is matched to the files on disk ignoring case, and
  the label is always classInd.txt's spelling, the canonical one;
- a list line whose class is not in classInd.txt, or whose index names another class than its folder,
  is skipped with the file and line named in `errors.jsonl`.

Example:

>>> parse_list_line("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1")
('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi', 1)
>>> parse_list_line("HandstandPushups/v_HandStandPushups_g01_c01.avi")
('HandstandPushups/v_HandStandPushups_g01_c01.avi', None)
>>> entries, problems = read("/data/UCF101", split=1)  # doctest: +SKIP
"""

import functools
from typing import Dict, Optional, Tuple

from videofusion.ingest.recipes import common

DESCRIPTION = "UCF101: UCF-101/<Class>/*.avi and ucfTrainTestlist/ (--split 1, 2 or 3 → train, test)"
SPLIT_NUMBERS = (1, 2, 3)
VIDEO_FOLDER = "UCF-101"
LIST_FOLDER = "ucfTrainTestlist"
CLASS_INDEX = "classInd.txt"
LISTS = {"train": "trainlist{:02d}.txt", "test": "testlist{:02d}.txt"}


def parse_list_line(text: str) -> Tuple[str, Optional[int]]:
    """(video path as listed, class index or None) of a trainlist or testlist line."""
    fields = text.split()
    if len(fields) not in (1, 2) or (len(fields) == 2 and not fields[1].isdigit()):
        raise ValueError(f"expected '<Class>/<video>.avi [<index>]', got {text!r}")
    return fields[0], int(fields[1]) if len(fields) == 2 else None


def read_class_index(path: str, name: str) -> Dict[int, str]:
    """{index: class} of classInd.txt; a malformed line makes the whole dataset unreadable."""
    classes = {}
    for line, text in common.text_lines(path):
        fields = text.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise common.RecipeError(f"{common.where(name, line)}: expected '<index> <Class>', got {text!r}")
        classes[int(fields[0])] = fields[1]
    if not classes:
        raise common.RecipeError(f"{name}: no classes")
    return classes


def read(root: str, split: int = 1):
    """(entries, problems) of official split `split` (1, 2 or 3) of the UCF101 copy at `root`."""
    class_file = common.annotation_path(root, f"{LIST_FOLDER}/{CLASS_INDEX}")
    classes = read_class_index(class_file, common.relative(root, class_file))
    canonical = {name.lower(): name for name in classes.values()}
    videos = common.index_videos(root, VIDEO_FOLDER, key=str.lower)

    def make(text: str, our_split: str):
        listed, index = parse_list_line(text)
        folder = listed.split("/")[0]
        label = canonical.get(folder.lower())
        if label is None:
            raise common.Skip(listed, f"class {folder!r} is not in {CLASS_INDEX}")
        if index is not None and classes.get(index) != label:
            raise common.Skip(listed, f"index {index} is {classes.get(index)!r} in {CLASS_INDEX}, not {label!r}")
        path = videos.get(listed.lower())
        if path is None:
            raise common.Skip(f"{VIDEO_FOLDER}/{listed}", f"not found under {VIDEO_FOLDER}/ (case ignored)")
        return common.entry(root, path, label, our_split)

    rows = common.Rows(f"ucf101 split {split}")
    for our_split, pattern in LISTS.items():
        list_file = common.annotation_path(root, f"{LIST_FOLDER}/{pattern.format(split)}")
        rows.add(common.relative(root, list_file), common.text_lines(list_file),
                 functools.partial(make, our_split=our_split))
    return rows.result()
