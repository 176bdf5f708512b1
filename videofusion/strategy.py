"""Choosing the `tf.distribute` strategy for `train.strategy`.

`auto` takes MirroredStrategy when more than one GPU is visible and the default strategy otherwise.

Example:

>>> make_strategy("default").num_replicas_in_sync
1
"""

import tensorflow as tf
from absl import logging

STRATEGIES = ("auto", "default", "mirrored", "tpu", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy named `name` (one of `STRATEGIES`)."""
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    else:
        raise ValueError(f"train.strategy={name!r} is not one of {', '.join(STRATEGIES)}")
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy
