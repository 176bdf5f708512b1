"""Resume after a crash: `videofusion train` killed with SIGKILL in the middle of an epoch, then the same
command run again, continues from the last epoch's backup — weights, optimizer state, the position in
the learning-rate schedule and the random generators' states — with the input of the epoch it
resumes at, and ends with bitwise the weights of an uninterrupted run of the same command.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from videofusion import config as config_lib
from videofusion.contract import prepared_folder
from videofusion.models import optimization
from videofusion.run_folder import RunPaths
from videofusion.training import callbacks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 3


def _epoch_lines(stdout: str):
    return [line.strip() for line in stdout.splitlines() if line.startswith("Epoch ")]


def _learning_rates(event_file: str) -> dict:
    """`{epoch index: learning rate}` that Keras's TensorBoard callback wrote into `event_file`."""
    rates = {}
    for record in tf.data.TFRecordDataset(event_file):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            if value.tag == "epoch_learning_rate":
                rates[event.step] = float(tf.make_ndarray(value.tensor))
    return rates


def _train_event_files(paths: RunPaths) -> set:
    folder = os.path.join(paths.tensorboard, "train")
    return {os.path.join(folder, name) for name in os.listdir(folder)} if os.path.isdir(folder) else set()


def _variables(model: keras.Model) -> list:
    """The values of every weight (batch-norm statistics included) and of the optimizer's variables."""
    return [keras.ops.convert_to_numpy(v) for v in [*model.weights, *model.optimizer.variables]]


@pytest.mark.slow
def test_killed_mid_epoch_the_same_command_resumes_and_ends_as_an_uninterrupted_run(demo_records, tmp_path):
    command = [
        sys.executable, "-m", "videofusion.cli", "train",
        "--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke",
        f"--config.data.dir={demo_records}", f"--config.train.epochs={EPOCHS}",
        # Half the CPU time of the smoke model's LSTM and cross-attention, whose tracing dominates; the
        # random layers that resuming must handle (frame augmentation, modality dropout, dropout) are
        # the same. XLA on CPU compiles slower than this tiny model trains.
        "--config.model.video_encoder=frame_avg", "--config.model.fusion=concat", "--config.train.jit_compile=false",
    ]
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    paths = RunPaths(str(tmp_path / "run"))
    backup = os.path.join(paths.backup, f"epochs_0_{EPOCHS}")
    # The uninterrupted run. Not alongside the killed one: two TensorFlow processes on the same cores
    # took longer than one after the other (their thread pools spin while they wait for work).
    reference = subprocess.run([*command, "--workdir", "reference"], cwd=tmp_path, env=env, capture_output=True,
                               text=True)
    assert reference.returncode == 0, reference.stderr[-4000:]
    command += ["--workdir", "run"]

    # Keras prints "Epoch 2/3" when epoch 2 begins, after epoch 1's backup has been written: killed
    # there, the process dies in the middle of epoch 2 (its three steps, validation and dashboards
    # take seconds; the kill follows the line within milliseconds).
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        for line in first.stdout:
            if line.startswith(f"Epoch 2/{EPOCHS}"):
                first.send_signal(signal.SIGKILL)
                break
        first.stdout.close()
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-4000:]
    assert os.listdir(backup) == ["epoch_1"]  # epoch 1 backed up, epoch 2 interrupted
    with open(os.path.join(backup, "epoch_1", "state.json")) as f:
        assert json.load(f)["epochs_done"] == 1
    assert not os.path.exists(paths.model)
    first_events = _train_event_files(paths)

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-4000:]
    assert _epoch_lines(second.stdout) == [f"Epoch {e}/{EPOCHS}" for e in (2, 3)]  # resumed at epoch 2, not 1
    assert os.path.isfile(paths.model) and not os.path.exists(paths.backup)
    assert sorted(os.listdir(paths.checkpoints)) == sorted([callbacks.BEST_CHECKPOINT, callbacks.LAST_CHECKPOINT])

    # The step count and the schedule continue: every epoch ran its steps once, and the learning rate
    # logged at the end of each epoch (TensorBoard's step = epoch index) is the schedule's at that step.
    config = config_lib.load_run_config(paths.workdir)
    train_clips = prepared_folder.read_dataset_info(demo_records)[prepared_folder.COUNTS]["train"]
    steps = optimization.steps_per_epoch(train_clips, config.train.batch_size)
    schedule = optimization.learning_rate_schedule(config.train, steps)
    model = keras.models.load_model(paths.model)
    assert int(model.optimizer.iterations) == EPOCHS * steps
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(EPOCHS * steps)), abs=1e-9)
    expected = {epoch: float(schedule((epoch + 1) * steps)) for epoch in range(EPOCHS)}
    assert len(set(np.round(list(expected.values()), 9))) == EPOCHS  # a schedule that moves: a real check
    (second_file,) = _train_event_files(paths) - first_events
    assert _learning_rates(second_file) == pytest.approx({1: expected[1], 2: expected[2]}, rel=1e-6)
    for killed_file in first_events:  # what the killed process had flushed: epoch 1 at most
        assert _learning_rates(killed_file) in ({}, pytest.approx({0: expected[0]}, rel=1e-6))

    # Bitwise the uninterrupted run's weights and optimizer state.
    reference_values = _variables(keras.models.load_model(os.path.join(tmp_path, "reference", "model.keras")))
    resumed_values = _variables(model)
    assert len(resumed_values) == len(reference_values)
    for resumed_value, reference_value in zip(resumed_values, reference_values):
        np.testing.assert_array_equal(resumed_value, reference_value)
