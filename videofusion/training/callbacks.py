"""The Keras callbacks of `videofusion train`: logs, checkpoints, early stopping and the NaN guard.

- TensorBoard logs in `WORKDIR/tensorboard`: Keras's callback (loss, accuracy, learning rate) and the
  dashboards of `dashboards.py` (clips/s, confusion matrix, sample clips, hparams, the config);
- `Checkpoints`: `checkpoints/last.keras` after every epoch and `checkpoints/best.keras` whenever the
  validation accuracy is the best so far, a copy of it (the model is serialised once an epoch);
- early stopping on the validation accuracy when `train.early_stopping_patience` > 0;
- `StopOnNaN`: stops at the first step whose loss is not finite, and makes `train` fail with what to try;
- `Backup`: what an interrupted fit resumes from, saved after every epoch (in `WORKDIR/backup`).

Each file is written under a temporary name and renamed: a kill leaves the previous one whole. Their
cost at the end of an epoch is what `benchmarks/bench_train.py` reports as `train_epoch_extra_s`.

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
from videofusion.contract import tensors
from videofusion.training import dashboards

LAST_CHECKPOINT, BEST_CHECKPOINT = "last.keras", "best.keras"
_BACKUP_VARIABLES, _BACKUP_STATE = "variables.npz", "state.json"
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


class Checkpoints(keras.callbacks.Callback):
    """Saves the model as `folder/last.keras` after every epoch and copies it to `folder/best.keras`
    whenever the epoch's `monitor` (if given) is the highest so far in this `fit`; both written under a
    temporary name and renamed, so a kill never leaves half a file. One serialisation an epoch (Keras's
    `ModelCheckpoint`, once per file, took twice the time whenever the model improved).
    """

    def __init__(self, folder: str, monitor: Optional[str] = None):
        super().__init__()
        self.last = os.path.join(folder, LAST_CHECKPOINT)
        self.best = os.path.join(folder, BEST_CHECKPOINT)
        self._monitor = monitor
        self._best_value = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        with fileio.atomic_path(self.last) as tmp:
            self.model.save(tmp)
        value = (logs or {}).get(self._monitor) if self._monitor else None
        if value is not None and float(value) > self._best_value:
            self._best_value = float(value)
            with fileio.atomic_path(self.best) as tmp:
                fileio.copy(self.last, tmp)


class Backup(keras.callbacks.Callback):
    """Saves what an interrupted fit resumes from at the end of every epoch into `folder`; `restore` loads it.

    A saved state is the value of every variable the fit changes — the model's weights, its other
    variables (the states of its random-number generators: Keras `SeedGenerator`s of dropout, modality
    dropout and the frame and audio augmentation) and the optimizer's (its moments and step count, and
    so the learning rate schedule's position) — in one NumPy archive, in order, and the number of epochs
    done.
    Together with an input pipeline fixed by (seed, epoch) (`pipeline.training_epochs`), a resumed fit
    then goes on exactly as an uninterrupted one would have. (An archive of arrays rather than Keras's
    `save_weights`: that took 0.5 s an epoch for the demo model's 600 variables, this 0.05 s.) Each state
    is a folder `epoch_<epochs done>`, written under a temporary name and renamed when complete, the
    older ones removed after: a kill at any moment leaves a whole state, the previous or the new one. An
    epoch whose loss is not finite (the NaN guard stopped it) is not saved, so that a rerun with what
    the guard advises starts from finite weights.
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
        variables = _backed_up_variables(model)
        if not os.path.isfile(os.path.join(path, _BACKUP_VARIABLES)):
            raise ValueError(f"{path} was saved by a videofusion older than 0.3 (no {_BACKUP_VARIABLES}): remove "
                             f"{self.folder} to train this phase anew")
        with np.load(os.path.join(path, _BACKUP_VARIABLES)) as archive:
            values = [archive[f"v{i}"] for i in range(len(archive.files))]
        shapes = [tuple(variable.shape) for variable in variables]
        if [value.shape for value in values] != shapes:
            raise ValueError(
                f"{path} holds {len(values)} variables that do not match the model's {len(variables)} (count or "
                f"shapes): it was saved by another model; remove {self.folder} to train this phase anew"
            )
        for variable, value in zip(variables, values):
            variable.assign(value)
        state = fileio.read_json(os.path.join(path, _BACKUP_STATE))
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
        values = [keras.ops.convert_to_numpy(variable) for variable in _backed_up_variables(self.model)]
        np.savez(os.path.join(tmp, _BACKUP_VARIABLES), **{f"v{i}": value for i, value in enumerate(values)})
        fileio.write_json(os.path.join(tmp, _BACKUP_STATE), {"epochs_done": epoch + 1})
        os.replace(tmp, path)
        for other in _listdir(self.folder):  # older states, and temporary folders a kill left
            if other != name:
                shutil.rmtree(os.path.join(self.folder, other), ignore_errors=True)


def _listdir(folder: str) -> List[str]:
    return os.listdir(folder) if os.path.isdir(folder) else []


def _backed_up_variables(model: keras.Model) -> list:
    """The model's weights, its other variables (random-number generators' states), the optimizer's."""
    weights = {id(weight) for weight in model.weights}
    others = [variable for variable in model.variables if id(variable) not in weights]
    optimizer = list(model.optimizer.variables) if model.optimizer is not None else []
    return [*model.weights, *others, *optimizer]


def training_callbacks(config, paths: run_folder.RunPaths, model: keras.Model, train_clips: int,
                       has_validation: bool):
    """The callbacks of one `fit` of the run `config` describes, whose epochs pass over `train_clips`
    clips (the NaN guard and the backup are added by `train`)."""
    os.makedirs(paths.checkpoints, exist_ok=True)
    monitor = validation_accuracy_key(model)
    callbacks = [
        dashboards.Throughput(train_clips),  # before TensorBoard, which then logs the clips/s it adds
        keras.callbacks.TensorBoard(paths.tensorboard),
        dashboards.Dashboards(config, paths.workdir, accuracy_key=monitor),
        Checkpoints(paths.checkpoints, monitor=monitor if has_validation else None),
    ]
    if has_validation:
        if config.train.early_stopping_patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=config.train.early_stopping_patience, verbose=1
            ))
    return callbacks
