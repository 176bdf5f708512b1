"""Loading a run: a model from before frames became uint8 is refused with a message that says why."""

import keras
import pytest

from videofusion import config as config_lib, names, workdir


def test_a_run_whose_model_takes_float_frames_is_refused(tmp_path):
    frames = keras.Input((4, 16, 16, 3), name=names.FRAMES)  # float32: the pre-0.2 input
    outputs = {names.CLASSES: keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(frames))}
    keras.Model({names.FRAMES: frames}, outputs).save(str(tmp_path / "model.keras"))
    config_lib.save_run_config(config_lib.base_config(), str(tmp_path))
    (tmp_path / "labels.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="model.keras takes float frames.*train it again"):
        workdir.load_run(str(tmp_path))
