"""Video encoder `frame`: the reference article's Conv2D classifier on one frame — the baseline.

The article (项目实战, `create_video_model`) classifies single images; here its CNN (`article_cnn.py`,
this encoder's default, or another `model.frame_backbone`) sees the middle real frame of the clip and
nothing else, so it can never tell which way something moves. One token.
"""

import keras

from videofusion.models import layers
from videofusion.models.frame_backbones import frame_backbone


def encode(frames, frame_mask, real, *, dim, backbone, weights, **_):
    """(`[batch, 1, dim]` token, its all-True mask)."""
    cnn = frame_backbone(backbone, frames.shape[2], weights)
    embedding = cnn(layers.MiddleFrame(name="middle_frame")(frames, frame_mask))
    embedding = keras.layers.LayerNormalization(name="frame_norm")(embedding)
    token = keras.layers.Dense(dim, name="frame_projection")(keras.ops.expand_dims(embedding, 1))
    return token, keras.ops.ones_like(token[..., 0], dtype="bool")
