"""Loading a finished run (`models.saving.load_run`): its config, labels and model, or an error that says what
to do."""

import os
import re

import keras
import pytest

from videofusion import config as config_lib
from videofusion import run_folder
from videofusion.contract import tensors
from videofusion.models import saving


def write_run(workdir, frames_dtype):
    """A run folder as `train` leaves it: config.json, labels.txt and a (tiny) model.keras."""
    os.makedirs(workdir)
    config = config_lib.base_config()
    config.model.video_encoder = "frame_avg"
    config_lib.save_run_config(config, str(workdir))
    with open(run_folder.RunPaths(str(workdir)).labels, "w", encoding="utf-8") as f:
        f.write("left\nright\n")
    frames = keras.Input((2, 4, 4, 3), dtype=frames_dtype, name=tensors.FRAMES)
    pixels = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(frames))
    classes = keras.layers.Dense(2, activation="softmax", name=tensors.CLASSES)(pixels)
    keras.Model({tensors.FRAMES: frames}, {tensors.CLASSES: classes}).save(run_folder.RunPaths(str(workdir)).model)
    return str(workdir)


def test_load_run_gives_the_config_labels_and_model(tmp_path):
    config, labels, model = saving.load_run(write_run(tmp_path / "run", "uint8"))
    assert config.model.video_encoder == "frame_avg"
    assert config.model.fusion == config_lib.base_config().model.fusion  # the other fields as trained
    assert labels == ["left", "right"]
    assert model.input[tensors.FRAMES].dtype == "uint8" and model.output[tensors.CLASSES].shape == (None, 2)


def test_a_run_without_a_model_is_named_with_what_to_do(tmp_path):
    workdir = str(tmp_path / "unfinished")
    os.makedirs(workdir)
    missing = os.path.join(workdir, "model.keras")
    expected = f"{missing} not found: train first (`videofusion train --workdir {workdir}`)"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        saving.load_run(workdir)


def test_a_model_that_takes_float_frames_is_refused(tmp_path):
    workdir = write_run(tmp_path / "old", "float32")
    with pytest.raises(ValueError, match="model.keras takes float frames: .* train it again"):
        saving.load_run(workdir)
