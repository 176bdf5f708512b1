"""Loading a run: a model from before frames became uint8 is refused with a message that says why."""

import keras
import pytest

from videofusion import config as config_lib
from videofusion import models
from videofusion.contract import tensors


def test_a_run_whose_model_takes_float_frames_is_refused(tmp_path):
    frames = keras.Input((4, 16, 16, 3), name=tensors.FRAMES)  # float32: the pre-0.2 input
    outputs = {tensors.CLASSES: keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(frames))}
    keras.Model({tensors.FRAMES: frames}, outputs).save(str(tmp_path / "model.keras"))
    config_lib.save_run_config(config_lib.base_config(), str(tmp_path))
    (tmp_path / "labels.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="model.keras takes float frames.*train it again"):
        models.load_run(str(tmp_path))


def test_a_run_keeps_its_log_mel_parameters(tmp_path):
    """The log-mel settings a run trained with come back from its config.json, not from today's defaults."""
    from videofusion.data.transforms import ClipSpec

    config = config_lib.base_config()
    config.data.update(dict(fps=10.0, sample_rate=16000, mel_window_ms=32.0, mel_hop_ms=20.0, mel_fmin_hz=125.0,
                            mel_fmax_hz=4000.0))
    config_lib.save_run_config(config, str(tmp_path))
    spec = ClipSpec.from_config(config_lib.load_run_config(str(tmp_path)).data)
    assert (spec.mel_window_ms, spec.mel_hop_ms, spec.mel_fmin_hz, spec.mel_fmax_hz) == (32.0, 20.0, 125.0, 4000.0)
    assert spec.mel_frames == 1 + (spec.audio_samples - 512) // 320
