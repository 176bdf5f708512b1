"""`callbacks.Checkpoints`: `last.keras` every epoch, `best.keras` the copy of the best epoch's, both whole."""

import os

import keras
import numpy as np

from videofusion.training import callbacks


def _model() -> keras.Model:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    return model


def _kernel(path: str) -> np.ndarray:
    return keras.models.load_model(path).layers[-1].get_weights()[0]


def test_best_is_the_best_epochs_model_and_last_the_latest(tmp_path):
    model = _model()
    checkpoints = callbacks.Checkpoints(str(tmp_path), monitor="val_accuracy")
    checkpoints.set_model(model)
    kernels = []
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6, 0.7]):  # best at epoch 1; a tie later is not better
        model.layers[-1].kernel.assign(np.full((3, 2), epoch, np.float32))
        kernels.append(np.full((3, 2), epoch, np.float32))
        checkpoints.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert sorted(os.listdir(tmp_path)) == [callbacks.BEST_CHECKPOINT, callbacks.LAST_CHECKPOINT]  # no temp left
    np.testing.assert_array_equal(_kernel(checkpoints.best), kernels[1])
    np.testing.assert_array_equal(_kernel(checkpoints.last), kernels[3])


def test_without_validation_only_last_is_written(tmp_path):
    model = _model()
    checkpoints = callbacks.Checkpoints(str(tmp_path))
    checkpoints.set_model(model)
    checkpoints.on_epoch_end(0, {"loss": 1.0})
    assert os.listdir(tmp_path) == [callbacks.LAST_CHECKPOINT]
