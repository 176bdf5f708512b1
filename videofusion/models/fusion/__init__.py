"""Fusion of per-modality streams into one clip embedding `[batch, d]`.

A stream is `Stream(tokens [batch, t, dim], mask [batch, t] bool, present [batch, 1] float)`: `mask`
marks real tokens (padded frames, padded caption ids are False); `present` is 0 for a modality the clip
lacks (a video without audio, a clip without caption) or that modality dropout removed in training.
An absent modality contributes nothing: its tokens are kept out of attention and its pooled embedding
is zeroed.

One module per method (`model.fusion`): `concat` (`concat.py`, late fusion), `cross_attention`
(`cross_attention.py`), `bottleneck` (`bottleneck.py`, MBT). A new method is a module with a
`fuse(streams, *, dim, num_heads, num_layers, num_bottlenecks)` function and an entry in `_METHODS`;
the tests build and train every entry. A single modality passes through (its tokens averaged).

Example:

>>> video, audio = keras.Input((8, 32)), keras.Input((20, 32))
>>> streams = {"video": Stream(video), "audio": Stream(audio)}
>>> fuse(streams, "cross_attention", dim=32, num_heads=4).shape
(None, 64)
"""

from typing import Dict

import keras  # noqa: F401  (the example)

from videofusion.models.fusion import bottleneck, concat, cross_attention
from videofusion.models.fusion.streams import Stream, pool

_METHODS = {"concat": concat, "cross_attention": cross_attention, "bottleneck": bottleneck}
FUSIONS = tuple(_METHODS)

__all__ = ["FUSIONS", "Stream", "fuse", "pool"]


def fuse(streams: Dict[str, Stream], fusion: str, dim: int, num_heads: int, num_layers: int = 1,
         num_bottlenecks: int = 4):
    """Fuses `streams` (modality name → `Stream`), in sorted modality order, into `[batch, d]`."""
    if fusion not in _METHODS:
        raise ValueError(f"model.fusion={fusion!r} is not one of {', '.join(FUSIONS)}")
    if len(streams) == 1:
        (name, stream), = streams.items()
        return pool(name, stream)
    return _METHODS[fusion].fuse(streams, dim=dim, num_heads=num_heads, num_layers=num_layers,
                                 num_bottlenecks=num_bottlenecks)
