"""Video encoder `frame_avg`: the frame CNN on every frame, averaged over the real frames.

The simplest way to use a whole clip (TSN's average consensus, Wang et al., 2016, without its
segments): it sees every frame but, by design, not their order, so motion direction is out of its
reach. One token.
"""

import keras

from videofusion.models import layers
from videofusion.models.frame_backbones import frame_backbone
from videofusion.models.video.frame import one_token


def encode(frames, frame_mask, real, *, dim, backbone, weights, **_):
    """(`[batch, 1, dim]` token, its all-True mask)."""
    cnn = frame_backbone(backbone, frames.shape[2], weights)
    per_frame = layers.PerFrame(cnn, name="frame_cnn")(frames)
    embedding = keras.layers.GlobalAveragePooling1D(name="frame_average")(per_frame, mask=real)
    return one_token(embedding, dim)
