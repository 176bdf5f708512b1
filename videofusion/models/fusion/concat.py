"""Fusion `concat` (late fusion): each modality's tokens averaged (masked), gated by presence,
concatenated, mixed by a Dense layer."""

import keras

from videofusion.models.fusion.streams import pool_and_join


def fuse(streams, *, dim, **_):
    """`{modality: Stream}` → `[batch, dim]`."""
    return keras.layers.Dense(dim, activation="relu", name="concat_mix")(pool_and_join(streams))
