"""The training input on tf.data service workers: `videofusion data-service dispatcher|worker` as processes on
127.0.0.1 (a dispatcher and two workers), a pass through them against the same pass made here, `videofusion
train` fed by them under the TensorFlow and the JAX backend, and a worker killed with SIGKILL mid-epoch."""

import collections
import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import free_ports
from test_cli import one_line_mistake, videofusion
from test_train_jax import JAX_ENV

from videofusion.config import demo_config
from videofusion.contract import tensors
from videofusion.data import pipeline, service
from videofusion.training import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTENING = "tf.data service {} listening"
SMOKE_RUN = ("--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke",
             "--config.model.video_encoder=frame_avg", "--config.model.fusion=concat",
             "--config.train.validation_dashboards=False")
CHECKSUM = re.compile(r"final trainable weights: sha256 ([0-9a-f]{64})")


class Cluster:
    """A dispatcher and workers, each a `videofusion data-service` process on 127.0.0.1, logging to `folder`."""

    def __init__(self, folder, num_workers: int):
        dispatcher_port, *worker_ports = free_ports(1 + num_workers)
        self.address = f"grpc://127.0.0.1:{dispatcher_port}"
        self.dispatcher = self._start(folder, "dispatcher", "dispatcher", "--port", str(dispatcher_port))
        self.workers = [self._start(folder, f"worker{i}", "worker", "--dispatcher", f"127.0.0.1:{dispatcher_port}",
                                    "--port", str(port), "--host", "127.0.0.1")
                        for i, port in enumerate(worker_ports)]

    @staticmethod
    def _start(folder, name, *args):
        log = folder / f"{name}.log"
        command = [sys.executable, "-m", "videofusion.cli", "data-service", *args]
        with open(log, "w") as out:
            process = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=REPO), stdout=out,
                                       stderr=subprocess.STDOUT)
        process.log = log
        return process

    def wait_until_listening(self, timeout_s: float = 120) -> None:
        """Waits for every server's "listening" line (a worker logs it once registered with the dispatcher)."""
        deadline = time.monotonic() + timeout_s
        for process, role in [(self.dispatcher, "dispatcher"), *((w, "worker") for w in self.workers)]:
            while LISTENING.format(role) not in process.log.read_text():
                assert process.poll() is None, process.log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"no {role} listening after {timeout_s} s"
                time.sleep(0.2)

    def stop(self) -> None:
        for process in [*self.workers, self.dispatcher]:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def cluster_of(tmp_path):
    """`cluster_of(n)`: a dispatcher and n workers, listening; all killed at the end of the test."""
    clusters = []

    def start(num_workers: int) -> Cluster:
        clusters.append(Cluster(tmp_path, num_workers))
        clusters[-1].wait_until_listening()
        return clusters[-1]

    yield start
    for cluster in clusters:
        cluster.stop()


def _clips(dataset):
    """{clip id: (frames, waveform, label)} of every example of `dataset`, and the sizes of its batches;
    fails if a clip comes twice."""
    clips, sizes = {}, []
    for features, labels in dataset.as_numpy_iterator():
        sizes.append(len(labels))
        for i, clip in enumerate(features[tensors.CLIP_ID]):
            assert clip not in clips, f"clip {clip} twice in the pass"
            clips[clip] = (features[tensors.FRAMES][i], features[tensors.WAVEFORM][i], labels[i])
    return clips, sizes


def test_a_malformed_or_silent_dispatcher_address_is_refused_with_its_field():
    with pytest.raises(ValueError, match=r"^train.data_service='127.0.0.1:5050' is not an address grpc://HOST:PORT"):
        service.parse_address("127.0.0.1:5050")
    address = f"grpc://127.0.0.1:{free_ports(1)[0]}"
    started = time.monotonic()
    with pytest.raises(service.DispatcherUnreachableError,
                       match=rf"^train.data_service='{address}': no dispatcher answers there after 1 s"):
        service.wait_for_dispatcher(address, timeout_s=1)
    assert time.monotonic() - started < 10


def test_data_service_mistakes_are_answered_in_one_line(tmp_path):
    assert one_line_mistake(videofusion("data-service", "--port", "5050")) == (
        "videofusion data-service: usage: videofusion data-service dispatcher|worker --port PORT [flags]")
    assert one_line_mistake(videofusion("data-service", "worker", "--port", "5051", "--dispatcher", "nowhere")) == (
        "videofusion data-service: data-service worker needs --dispatcher HOST:PORT, the dispatcher's address")
    result = videofusion("train", *SMOKE_RUN, "--workdir", str(tmp_path / "run"), "--config.data.dir=nowhere",
                         "--config.train.data_service=localhost:5050")
    assert result.returncode == 2
    assert one_line_mistake(result).startswith(
        "videofusion train: train.data_service='localhost:5050' is not an address grpc://HOST:PORT")


def test_two_workers_make_each_clip_of_a_pass_once_with_the_draws_made_here(cluster_of, demo_records):
    """Dynamically sharded over two workers, the pass of epoch 1 holds every training clip once, each with
    the frames, sound and label that the same pass made in this process gives it; its batches are
    regrouped into full ones (the last one smaller)."""
    cluster = cluster_of(2)
    config = demo_config("smoke")
    config.data.dir = demo_records
    config = train.resolve_data_config(config)
    options = dataclasses.replace(pipeline.PipelineOptions.from_config(config), clip_ids=True)
    one_pass = pipeline.worker_passes(demo_records, options, batch_size=5, seed=3, first_epoch=1, num_epochs=1)

    here, _ = _clips(one_pass)
    served, sizes = _clips(service.distributed(one_pass, cluster.address, batch_size=5))

    assert len(here) == 12 and served.keys() == here.keys()
    for clip, (frames, waveform, label) in here.items():
        np.testing.assert_array_equal(served[clip][0], frames)
        np.testing.assert_array_equal(served[clip][1], waveform)
        assert served[clip][2] == label
    assert sizes == [5, 5, 2]


def test_one_worker_makes_the_batches_made_here_in_their_order(cluster_of, demo_records):
    """With one worker, nothing is left to chance: the endless training input from the service is, batch for
    batch, `worker_passes` made here and regrouped (so a run fed by one worker trains as a process that made
    that input itself would)."""
    cluster = cluster_of(1)
    config = demo_config("smoke")
    config.data.dir = demo_records
    config = train.resolve_data_config(config)
    options = pipeline.PipelineOptions.from_config(config)
    here = pipeline.worker_passes(demo_records, options, batch_size=5, seed=3, num_epochs=3).rebatch(5)
    served = pipeline.training_epochs(demo_records, options, batch_size=5, seed=3, data_service=cluster.address)

    batches = 0
    for (features, labels), (served_features, served_labels) in zip(here.take(7).as_numpy_iterator(),
                                                                    served.take(7).as_numpy_iterator()):
        np.testing.assert_array_equal(served_labels, labels)
        for key, value in features.items():
            np.testing.assert_array_equal(served_features[key], value)
        batches += 1
    assert batches == 7  # 35 clips: all 12 of epochs 0 and 1, and 11 of epoch 2


def _train(args, cwd, env=None, script=None):
    """`videofusion train` (or `script`, which runs it) in a subprocess; its output (Keras's progress lines on
    stdout, then the log on stderr)."""
    command = [sys.executable, "-m", "videofusion.cli", "train"] if script is None else [sys.executable, "-c", script]
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                            env=dict(environment, PYTHONPATH=REPO, **(env or {})), timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout + result.stderr


def _epochs(log: str, steps: int) -> int:
    """The epochs that Keras logged as done with `steps` steps."""
    return len(re.findall(rf"^{steps}/{steps} - ", log, flags=re.MULTILINE))


@pytest.mark.slow
@pytest.mark.parametrize("backend, batch, steps", [("tensorflow", 4, 3), ("jax", 8, 2)])
def test_train_takes_its_input_from_the_service(cluster_of, demo_records, tmp_path, backend, batch, steps):
    """Two epochs under each backend, fed by two workers: the run ends with the epochs, steps and files of a
    run that reads its input here (under JAX two CPU devices make the global batch 8: 2 steps per epoch);
    only the order of the clips and their draws differ, so the weights do too."""
    cluster = cluster_of(2)
    env = JAX_ENV if backend == "jax" else {}
    common = (*SMOKE_RUN, f"--config.data.dir={demo_records}", "--config.train.epochs=2")
    served = _train((*common, "--workdir", "served", f"--config.train.data_service={cluster.address}"), tmp_path, env)
    local = _train((*common, "--workdir", "local"), tmp_path, env)

    assert f"Training input from the tf.data service at {cluster.address}" in served
    for log in (served, local):
        assert f"12 training clips, global batch {batch}" in log and _epochs(log, steps) == 2
    for run in ("served", "local"):
        assert {"model.keras", "config.json", "checkpoints"} <= set(os.listdir(tmp_path / run))
    assert CHECKSUM.search(served)[1] != CHECKSUM.search(local)[1]


# `videofusion train` with a callback that kills the process whose id is the first argument with SIGKILL
# once the second step of the first epoch is done.
KILLING_TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from tests.train_in_process import run_train

    class KillWorker(keras.callbacks.Callback):
        killed = False

        def on_train_batch_end(self, batch, logs=None):
            if batch == 1 and not self.killed:
                os.kill(int(sys.argv[1]), signal.SIGKILL)
                self.killed = True
                print("killed the worker", file=sys.stderr, flush=True)

    run_train(sys.argv[2:], [KillWorker()])
    """
)


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_leaves_training_to_the_other(cluster_of, demo_records, tmp_path):
    """SIGKILL to one of two workers after the second of three steps of epoch 1: the run goes on with the
    other and ends; every epoch, that one too, still has its 3 full batches (README: the clips the lost
    worker had not sent are missing from their pass, and the stream's next clips fill the epoch)."""
    cluster = cluster_of(2)
    victim, survivor = cluster.workers
    log = _train((str(victim.pid), *SMOKE_RUN, "--workdir", "run", f"--config.data.dir={demo_records}",
                  "--config.train.epochs=3", f"--config.train.data_service={cluster.address}"), tmp_path,
                 script=KILLING_TRAIN_SCRIPT)

    assert victim.wait(timeout=30) == -signal.SIGKILL and survivor.poll() is None
    assert "killed the worker" in log and _epochs(log, 3) == 3
    assert os.path.isfile(tmp_path / "run" / "model.keras")
    assert collections.Counter(re.findall(r"Epoch (\d)/3", log)) == {"1": 1, "2": 1, "3": 1}
