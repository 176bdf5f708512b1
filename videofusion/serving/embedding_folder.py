"""The embeddings folder: what `videofusion embed` writes and `videofusion search` reads.

Layout of the folder (`--output` of `embed`, `--index` of `search`):

- `embeddings.json`: the model (path, kind, version), the spaces and their dimensions, the parts in row
  order, the number of rows and of skipped inputs, what was embedded;
- `part-NNNNN.jsonl`: one line per video, in row order: `id`, `path`, `label` (null when unknown),
  `split` (null unless the input said), `clips` (the records its vector averages);
- `part-NNNNN.<space>.npy`: float32 `[rows, dim]`; row i is line i of the part's `.jsonl`;
- `errors.jsonl`: one line per input that was skipped: `path`, `reason`;
- `.embed/part-NNNNN.json`: a complete part's fingerprint, rows and errors; `embed` run again skips the
  parts whose fingerprint is unchanged.

NumPy files and JSON lines rather than Parquet: nothing to install beyond NumPy (pyarrow is 100 MB, and
no part of videofusion needs it otherwise), `np.load(mmap_mode="r")` maps a part's matrix without a copy,
and pandas reads the rows as they are (`pd.read_json(part, lines=True)`). Every file is written under a
temporary name and renamed, and a part's state file last, so a killed run leaves no part that looks done.

Example:

>>> folder = EmbeddingFolder("embeddings/demo")  # doctest: +SKIP
>>> folder.rows[0]["id"], folder.vectors("fused").shape  # doctest: +SKIP
('videos/00000_cross-left-high.mp4', (720, 128))
"""

import io
import json
import os
from typing import Dict, List, Optional

import numpy as np

from videofusion import fileio

SUMMARY_FILE = "embeddings.json"
ERRORS_FILE = "errors.jsonl"
STATE_DIR = ".embed"
FORMAT_VERSION = 1
DEFAULT_VIDEOS_PER_PART = 256  # videos of a manifest, class folders or a file list per part (`embed`)


def part_name(index: int) -> str:
    """The name of part `index`.

    >>> part_name(3)
    'part-00003'
    """
    return f"part-{index:05d}"


def rows_path(folder: str, part: str) -> str:
    return os.path.join(folder, f"{part}.jsonl")


def vectors_path(folder: str, part: str, space: str) -> str:
    return os.path.join(folder, f"{part}.{space}.npy")


def state_path(folder: str, part: str) -> str:
    return os.path.join(folder, STATE_DIR, f"{part}.json")


def part_state(folder: str, part: str) -> Optional[dict]:
    """The state of a complete part (`write_part`'s `state`), or None if it is not complete."""
    path = state_path(folder, part)
    return fileio.read_json(path) if fileio.isfile(path) else None


def write_part(folder: str, part: str, rows: List[dict], vectors: Dict[str, np.ndarray], state: dict) -> None:
    """Writes a part's rows and vectors (each file atomically), then its state file, which marks it complete."""
    for space, matrix in vectors.items():
        if len(matrix) != len(rows):
            raise ValueError(f"{part}: {len(rows)} rows but {len(matrix)} {space} vectors")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(matrix, np.float32))
        with fileio.atomic_open(vectors_path(folder, part, space), "wb") as f:
            f.write(buffer.getvalue())
    with fileio.atomic_open(rows_path(folder, part), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    fileio.write_json(state_path(folder, part), {**state, "rows": len(rows)})


def remove_part(folder: str, part: str, spaces) -> None:
    """Removes a part's files (its state first), those that exist."""
    for path in [state_path(folder, part), rows_path(folder, part)] + [vectors_path(folder, part, s) for s in spaces]:
        if fileio.exists(path):
            fileio.remove(path)


class EmbeddingFolder:
    """A finished embeddings folder, read: its summary, its rows and, per space, its vectors."""

    def __init__(self, folder: str):
        summary_path = os.path.join(folder, SUMMARY_FILE)
        if not fileio.isfile(summary_path):
            raise FileNotFoundError(f"{summary_path} not found: is {folder} the --output of `videofusion embed` "
                                    "(and did it finish)?")
        self.folder = folder
        self.summary = fileio.read_json(summary_path)
        self.parts = [part["name"] for part in self.summary["parts"]]
        self.rows: List[dict] = []
        for part in self.parts:
            with fileio.open_file(rows_path(folder, part), encoding="utf-8") as f:
                self.rows.extend(json.loads(line) for line in f if line.strip())
        self._vectors: Dict[str, np.ndarray] = {}

    @property
    def spaces(self) -> Dict[str, int]:
        """{space: dimension}."""
        return dict(self.summary["spaces"])

    @property
    def model(self) -> dict:
        """The model that made the vectors (`embedders.ModelInfo`'s fields)."""
        return dict(self.summary["model"])

    def vectors(self, space: str) -> np.ndarray:
        """float32 `[rows, dim]` of `space`, the parts' matrices in row order."""
        if space not in self.spaces:
            raise ValueError(f"{self.folder} has no space {space!r}; it has {', '.join(self.spaces)}")
        if space not in self._vectors:
            matrices = [np.load(vectors_path(self.folder, part, space), mmap_mode="r") for part in self.parts]
            dim = self.spaces[space]
            self._vectors[space] = (np.concatenate(matrices) if matrices else np.zeros((0, dim), np.float32))
        return self._vectors[space]

    def find(self, clip_id: str) -> int:
        """The row of `clip_id`: an exact id, else the one row whose id ends with `/clip_id` or whose file
        name is `clip_id`; raises `KeyError` saying why none or several match."""
        exact = [i for i, row in enumerate(self.rows) if row["id"] == clip_id]
        if exact:
            return exact[0]
        matches = [i for i, row in enumerate(self.rows)
                   if row["id"].endswith("/" + clip_id) or os.path.basename(row["id"]) == clip_id]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(f"no video of {self.folder} has the id {clip_id!r} (ids are as in its part-*.jsonl)")
        raise KeyError(f"{len(matches)} videos of {self.folder} match {clip_id!r} "
                       f"({', '.join(self.rows[i]['id'] for i in matches[:3])}, …): give the whole id")
