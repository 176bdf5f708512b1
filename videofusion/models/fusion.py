"""Fusion of per-modality streams into one clip embedding `[batch, d]`.

A stream is `Stream(tokens [batch, t, dim], mask [batch, t] bool, present [batch, 1] float)`: `mask`
marks real tokens (padded frames, padded caption ids are False); `present` is 0 for a modality the clip
lacks (a video without audio, a clip without caption) or that modality dropout removed in training.
An absent modality contributes nothing: its tokens are kept out of attention and its pooled embedding
is zeroed.

- `concat` (late fusion): each modality's tokens averaged (masked), gated by presence, concatenated,
  mixed by a Dense layer.
- `cross_attention`: every modality's tokens attend to the tokens of all the others with
  MultiHeadAttention (video queries audio and text, and back), with a residual connection, LayerNorm
  and a feed-forward block — the article's "multi-modal attention" fusion step made concrete.
- `bottleneck`: Attention Bottlenecks (MBT, Nagrani et al., NeurIPS 2021). Each modality's tokens and
  `num_bottlenecks` shared bottleneck tokens go through a transformer block per modality; the
  bottleneck tokens that come out are averaged over the present modalities and passed on, so the
  modalities exchange information only through those few tokens.

A single modality passes through (its tokens averaged).

Example:

>>> video, audio = keras.Input((8, 32)), keras.Input((20, 32))
>>> streams = {"video": Stream(video), "audio": Stream(audio)}
>>> fuse(streams, "cross_attention", dim=32, num_heads=4).shape
(None, 64)
"""

import dataclasses
from typing import Any, Dict

import keras
from keras import ops

from videofusion.models import layers

FUSIONS = ("concat", "cross_attention", "bottleneck")


@dataclasses.dataclass
class Stream:
    """One modality's tokens, which of them are real, and whether the modality is there at all."""

    tokens: Any
    mask: Any = None
    present: Any = None

    def token_mask(self):
        """Real tokens of a present modality (`[batch, t]` bool)."""
        mask = self.mask if self.mask is not None else ops.ones_like(self.tokens[..., 0], dtype="bool")
        if self.present is None:
            return mask
        return ops.logical_and(mask, ops.greater(self.present, 0.5))


def pool(name: str, stream: Stream):
    """Masked mean of a stream's tokens, zeroed when the modality is absent."""
    pooled = keras.layers.GlobalAveragePooling1D(name=f"{name}_pool")(stream.tokens, mask=stream.mask)
    return pooled if stream.present is None else pooled * stream.present


def _cross_attend(query: Stream, others, dim: int, num_heads: int, name: str):
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


def _bottleneck(streams: Dict[str, Stream], dim: int, num_heads: int, num_layers: int, count: int):
    names = sorted(streams)
    first = streams[names[0]].tokens
    bottleneck = layers.LearnedTokens(count, dim, name="bottleneck_tokens")(first)
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
    return streams, bottleneck


def fuse(streams: Dict[str, Stream], fusion: str, dim: int, num_heads: int, num_layers: int = 1,
         num_bottlenecks: int = 4):
    """Fuses `streams` (modality name → `Stream`), in sorted modality order, into `[batch, d]`."""
    if fusion not in FUSIONS:
        raise ValueError(f"model.fusion={fusion!r} is not one of {', '.join(FUSIONS)}")
    names = sorted(streams)
    extra = []
    if len(names) > 1 and fusion == "cross_attention":
        streams = {
            n: _cross_attend(streams[n], [streams[o] for o in names if o != n], dim, num_heads, f"{n}_cross")
            for n in names
        }
    elif len(names) > 1 and fusion == "bottleneck":
        streams, bottleneck = _bottleneck(streams, dim, num_heads, num_layers, num_bottlenecks)
        extra = [keras.layers.GlobalAveragePooling1D(name="bottleneck_pool")(bottleneck)]
    pooled = [pool(n, streams[n]) for n in names] + extra
    if len(pooled) == 1:
        return pooled[0]
    joined = keras.layers.Concatenate(name="fused")(pooled)
    if fusion == "concat":
        return keras.layers.Dense(dim, activation="relu", name="concat_mix")(joined)
    return joined
