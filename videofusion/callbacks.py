"""The Keras callbacks of `videofusion train`: logs, checkpoints, early stopping and the NaN guard.

- TensorBoard logs in `WORKDIR/tensorboard`: Keras's callback (loss, accuracy, learning rate) and the
  dashboards of `dashboards.py` (clips/s, confusion matrix, sample clips, hparams, the config);
- `checkpoints/last.keras` after every epoch and `checkpoints/best.keras` whenever the validation
  accuracy is the best so far;
- early stopping on the validation accuracy when `train.early_stopping_patience` > 0;
- `StopOnNaN`: stops at the first step whose loss is not finite, and makes `train` fail with what to try.

Example:

>>> from videofusion.config import base_config
>>> guard = StopOnNaN(base_config().train)
>>> guard.raise_if_stopped()  # nothing happened: no error
"""

import math
import os

import keras
from absl import logging

from videofusion import dashboards, names, prepared_data
from videofusion import workdir as workdir_lib

LAST_CHECKPOINT, BEST_CHECKPOINT = "last.keras", "best.keras"


def validation_accuracy_key(model: keras.Model) -> str:
    """The name Keras logs the fused head's validation accuracy under (prefixed by the output's name
    when the model also has auxiliary heads)."""
    return "val_accuracy" if len(model.output) == 1 else f"val_{names.CLASSES}_accuracy"


class StopOnNaN(keras.callbacks.Callback):
    """Stops training when the loss becomes NaN or infinite; `raise_if_stopped` then raises with advice."""

    def __init__(self, train_cfg):
        super().__init__()
        self._train_cfg = train_cfg
        self._message = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        cfg = self._train_cfg
        self._message = (
            f"the training loss became {float(loss)} at step {batch + 1} of an epoch; stopped. Try a lower "
            f"train.learning_rate (now {cfg.learning_rate}), a longer train.warmup_epochs (now "
            f"{cfg.warmup_epochs}), train.gradient_clip_norm=1.0 (now {cfg.gradient_clip_norm}), "
            f"train.precision=float32 (now {cfg.precision}), and check the data for silent or blank "
            "clips (`videofusion info` on the data folder)"
        )
        logging.error("%s", self._message)
        self.model.stop_training = True

    def raise_if_stopped(self) -> None:
        """Raises `FloatingPointError` if this guard stopped the training."""
        if self._message:
            raise FloatingPointError(self._message)


def training_callbacks(config, paths: workdir_lib.RunPaths, model: keras.Model, has_validation: bool):
    """The callbacks of one `fit` of the run `config` describes (the NaN guard and the backup are added
    by `train`)."""
    os.makedirs(paths.checkpoints, exist_ok=True)
    train_clips = prepared_data.read_dataset_info(config.data.dir)[prepared_data.COUNTS]["train"]
    monitor = validation_accuracy_key(model)
    callbacks = [
        dashboards.Throughput(train_clips),  # before TensorBoard, which then logs the clips/s it adds
        keras.callbacks.TensorBoard(paths.tensorboard),
        dashboards.Dashboards(config, paths.workdir, accuracy_key=monitor),
        keras.callbacks.ModelCheckpoint(os.path.join(paths.checkpoints, LAST_CHECKPOINT)),
    ]
    if has_validation:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            os.path.join(paths.checkpoints, BEST_CHECKPOINT), monitor=monitor, mode="max", save_best_only=True
        ))
        if config.train.early_stopping_patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=config.train.early_stopping_patience, verbose=1
            ))
    return callbacks
