"""Fusion of per-modality token sequences `[batch, tokens, dim]` into one clip embedding `[batch, d]`.

- `concat` (late fusion): each modality's tokens are averaged, the averages concatenated and mixed by a
  Dense layer.
- `cross_attention`: every modality's tokens attend to the tokens of all the others with
  MultiHeadAttention (video queries audio, audio queries video), each followed by a residual
  connection, LayerNorm and a feed-forward block — the article's "multi-modal attention" fusion step
  made concrete. The attended streams are then averaged and concatenated.

A single modality passes through (its tokens averaged).

Example:

>>> video, audio = keras.Input((8, 32)), keras.Input((20, 32))
>>> fuse({"video": video, "audio": audio}, "cross_attention", dim=32, num_heads=4).shape
(None, 64)
"""

import keras

FUSIONS = ("concat", "cross_attention")


def _cross_attend(query, others, dim: int, num_heads: int, name: str):
    context = others[0] if len(others) == 1 else keras.layers.Concatenate(axis=1)(others)
    attended = keras.layers.MultiHeadAttention(
        num_heads, key_dim=dim // num_heads, name=f"{name}_attention"
    )(query, context)
    x = keras.layers.LayerNormalization(name=f"{name}_norm1")(keras.layers.Add()([query, attended]))
    hidden = keras.layers.Dense(2 * dim, activation="gelu", name=f"{name}_ffn1")(x)
    hidden = keras.layers.Dense(dim, name=f"{name}_ffn2")(hidden)
    return keras.layers.LayerNormalization(name=f"{name}_norm2")(keras.layers.Add()([x, hidden]))


def fuse(tokens: dict, fusion: str, dim: int, num_heads: int):
    """Fuses `tokens` (modality name → `[batch, tokens, dim]`), in sorted modality order."""
    if fusion not in FUSIONS:
        raise ValueError(f"model.fusion={fusion!r} is not one of {', '.join(FUSIONS)}")
    names = sorted(tokens)
    if fusion == "cross_attention" and len(names) > 1:
        streams = [
            _cross_attend(tokens[n], [tokens[o] for o in names if o != n], dim, num_heads, f"{n}_cross")
            for n in names
        ]
    else:
        streams = [tokens[n] for n in names]
    pooled = [keras.layers.GlobalAveragePooling1D(name=f"{n}_pool")(s) for n, s in zip(names, streams)]
    if len(pooled) == 1:
        return pooled[0]
    joined = keras.layers.Concatenate(name="fused")(pooled)
    if fusion == "concat":
        return keras.layers.Dense(dim, activation="relu", name="concat_mix")(joined)
    return joined
