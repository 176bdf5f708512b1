"""What every fusion method takes: a `Stream` per modality, and its masked, presence-gated mean."""

import dataclasses
from typing import Any

import keras
from keras import ops


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


def pool_and_join(streams: dict, extra=()):
    """The pooled streams, in sorted modality order, and `extra` tensors, concatenated (layer `fused`)."""
    return keras.layers.Concatenate(name="fused")([pool(n, streams[n]) for n in sorted(streams)] + list(extra))
