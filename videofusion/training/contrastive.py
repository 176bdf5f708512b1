"""`CrossModalInfoNCE`: the loss of `videofusion pretrain` on `models.pretraining`'s `embeddings`.

For each pair of modalities, the symmetric InfoNCE of CLIP and AVID's cross-modal term (Radford et
al. 2021; Morgado et al. 2021): each clip's audio must pick its own video among the batch's videos by
their scaled cosine (the model's `ContrastiveScale`), and its video its own audio; the per-clip loss
is the mean over pairs and both directions. The negatives are the other clips of the global batch:
under JAX the loss sees the global batch (the step is one SPMD program over the sharded batch); under
a `tf.distribute` strategy each replica scores its own clips against every replica's, gathered with
`all_gather` (which passes gradients back to the replica that made them).

Example:

>>> import numpy as np
>>> aligned = np.stack([np.eye(4), np.eye(4)], axis=1).astype("float32") * 10.0  # [4 clips, 2, 4]
>>> round(float(CrossModalInfoNCE()(np.zeros(4), aligned)), 3)  # each clip picks itself
0.0
>>> round(float(CrossModalInfoNCE()(np.zeros(4), np.zeros((4, 2, 4), "float32"))), 3)  # chance: log 4
1.386
"""

import itertools

import keras
from keras import ops


def _global_columns(x):
    """(every replica's rows of `x` under a multi-replica `tf.distribute` strategy, else `x`; where this
    replica's rows start among them)."""
    if keras.backend.backend() != "tensorflow":
        return x, 0
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return x, 0
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return x, 0
    sizes = context.all_gather(tf.shape(x)[:1], axis=0)
    offset = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
    return context.all_gather(x, axis=0), offset


@keras.saving.register_keras_serializable(package="videofusion")
class CrossModalInfoNCE(keras.losses.Loss):
    """Symmetric cross-modal InfoNCE of `[batch, modalities, d]` scaled embeddings; `y_true` is unused."""

    def __init__(self, name: str = "cross_modal_infonce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        del y_true  # the pairing is the label: row i of each modality is the same clip
        y_pred = ops.cast(y_pred, "float32")
        columns, offset = _global_columns(y_pred)
        rows = ops.shape(y_pred)[0]
        targets = ops.arange(rows) + offset
        losses = []
        for a, b in itertools.combinations(range(y_pred.shape[1]), 2):
            for query, keys in ((y_pred[:, a], columns[:, b]), (y_pred[:, b], columns[:, a])):
                logits = ops.matmul(query, ops.transpose(keys))
                losses.append(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))
        return ops.mean(ops.stack(losses, axis=0), axis=0)
