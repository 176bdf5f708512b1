"""How training is distributed: a `tf.distribute` strategy under TensorFlow, `keras.distribution` under JAX.

`train.strategy=auto` (`resolve_strategy_name`) takes, under the TensorFlow backend:

- TPUStrategy when a TPU is reachable (TPU devices on this machine, or `TPU_NAME`, `TPU_CONFIG` or
  `KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS` naming a Cloud TPU);
- MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers (one process per worker, each
  running the same command);
- MirroredStrategy when more than one GPU is visible;
- the default strategy otherwise.

Under the JAX backend there is no `tf.distribute` strategy: `auto` (and `default`) train with
`keras.distribution.DataParallel` over the local devices when there are more than one (with one device
there is nothing to split and no distribution is set); the other names are refused.

`Distribution` is what `train` needs of either: the scope to build the model in, the replicas a global
batch is split over, the input datasets set up for them, and the folder this process writes into (the
workdir on the chief; on the other workers of a multi-worker run, a folder of their own that is removed
at the end: the tf.distribute convention, where every worker runs the same saving code and only the
chief's files are kept).

Example:

>>> resolve_strategy_name("auto", num_gpus=2, num_workers=0, tpu=False)
'mirrored'
>>> make_distribution("default").replicas
1
"""

import contextlib
import json
import os
import shutil
from typing import Iterator, Optional

import keras
import tensorflow as tf
from absl import logging

STRATEGIES = ("auto", "default", "mirrored", "tpu", "multi_worker")
JAX_STRATEGIES = ("auto", "default")
_CLASS_NAMES = {"default": "the default strategy", "mirrored": "MirroredStrategy", "tpu": "TPUStrategy",
                "multi_worker": "MultiWorkerMirroredStrategy"}
# What TPUClusterResolver() reads to find a Cloud TPU when it is given no name.
_TPU_VARIABLES = ("TPU_NAME", "TPU_CONFIG", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS")


def tf_config_workers(tf_config: Optional[str]) -> int:
    """The number of chief and worker tasks that a `TF_CONFIG` value names (0 when it is unset).

    >>> tf_config_workers('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}')
    2
    """
    if not tf_config:
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a JSON object with a cluster ({error}): {tf_config[:200]!r}") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _local_tpu() -> bool:
    return bool(tf.config.list_physical_devices("TPU"))


def tpu_reachable() -> bool:
    """Whether TPUClusterResolver would find a TPU: local TPU devices, or a Cloud TPU named by the environment."""
    return _local_tpu() or any(os.environ.get(name) for name in _TPU_VARIABLES)


def resolve_strategy_name(name: str, num_gpus: int, num_workers: int, tpu: bool) -> str:
    """The strategy `name` stands for: `auto` resolved from what this process can reach, others as they are."""
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy={name!r} is not one of {', '.join(STRATEGIES)}")
    if name != "auto":
        return name
    if tpu:
        return "tpu"
    if num_workers > 1:
        return "multi_worker"
    return "mirrored" if num_gpus > 1 else "default"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named `name` (one of `STRATEGIES`); `auto` as the module docstring says.

    Multi-worker training needs this before any other TensorFlow op has run in the process.
    """
    workers = tf_config_workers(os.environ.get("TF_CONFIG"))
    resolved = resolve_strategy_name(
        name, len(tf.config.list_physical_devices("GPU")), workers, tpu=name == "auto" and tpu_reachable()
    )
    if resolved == "default":
        strategy = tf.distribute.get_strategy()
    elif resolved == "mirrored":  # over the GPUs; without any, over the logical CPU devices (tests make two)
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    elif resolved == "multi_worker":
        if workers < 2:
            logging.warning("train.strategy=multi_worker without a TF_CONFIG naming several workers: one worker")
        strategy = _KerasMultiWorkerMirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local" if _local_tpu() else None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    logging.info("train.strategy=%s: %s with %d replica(s)", name, _CLASS_NAMES[resolved],
                 strategy.num_replicas_in_sync)
    return strategy


class _KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` also takes the scalars that Keras 3's `fit` gives it.

    Keras averages each step's logs over the replicas with `strategy.reduce("MEAN", value, axis=0)`
    (`reduce_per_replica`, keras-team/keras#20585, open as of Keras 3.15.1), and the logs are scalars,
    which have no axis 0: a scalar is taken here as a batch of one, so its mean over the replicas is
    the mean of their values. With `_build_from_local_batch`, what Keras 3 needs to fit under this
    strategy.
    """

    def reduce(self, reduce_op, value, axis):
        if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


class Distribution:
    """How this process takes part in training: under TensorFlow a `tf.distribute` strategy, under JAX
    `keras.distribution.DataParallel` over `jax_devices` (set globally) or nothing (one device)."""

    def __init__(self, strategy: Optional[tf.distribute.Strategy] = None, jax_devices: int = 1):
        self.strategy = strategy
        self.jax_devices = jax_devices

    @property
    def replicas(self) -> int:
        """What the per-replica batch is multiplied by to give the global batch."""
        return self.strategy.num_replicas_in_sync if self.strategy is not None else self.jax_devices

    def scope(self):
        """The scope to create and compile the model in."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def task(self) -> str:
        """This process's task in a multi-worker cluster ("worker 1"), or "chief"."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if self.multi_worker and resolver is not None and resolver.task_type:
            return f"{resolver.task_type} {resolver.task_id}"
        return "chief"

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run's files (the multi-worker cluster's chief; always, otherwise)."""
        return self.strategy is None or self.strategy.extended.should_checkpoint

    @property
    def multi_worker(self) -> bool:
        """Whether this process is one of several training workers (MultiWorkerMirroredStrategy)."""
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def prepare_model(self, model: keras.Model) -> keras.Model:
        """`model` (built in `scope()`) made ready to `fit` under this distribution; returns it."""
        if self.multi_worker:
            _build_from_local_batch(model, self.strategy)
        return model

    def prepare_dataset(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """`dataset` (batched at the global batch size) set up for this distribution.

        tf.distribute: sharded between workers by data (every worker reads and decodes every shard, in
        the same order since the pipeline is seeded, and keeps its part of each global batch), whatever
        the number of shards and however the pipeline reads them (the AUTO policy, measured on an
        earlier pipeline that zipped in a random-seed source, sharded the files and then the data too:
        with two workers and two shards, each worker got 3 of the 12 clips). JAX over N devices: the
        last batch of an epoch is trimmed to a multiple of N (at most N−1 clips left out of that step),
        since a batch must split evenly over the devices.
        """
        if self.strategy is not None:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            return dataset.with_options(options)
        if self.jax_devices > 1:
            return _whole_device_batches(dataset, self.jax_devices)
        return dataset

    @contextlib.contextmanager
    def run_dir(self, workdir: str) -> Iterator[str]:
        """Yields the folder this process writes the run into: `workdir` on the chief; on another worker
        `workdir/workertemp_<id>`, removed once training has finished (kept after an error, so that a
        rerun on a machine that does not share the workdir can resume from the worker's own backup)."""
        if self.is_chief:
            yield workdir
            return
        path = os.path.join(workdir, f"workertemp_{self.strategy.cluster_resolver.task_id}")
        os.makedirs(path, exist_ok=True)
        logging.info("This is %s, not the chief: writing into %s (removed at the end)", self.task, path)
        yield path
        shutil.rmtree(path, ignore_errors=True)


def _build_from_local_batch(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Works around Keras 3's `fit` under MultiWorkerMirroredStrategy (keras-team/keras#20585 and
    #20329, open as of Keras 3.15.1), for this model only.

    Before the first step, `fit` and `evaluate` learn the shapes of the data by averaging the first
    batch over all replicas (`TensorFlowTrainer._maybe_symbolic_build`: `strategy.reduce("MEAN", batch)`
    on the whole nest of features and labels), which MultiWorkerMirroredStrategy cannot do: its
    `reduce` takes one tensor, not a nest, and its collectives take no uint8 frames. Here that build
    reads this worker's own part of the batch instead, of the same shapes and dtypes; the rest of
    Keras's method runs as it is.
    """
    keras_build = model._maybe_symbolic_build  # pylint: disable=protected-access

    def local_part(value):
        return value if value is None else strategy.experimental_local_results(value)[0]

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local_part, next(batches))
                break
        return keras_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build  # pylint: disable=protected-access


def _whole_device_batches(dataset: tf.data.Dataset, devices: int) -> tf.data.Dataset:
    def batch_size(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0]

    def trim(*batch):
        keep = batch_size(*batch) // devices * devices
        trimmed = tf.nest.map_structure(lambda tensor: tensor[:keep], batch)
        return trimmed if len(trimmed) > 1 else trimmed[0]  # tf.data passes a tuple's parts as arguments

    return dataset.map(trim).filter(lambda *batch: batch_size(*batch) > 0)


def make_distribution(name: str) -> Distribution:
    """The distribution that `train.strategy=name` asks for under the current Keras backend."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        return Distribution(make_strategy(name))
    if backend != "jax":
        raise ValueError(f"videofusion trains under the tensorflow and jax Keras backends, not {backend!r}")
    if name not in JAX_STRATEGIES:
        raise ValueError(
            f"train.strategy={name!r} is a tf.distribute strategy, which the JAX backend does not use: under "
            "KERAS_BACKEND=jax set train.strategy=auto (data parallel over all local devices) or default; "
            "for tf.distribute, train under the TensorFlow backend (KERAS_BACKEND unset)"
        )
    # TensorFlow only runs the tf.data pipeline here: keep it off the accelerators that JAX uses.
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError as error:  # TensorFlow already initialized: it may hold GPU memory JAX needs
        logging.warning("Could not hide the GPUs from TensorFlow (%s)", error)
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    logging.info("Keras backend jax: %s over %d device(s) (%s)",
                 "DataParallel" if len(devices) > 1 else "no distribution", len(devices), ", ".join(devices))
    return Distribution(jax_devices=len(devices))
