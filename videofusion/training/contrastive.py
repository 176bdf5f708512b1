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
>>> clip_ids = np.arange(4)  # four clips, one view each
>>> round(float(CrossModalInfoNCE()(clip_ids, aligned)), 3)  # each clip picks itself
0.0
>>> round(float(CrossModalInfoNCE()(clip_ids, np.zeros((4, 2, 4), "float32"))), 3)  # chance: log 4
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


def _positives_nce(logits, positives):
    """Per row: −log of the softmax mass of its `positives` (0/1, at least one per row where the row counts):
    MIL-NCE's loss for several positives (Miech et al. 2020), InfoNCE's for one."""
    return ops.logsumexp(logits, axis=1) - ops.logsumexp(logits - 1e9 * (1.0 - positives), axis=1)


@keras.saving.register_keras_serializable(package="videofusion")
class CrossModalInfoNCE(keras.losses.Loss):
    """Symmetric cross-modal InfoNCE of `[batch, modalities, d]` scaled embeddings, with a within-modality
    term weighted by `within_modal_weight` for batches that hold several views of a clip.

    `y_true` holds each row's clip id (`tensors.CLIP_ID`): rows with equal ids are views of one clip, and
    each of them is a positive for the others, their softmax mass summed (MIL-NCE): in the cross-modal term
    a view's audio has the video of every view of its clip as positives, its own included; in the
    within-modality term a view's video has the other views' videos, itself left out of the softmax, as
    in SimCLR. With one view per clip
    (distinct ids) the cross-modal term is the plain InfoNCE and the within term is 0. `y_true=None`:
    every row its own clip.
    """

    def __init__(self, within_modal_weight: float = 0.0, name: str = "cross_modal_infonce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.within_modal_weight = within_modal_weight

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        columns, offset = _global_columns(y_pred)
        rows, total = ops.shape(y_pred)[0], ops.shape(columns)[0]
        own = ops.one_hot(ops.arange(rows) + offset, total)  # [rows, total]: each row's own column
        if y_true is None:
            same = own
        else:
            ids = ops.reshape(ops.cast(y_true, "float32"), [-1])
            column_ids, _ = _global_columns(ids)
            same = ops.cast(ops.equal(ids[:, None], column_ids[None, :]), "float32")
        losses = []
        for a, b in itertools.combinations(range(y_pred.shape[1]), 2):
            for query, keys in ((y_pred[:, a], columns[:, b]), (y_pred[:, b], columns[:, a])):
                losses.append(_positives_nce(ops.matmul(query, ops.transpose(keys)), same))
        loss = ops.mean(ops.stack(losses, axis=0), axis=0)
        if self.within_modal_weight <= 0:
            return loss
        others = same - own
        has_other = ops.cast(ops.sum(others, axis=1) > 0, "float32")
        within = [
            has_other * _positives_nce(ops.matmul(y_pred[:, m], ops.transpose(columns[:, m])) - 1e9 * own, others)
            for m in range(y_pred.shape[1])
        ]
        return loss + self.within_modal_weight * ops.mean(ops.stack(within, axis=0), axis=0)

    def get_config(self):
        return {**super().get_config(), "within_modal_weight": self.within_modal_weight}
