"""Distributed training (videofusion/strategy.py): what `train.strategy=auto` picks, how the input is
sharded between workers, and the smoke config trained for real under MirroredStrategy (two logical CPU
devices) and MultiWorkerMirroredStrategy (two worker processes on 127.0.0.1), each in fresh processes so
that this one's TensorFlow runtime is left as it was."""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf
from tensorflow.python.distribute import input_ops

from videofusion import config as config_lib
from videofusion import pipeline, strategy, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKSUM = re.compile(r"final trainable weights: sha256 ([0-9a-f]{64})")


@pytest.mark.parametrize("name, gpus, workers, tpu, expected", [
    ("auto", 0, 0, False, "default"),
    ("auto", 1, 1, False, "default"),
    ("auto", 2, 0, False, "mirrored"),
    ("auto", 2, 3, False, "multi_worker"),
    ("auto", 8, 2, True, "tpu"),
    ("mirrored", 0, 0, False, "mirrored"),
])
def test_auto_resolves_from_what_the_process_reaches(name, gpus, workers, tpu, expected):
    assert strategy.resolve_strategy_name(name, num_gpus=gpus, num_workers=workers, tpu=tpu) == expected


def test_tf_config_workers_counts_chief_and_workers():
    cluster = {"chief": ["h:1"], "worker": ["h:2", "h:3"], "ps": ["h:4"]}
    assert strategy.tf_config_workers(json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})) == 3
    assert strategy.tf_config_workers(None) == 0
    with pytest.raises(ValueError, match="TF_CONFIG"):
        strategy.tf_config_workers("not json")
    with pytest.raises(ValueError, match="train.strategy='gpu'"):
        strategy.resolve_strategy_name("gpu", 0, 0, False)


def _clip_ids(dataset):
    """One id per clip (its label and a hash of its pixels), in order."""
    return [(int(label), hash(features["frames"].tobytes()))
            for features, label in dataset.unbatch().as_numpy_iterator()]


def test_workers_share_the_training_clips_between_them(demo_records):
    """What MultiWorkerMirroredStrategy does to the input (the auto-shard rewrite, worker by worker):
    every clip of the unsharded epoch reaches exactly one worker, whichever the shards."""
    config = config_lib.demo_config("smoke")
    config.data.dir = demo_records
    options = pipeline.PipelineOptions.from_config(train.resolve_data_config(config))
    distribution = strategy.Distribution(tf.distribute.get_strategy())

    def epoch(worker=None):
        dataset = distribution.prepare_dataset(
            pipeline.make_dataset(demo_records, "train", options, 1, training=True, seed=0))
        return _clip_ids(dataset if worker is None else input_ops.auto_shard_dataset(dataset, 2, worker, 2))

    whole = epoch()
    assert len(whole) == 12 and len(set(whole)) == 12
    assert [epoch(0), epoch(1)] == [whole[0::2], whole[1::2]]


def test_jax_batches_split_evenly_over_the_devices():
    dataset = tf.data.Dataset.range(13).batch(8)
    trimmed = strategy.Distribution(jax_devices=2).prepare_dataset(dataset)
    assert [batch.tolist() for batch in trimmed.as_numpy_iterator()] == [list(range(8)), [8, 9, 10, 11]]
    ones = strategy.Distribution(jax_devices=2).prepare_dataset(tf.data.Dataset.range(9).batch(8))
    assert [len(batch) for batch in ones.as_numpy_iterator()] == [8]


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    from absl import logging
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from videofusion import config as config_lib, train
    logging.set_verbosity(logging.INFO)
    config = config_lib.demo_config("smoke")
    config.data.dir, config.train.strategy = sys.argv[1], "mirrored"
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    train.train(config, sys.argv[2])
    """
)


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpu_devices_trains_the_smoke_config(demo_records, tmp_path):
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, demo_records, str(tmp_path / "run")],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "MirroredStrategy with 2 replica(s)" in result.stderr
    assert "global batch 8 (2 replica(s))" in result.stderr  # smoke: 4 per replica
    assert CHECKSUM.search(result.stderr) and os.path.isfile(tmp_path / "run" / "model.keras")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# An audio-visual model with half the default's tracing time (no LSTM, no attention).
LIGHT_MODEL = ("--config.model.video_encoder=frame_avg", "--config.model.fusion=concat")


@pytest.mark.slow
def test_two_worker_processes_train_the_smoke_config_to_equal_weights(demo_records, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    command = [sys.executable, "-m", "videofusion.cli", "train", "--config",
               os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", "run",
               f"--config.data.dir={demo_records}", *LIGHT_MODEL]
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, PYTHONPATH=REPO, TF_CONFIG=tf_config, CUDA_VISIBLE_DEVICES="")
        log = open(tmp_path / f"worker{index}.log", "w+")
        workers.append((subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    logs = []
    for process, log in workers:
        try:
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        log.seek(0)
        logs.append(log.read())
        assert process.returncode == 0, logs[-1][-4000:]

    assert all("MultiWorkerMirroredStrategy with 2 replica(s)" in log for log in logs)
    assert all("global batch 8 (2 replica(s)): 2 steps per epoch" in log for log in logs)
    chief, worker = [CHECKSUM.findall(log) for log in logs]
    print(f"chief: sha256 {chief}; worker 1: sha256 {worker}")
    assert len(chief) == len(worker) == 1 and chief == worker  # trained in step: identical trainable weights
    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == ["checkpoints", "config.json", "labels.txt", "model.keras", "tensorboard"]
    # The chief's model.keras holds the weights whose checksum its log gives.
    assert train.trainable_weights_checksum(keras.models.load_model(run / "model.keras")) == chief[0]
    assert "workertemp_1" in logs[1] and "workertemp" not in logs[0]  # the worker wrote, then removed, its own
