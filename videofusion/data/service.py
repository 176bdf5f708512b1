"""The training input made by tf.data service workers: the servers, and the stream they make.

A dispatcher (`serve_dispatcher`) and workers (`serve_worker`) run as processes of their own, on any
hosts that read `data.dir` at the same path. With `train.data_service=grpc://HOST:PORT` (the
dispatcher), `pipeline.training_epochs` has them make `pipeline.worker_passes` as one endless job,
dynamically sharded (`distributed`): the dispatcher hands out (epoch, shard file) pairs, a pass after
the other, one to each worker that asks, so that each file of a pass is read by one worker and each
clip made once per pass while no worker is lost. The trainer regroups the workers' batches, in the order
they arrive, into batches of the global size.

The job has no end because TensorFlow (2.21) never takes a lost worker's task away: its dispatcher only
logs the loss, and a finite job would wait for that task's end for ever. Endless, the trainer's reads go
round the other workers' tasks, and only the clips the lost worker had not sent are missing.

Example:

>>> parse_address("grpc://dispatcher.example.com:5050")
('dispatcher.example.com', 5050)
>>> parse_address("dispatcher:5050")
Traceback (most recent call last):
...
ValueError: train.data_service='dispatcher:5050' is not an address grpc://HOST:PORT of a tf.data service \
dispatcher (`videofusion data-service dispatcher --port PORT`); "" reads the input locally
"""

import re
import socket
import time
from typing import Optional, Tuple

import tensorflow as tf
from absl import logging

FIELD = "train.data_service"
PROTOCOL = "grpc"
# How the workers' batches travel: "AUTO" lets TensorFlow choose, and TensorFlow 2.21 compresses them (snappy):
# on the demo's clips, 150 KB on the wire per clip of 201 KB (README "Input across hosts").
COMPRESSION = "AUTO"
# How long `wait_for_dispatcher` waits for the dispatcher to accept a connection: TensorFlow itself retries
# for ever, the trainer silent.
DISPATCHER_WAIT_S = 30.0
_HOST_PORT = re.compile(r"(?P<host>[^\s:/\[\]]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})")


class DispatcherUnreachableError(ValueError):
    """The dispatcher that `train.data_service` names does not answer; the message says so."""


def host_and_port(text: str) -> Optional[Tuple[str, int]]:
    """(host, port) of `HOST:PORT` (an IPv6 host in brackets), or None if `text` is not one.

    >>> host_and_port("10.0.0.7:5050"), host_and_port("dispatcher"), host_and_port("[::1]:5050")
    (('10.0.0.7', 5050), None, ('::1', 5050))
    """
    match = _HOST_PORT.fullmatch(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        return None
    return match["host"].strip("[]"), int(match["port"])


def parse_address(address: str) -> Tuple[str, int]:
    """(host, port) of a dispatcher address `grpc://HOST:PORT`; refuses (ValueError naming `FIELD`) any other."""
    scheme, _, rest = address.partition("://")
    parsed = host_and_port(rest) if scheme == PROTOCOL else None
    if parsed is None:
        raise ValueError(f"{FIELD}={address!r} is not an address {PROTOCOL}://HOST:PORT of a tf.data service "
                         "dispatcher (`videofusion data-service dispatcher --port PORT`); \"\" reads the input "
                         "locally")
    return parsed


def wait_for_dispatcher(address: str, timeout_s: float = DISPATCHER_WAIT_S) -> None:
    """Returns once the dispatcher at `address` accepts a connection; `DispatcherUnreachableError` after
    `timeout_s` seconds without (TensorFlow would retry registering the dataset for ever, silently)."""
    host, port = parse_address(address)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout_s)):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise DispatcherUnreachableError(
                    f"{FIELD}={address!r}: no dispatcher answers there after {timeout_s:g} s ({error}); start one "
                    "with `videofusion data-service dispatcher --port PORT` and workers beside it") from None
            time.sleep(0.5)


def distributed(batches: tf.data.Dataset, address: str, batch_size: int) -> tf.data.Dataset:
    """`batches` (`pipeline.worker_passes`) made by the tf.data service at `address`, dynamically sharded,
    and regrouped into batches of `batch_size`.

    One job per iteration. The workers' batches arrive as each is ready, whichever worker made it, and a
    worker's last batch of its share of a finite stream is smaller: regrouped here, all batches but the
    stream's last hold `batch_size` clips.
    """
    return batches.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=address,
        compression=COMPRESSION,
    )).rebatch(batch_size)


def _register_text_ops() -> None:
    """Registers TensorFlow Text's ops in this process: a text model's pipeline tokenizes captions with them
    (`caption_tokenizer`), and both the dispatcher (which splits the dataset) and the workers run its graph."""
    import tensorflow_text  # noqa: F401


def serve_dispatcher(port: int, work_dir: Optional[str] = None) -> None:
    """Runs a tf.data service dispatcher on `port` until the process is killed. With `work_dir`, in
    fault-tolerant mode: its state (datasets, jobs, how far each job's splits went) journaled there, so
    that a dispatcher restarted with the same `work_dir` resumes the jobs it had."""
    _register_text_ops()
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, protocol=PROTOCOL, work_dir=work_dir, fault_tolerant_mode=bool(work_dir))
    server = tf.data.experimental.service.DispatchServer(config)
    logging.info("tf.data service dispatcher listening on %s://%s:%d%s", PROTOCOL, socket.gethostname(), port,
                 f" (fault tolerant, state in {work_dir})" if work_dir else "")
    server.join()


def serve_worker(dispatcher: str, port: int, host: str) -> None:
    """Runs a tf.data service worker on `port` that serves the dispatcher at `dispatcher` (HOST:PORT) until
    the process is killed; `host` is the name trainers reach this machine by."""
    _register_text_ops()
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, worker_address=f"{host}:{port}", port=port, protocol=PROTOCOL)
    server = tf.data.experimental.service.WorkerServer(config)
    logging.info("tf.data service worker listening on %s:%d for the dispatcher at %s", host, port, dispatcher)
    server.join()
