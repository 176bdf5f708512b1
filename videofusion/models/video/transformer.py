"""Video encoder `transformer`: per-frame CNN features (with motion), a learned position embedding and
`model.num_layers` self-attention blocks (`layers.TransformerBlock`), padded frames masked.

The article's Transformer section (核心算法原理, section 3), encoder only: a classifier needs no
decoder. One token per frame.
"""

import keras

from videofusion.models import layers
from videofusion.models.video.motion import per_frame_features


def encode(frames, frame_mask, real, *, dim, num_heads, num_layers, max_frames, backbone, weights, **_):
    """(`[batch, time, dim]` tokens, the frame mask)."""
    tokens = keras.layers.Dense(dim, name="frame_projection")(per_frame_features(frames, backbone, weights))
    tokens = layers.PositionEmbedding(max_frames, name="frame_positions")(tokens)
    for index in range(num_layers):
        tokens = layers.TransformerBlock(dim, num_heads, name=f"video_block{index}")(tokens, real)
    return keras.layers.LayerNormalization(name="video_norm")(tokens), real
