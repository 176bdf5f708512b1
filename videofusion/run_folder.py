"""The files of a training run's workdir (the run folder), where training writes and later stages read.

Layout of `runs/NAME/`: `config.json` (the resolved config), `labels.txt`, `model.keras` (the final
model), `checkpoints/last.keras` (saved after every epoch), `backup/` (for resuming an interrupted fit) and
`tensorboard/` (logs for `make tensorboard`). Later stages load the model with `models.load_run`.

Example:

>>> paths = RunPaths("runs/demo")
>>> paths.model
'runs/demo/model.keras'
"""

import os
import shutil
from typing import List

from videofusion import fileio
from videofusion.contract import prepared_folder


class RunPaths:
    """Paths inside one workdir."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.model = os.path.join(workdir, "model.keras")
        self.labels = os.path.join(workdir, prepared_folder.LABELS_FILE)
        self.checkpoints = os.path.join(workdir, "checkpoints")
        self.backup = os.path.join(workdir, "backup")
        self.tensorboard = os.path.join(workdir, "tensorboard")


def save_labels(data_dir: str, workdir: str) -> None:
    """Copies the prepared data's `labels.txt` (`data_dir` may be a URL: `fileio`) into the run."""
    os.makedirs(workdir, exist_ok=True)
    with fileio.open_file(os.path.join(data_dir, prepared_folder.LABELS_FILE), "rb") as source:
        with open(RunPaths(workdir).labels, "wb") as target:
            shutil.copyfileobj(source, target)


def load_labels(workdir: str) -> List[str]:
    """The class names of a run, index = position."""
    return prepared_folder.read_labels(RunPaths(workdir).labels)
