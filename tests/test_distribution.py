"""Distributed training (videofusion/training/strategy.py): what `train.strategy=auto` picks, how the
input is sharded between workers, and the smoke config trained for real under MirroredStrategy (two
logical CPU devices) and MultiWorkerMirroredStrategy (two worker processes on 127.0.0.1), each in fresh
processes so that this one's TensorFlow runtime is left as it was."""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf
from conftest import free_ports
from tensorflow.python.distribute import input_lib

from videofusion import config as config_lib
from videofusion.contract import prepared_folder
from videofusion.data import pipeline
from videofusion.training import strategy, train

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


class _TwoWorkers(strategy.Distribution):
    """The distribution of one of two MultiWorkerMirroredStrategy workers (one replica each), as far as
    `train` builds the input for it: global batches of 2 × `train.batch_size`, the DATA shard policy."""

    replicas = 2


def _worker_epochs(demo_records, worker: int, epochs: int, run_dir: str) -> list:
    """The labels of the clips that `worker` (of 2) trains on in each of the first `epochs`: the input
    `train.fit` gives Keras (`_datasets(...).train(0)`, `pipeline.training_epochs`) distributed the way
    MultiWorkerMirroredStrategy's `experimental_distribute_dataset` does it on that worker (its
    `InputContext`: rebatched to the replicas' batches, then auto-sharded)."""
    config = config_lib.demo_config("smoke")
    config.data.dir = demo_records
    config = train.resolve_data_config(config)
    options = pipeline.PipelineOptions.from_config(config)
    data = train._datasets(config, options, _TwoWorkers(tf.distribute.get_strategy()), labels=[], run_dir=run_dir)
    device = "/job:localhost/replica:0/task:0/device:CPU:0"
    distributed = input_lib.DistributedDataset(
        input_lib.InputWorkers([(device, [device])]), tf.distribute.OneDeviceStrategy(device), data.train(0),
        num_replicas_in_sync=2, input_context=tf.distribute.InputContext(2, worker, 2))
    (local,) = distributed._cloned_datasets  # what this worker's one replica is fed, batch by batch
    batches = [labels.tolist() for _, labels in local.take(epochs * data.steps_per_epoch).as_numpy_iterator()]
    steps = data.steps_per_epoch
    return [sum(batches[e * steps:(e + 1) * steps], []) for e in range(epochs)]


def test_workers_share_each_training_epoch_between_them(demo_records, tmp_path):
    """Every clip of an epoch reaches exactly one of the two workers, in the first epoch and the next
    (each a new shuffle): the workers read the same seeded order and keep disjoint parts of it. The
    demo's 12 training clips are one per class, so a clip's label names it."""
    counts = prepared_folder.read_dataset_info(demo_records)[prepared_folder.LABEL_COUNTS]["train"]
    assert sorted(counts.values()) == [1] * 12
    worker_0, worker_1 = (_worker_epochs(demo_records, worker, 2, str(tmp_path)) for worker in (0, 1))
    for epoch in range(2):
        assert len(worker_0[epoch]) == len(worker_1[epoch]) == 6  # 4 + 2 each: global batches of 8, then 4
        assert not set(worker_0[epoch]) & set(worker_1[epoch]), f"epoch {epoch}: a clip reached both workers"
        assert sorted(worker_0[epoch] + worker_1[epoch]) == list(range(12)), f"epoch {epoch}"
    assert worker_0[0] != worker_0[1]  # another order in the next epoch


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
    from videofusion import config as config_lib
    from videofusion.training import train
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


# An audio-visual model with half the default's tracing time (no LSTM, no attention).
LIGHT_MODEL = ("--config.model.video_encoder=frame_avg", "--config.model.fusion=concat")


@pytest.mark.slow
def test_two_worker_processes_train_the_smoke_config_to_equal_weights(demo_records, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
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
