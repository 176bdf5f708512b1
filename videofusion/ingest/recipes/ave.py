"""AVE, Audio-Visual Event (Tian, Shi, Li, Duan and Xu, ECCV 2018): 4,143 10-second videos of 28 events.

The layout the archive linked from https://github.com/YapengTian/AVE-ECCV18 unpacks to::

    ROOT/AVE/<VideoID>.mp4
    ROOT/Annotations.txt                             every video
    ROOT/trainSet.txt, valSet.txt, testSet.txt       the official train / val / test split

All four text files have the same lines, `&`-separated: `Category&VideoID&Quality&StartTime&EndTime`
(`Church bell&MH3m4AwEcRY&good&6&8`), categories that hold commas and spaces as written (`Male speech,
man speaking`). A line that is the header itself (Annotations.txt starts with one) is passed over. The
split files decide the rows (Annotations.txt is their union and is not read). The annotated event span
StartTime..EndTime (whole seconds) becomes the clip: the row's start and end. A few spans are empty
(`…&good&0&0`): such a line is skipped with the file and line named in `errors.jsonl`, as is a video
missing from AVE/.

Example:

>>> parse_line("Church bell&MH3m4AwEcRY&good&6&8")
('Church bell', 'MH3m4AwEcRY', 6.0, 8.0)
>>> entries, problems = read("/data/AVE_Dataset")  # doctest: +SKIP
"""

import functools
from typing import Dict, Tuple

from videofusion.ingest.recipes import common

DESCRIPTION = "AVE: AVE/<VideoID>.mp4 and trainSet/valSet/testSet.txt; the annotated event span is the clip"
SPLIT_NUMBERS = ()
VIDEO_FOLDER = "AVE"
HEADER = "Category&VideoID&Quality&StartTime&EndTime"
SEPARATOR = "&"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


def parse_line(text: str) -> Tuple[str, str, float, float]:
    """(category, video ID, start s, end s) of an annotation line; ValueError if malformed or empty."""
    fields = [field.strip() for field in text.split(SEPARATOR)]
    if len(fields) != len(HEADER.split(SEPARATOR)) or not all(fields[:2]):
        raise ValueError(f"expected '{HEADER}', got {text!r}")
    category, video_id, _, start, end = fields
    return (category, video_id) + common.span(start, end)


def _make(text: str, split: str, videos: Dict[str, str], root: str):
    if text == HEADER:
        return None
    category, video_id, start, end = parse_line(text)
    found = common.clip_or_source(videos, None, video_id, start, end)
    if found is None:
        raise common.Skip(f"{VIDEO_FOLDER}/{video_id}.mp4", f"not found under {VIDEO_FOLDER}/")
    return common.entry(root, found[0], category, split, *found[1:])


def read(root: str):
    """(entries, problems) of the AVE copy at `root`."""
    videos = common.index_videos(root, VIDEO_FOLDER, key=common.stem)
    rows = common.Rows("ave")
    for split, file_name in SPLIT_FILES.items():
        path = common.annotation_path(root, file_name)
        rows.add(file_name, common.text_lines(path), functools.partial(_make, split=split, videos=videos, root=root))
    return rows.result()
