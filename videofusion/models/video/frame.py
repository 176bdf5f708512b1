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
    return one_token(embedding, dim)


def one_token(embedding, dim: int):
    """`[batch, features]` → (`[batch, 1, dim]` token, its all-True mask), for `frame` and `frame_avg`.

    The features are layer-normalised before the projection to `dim`: a backbone's pooled features
    (after ReLU and global pooling) are all positive and large, and put straight into the head they
    saturated it — on the demo's twelve-way labels, with `pooled_cnn`, top-5 test accuracy 0.47
    without, 0.92 with (`make ablation`'s `frame_pooled_cnn` row, 7 epochs).
    """
    embedding = keras.layers.LayerNormalization(name="frame_norm")(embedding)
    token = keras.layers.Dense(dim, name="frame_projection")(keras.ops.expand_dims(embedding, 1))
    return token, keras.ops.ones_like(token[..., 0], dtype="bool")
