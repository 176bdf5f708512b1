"""The files of a training run's workdir, and what later stages (evaluate, export) read from them.

Layout of `runs/NAME/`: `config.json` (the resolved config), `labels.txt`, `model.keras` (the final
model), `checkpoints/last.keras` (saved after every epoch), `backup/` (for resuming an interrupted fit) and
`tensorboard/` (logs for `make tensorboard`).

Example:

>>> paths = RunPaths("runs/demo")
>>> paths.model
'runs/demo/model.keras'
"""

import os
import shutil
from typing import List

import keras

from videofusion import config as config_lib
from videofusion import models  # noqa: F401  (registers the custom layers that loading needs)
from videofusion import fileio, names, prepared_data


class RunPaths:
    """Paths inside one workdir."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.model = os.path.join(workdir, "model.keras")
        self.labels = os.path.join(workdir, prepared_data.LABELS_FILE)
        self.checkpoints = os.path.join(workdir, "checkpoints")
        self.backup = os.path.join(workdir, "backup")
        self.tensorboard = os.path.join(workdir, "tensorboard")


def save_labels(data_dir: str, workdir: str) -> None:
    """Copies the prepared data's `labels.txt` (`data_dir` may be a URL: `fileio`) into the run."""
    os.makedirs(workdir, exist_ok=True)
    with fileio.open_file(os.path.join(data_dir, prepared_data.LABELS_FILE), "rb") as source:
        with open(RunPaths(workdir).labels, "wb") as target:
            shutil.copyfileobj(source, target)


def load_labels(workdir: str) -> List[str]:
    """The class names of a run, index = position."""
    return prepared_data.read_labels(RunPaths(workdir).labels)


def load_run(workdir: str):
    """(config, labels, model) of a finished run."""
    paths = RunPaths(workdir)
    if not os.path.isfile(paths.model):
        raise FileNotFoundError(f"{paths.model} not found: train first (`videofusion train --workdir {workdir}`)")
    config = config_lib.load_run_config(workdir)
    model = keras.models.load_model(paths.model)
    frames = model.input.get(names.FRAMES) if isinstance(model.input, dict) else None
    if frames is not None and frames.dtype != "uint8":
        raise ValueError(
            f"{paths.model} takes float frames: it was trained by a videofusion older than 0.2, whose "
            "pipeline resized frames itself; train it again (the model now takes uint8 frames)"
        )
    return config, load_labels(workdir), model
