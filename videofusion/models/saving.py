"""Loading a finished run: its config, labels and Keras model (`run_folder.RunPaths`).

The model file holds videofusion's own layers; they are registered with Keras when this package is
imported, which is why loading lives here and not in `run_folder`.

Example:

>>> config, labels, model = load_run("runs/demo")  # doctest: +SKIP
>>> sorted(model.output)  # doctest: +SKIP
['aux_audio', 'aux_video', 'classes']
"""

import os
from typing import List, Tuple

import keras
import ml_collections

from videofusion import config as config_lib
from videofusion import run_folder
from videofusion.contract import tensors


def load_run(workdir: str) -> Tuple[ml_collections.ConfigDict, List[str], keras.Model]:
    """(config, labels, model) of the finished run in `workdir`; raises `FileNotFoundError` if it has no model."""
    paths = run_folder.RunPaths(workdir)
    if not os.path.isfile(paths.model):
        raise FileNotFoundError(f"{paths.model} not found: train first (`videofusion train --workdir {workdir}`)")
    config = config_lib.load_run_config(workdir)
    model = keras.models.load_model(paths.model)
    frames = model.input.get(tensors.FRAMES) if isinstance(model.input, dict) else None
    if frames is not None and frames.dtype != "uint8":
        raise ValueError(
            f"{paths.model} takes float frames: it was trained by a videofusion older than 0.2, whose "
            "pipeline resized frames itself; train it again (the model now takes uint8 frames)"
        )
    return config, run_folder.load_labels(workdir), model
