"""Fusion `bottleneck`: Attention Bottlenecks (MBT, Nagrani et al., NeurIPS 2021).

Each modality's tokens and `num_bottlenecks` shared bottleneck tokens go through a transformer block
per modality; the bottleneck tokens that come out are averaged over the present modalities and passed
on, so the modalities exchange information only through those few tokens."""

import keras
from keras import ops

from videofusion.models import layers
from videofusion.models.fusion.streams import Stream, pool_and_join


def fuse(streams, *, dim, num_heads, num_layers, num_bottlenecks, **_):
    """`{modality: Stream}` → `[batch, (modalities + 1) × dim]`: each stream and the bottleneck, pooled."""
    names = sorted(streams)
    first = streams[names[0]].tokens
    bottleneck = layers.LearnedTokens(num_bottlenecks, dim, name="bottleneck_tokens")(first)
    presence = [streams[n].present if streams[n].present is not None else ops.ones_like(first[:, :1, 0]) for n in names]
    total_presence = ops.maximum(sum(presence), 1.0)[:, :, None]
    streams = dict(streams)
    for layer in range(num_layers):
        updates = []
        for n, present in zip(names, presence):
            stream = streams[n]
            t = stream.tokens.shape[1]
            joint = ops.concatenate([stream.tokens, bottleneck], axis=1)
            mask = ops.concatenate([stream.token_mask(), ops.ones_like(bottleneck[..., 0], dtype="bool")], axis=1)
            out = layers.TransformerBlock(dim, num_heads, name=f"{n}_bottleneck_block{layer}")(joint, mask)
            streams[n] = Stream(out[:, :t], stream.mask, stream.present)
            updates.append(out[:, t:] * present[:, :, None])
        bottleneck = sum(updates) / total_presence
    return pool_and_join(streams, [keras.layers.GlobalAveragePooling1D(name="bottleneck_pool")(bottleneck)])
