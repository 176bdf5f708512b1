"""Fusion `cross_attention`: every modality's tokens attend to the tokens of all the others with
MultiHeadAttention (video queries audio and text, and back), with a residual connection, LayerNorm and
a feed-forward block — the reference article's "multi-modal attention" fusion step made concrete."""

import keras
from keras import ops

from videofusion.models.fusion.streams import Stream, pool_and_join


def _cross_attend(query: Stream, others, dim: int, num_heads: int, name: str) -> Stream:
    context = ops.concatenate([o.tokens for o in others], axis=1)
    context_mask = ops.concatenate([o.token_mask() for o in others], axis=1)
    attended = keras.layers.MultiHeadAttention(num_heads, key_dim=dim // num_heads, name=f"{name}_attention")(
        query.tokens, context, attention_mask=ops.logical_and(query.token_mask()[:, :, None], context_mask[:, None, :])
    )
    anything = ops.cast(ops.any(context_mask, axis=1, keepdims=True), attended.dtype)[:, :, None]
    x = keras.layers.LayerNormalization(name=f"{name}_norm1")(query.tokens + attended * anything)
    hidden = keras.layers.Dense(2 * dim, activation="gelu", name=f"{name}_ffn1")(x)
    hidden = keras.layers.Dense(dim, name=f"{name}_ffn2")(hidden)
    tokens = keras.layers.LayerNormalization(name=f"{name}_norm2")(x + hidden)
    return Stream(tokens, query.mask, query.present)


def fuse(streams, *, dim, num_heads, **_):
    """`{modality: Stream}` → `[batch, modalities × dim]`: each attended stream, pooled, concatenated."""
    names = sorted(streams)
    attended = {
        n: _cross_attend(streams[n], [streams[o] for o in names if o != n], dim, num_heads, f"{n}_cross")
        for n in names
    }
    return pool_and_join(attended)
