"""The Keras callbacks of `videofusion train`: logs, checkpoints, early stopping and the NaN guard.

- TensorBoard logs in `WORKDIR/tensorboard`: Keras's callback (loss, accuracy, learning rate) and the
  dashboards of `dashboards.py` (clips/s, confusion matrix, sample clips, hparams, the config);
- `checkpoints/last.keras` after every epoch and `checkpoints/best.keras` whenever the validation
  accuracy is the best so far;
- early stopping on the validation accuracy when `train.early_stopping_patience` > 0;
- `StopOnNaN`: stops at the first step whose loss is not finite, and makes `train` fail with what to try;
- `Backup`: what an interrupted fit resumes from, saved after every epoch (in `WORKDIR/backup`).

Example:

>>> from videofusion.config import base_config
>>> guard = StopOnNaN(base_config().train)
>>> guard.raise_if_stopped()  # nothing happened: no error
"""

import math
import os
import re
import shutil
from typing import List, Optional

import keras
import numpy as np
from absl import logging

from videofusion import fileio, run_folder
from videofusion.contract import prepared_folder, tensors
from videofusion.training import dashboards

LAST_CHECKPOINT, BEST_CHECKPOINT = "last.keras", "best.keras"
_BACKUP_WEIGHTS, _BACKUP_STATE = "state.weights.h5", "state.json"
_BACKUP_FOLDER = re.compile(r"epoch_(\d+)")


def validation_accuracy_key(model: keras.Model) -> str:
    """The name Keras logs the fused head's validation accuracy under (prefixed by the output's name
    when the model also has auxiliary heads)."""
    return "val_accuracy" if len(model.output) == 1 else f"val_{tensors.CLASSES}_accuracy"


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


class Backup(keras.callbacks.Callback):
    """Saves what an interrupted fit resumes from at the end of every epoch into `folder`; `restore` loads it.

    A saved state is the weights with the optimizer's (`save_weights`: its moments and step count, and so
    the learning rate schedule's position), the model's other variables, which `save_weights` leaves
    out (the states of its random-number generators: Keras `SeedGenerator`s of dropout, modality dropout
    and the frame augmentation), and the number of epochs done. Together with an input pipeline fixed
    by (seed, epoch) (`pipeline.training_epochs`), a resumed fit then goes on exactly as an
    uninterrupted one would have. Each state is a folder `epoch_<epochs done>`, written under a
    temporary name and renamed when complete, the older ones removed after: a kill at any moment
    leaves a whole state, the previous or the new one. An epoch whose loss is not finite (the NaN guard
    stopped it) is not saved, so that a rerun with what the guard advises starts from finite weights.
    """

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def restore(self, model: keras.Model) -> Optional[int]:
        """Loads the newest saved state into `model` (compiled, built); returns its epochs done (the
        epoch to go on with), or None when there is none."""
        saved = [int(match.group(1)) for match in map(_BACKUP_FOLDER.fullmatch, _listdir(self.folder)) if match]
        if not saved:
            return None
        path = os.path.join(self.folder, f"epoch_{max(saved)}")
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(path, _BACKUP_WEIGHTS))
        state = fileio.read_json(os.path.join(path, _BACKUP_STATE))
        variables = _variables_weights_leave_out(model)
        if len(state["random_states"]) != len(variables):
            raise ValueError(
                f"{path} holds {len(state['random_states'])} random-generator states, the model has "
                f"{len(variables)}: it was saved by another model; remove {self.folder} to train this phase anew"
            )
        for variable, value in zip(variables, state["random_states"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        logging.info("Resuming from %s: %d epoch(s) done", path, state["epochs_done"])
        return state["epochs_done"]

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            logging.warning("Epoch %d's loss is not finite: not backed up", epoch + 1)
            return
        name = f"epoch_{epoch + 1}"
        path = os.path.join(self.folder, name)
        tmp = fileio.temp_name(path)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        self.model.save_weights(os.path.join(tmp, _BACKUP_WEIGHTS))
        fileio.write_json(os.path.join(tmp, _BACKUP_STATE), {
            "epochs_done": epoch + 1,
            "random_states": [keras.ops.convert_to_numpy(v).tolist() for v in _variables_weights_leave_out(self.model)],
        })
        os.replace(tmp, path)
        for other in _listdir(self.folder):  # older states, and temporary folders a kill left
            if other != name:
                shutil.rmtree(os.path.join(self.folder, other), ignore_errors=True)


def _listdir(folder: str) -> List[str]:
    return os.listdir(folder) if os.path.isdir(folder) else []


def _variables_weights_leave_out(model: keras.Model) -> list:
    """The model's variables that `save_weights` does not save: its random-number generators' states."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def training_callbacks(config, paths: run_folder.RunPaths, model: keras.Model, has_validation: bool):
    """The callbacks of one `fit` of the run `config` describes (the NaN guard and the backup are added
    by `train`)."""
    os.makedirs(paths.checkpoints, exist_ok=True)
    train_clips = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.COUNTS]["train"]
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
