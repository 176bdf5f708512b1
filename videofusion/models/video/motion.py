"""Per-frame features of the temporal encoders (`lstm`, `transformer`): appearance and motion, apart.

Two streams per frame, concatenated and layer-normalised (which keeps an LSTM's gates out of
saturation):

- appearance: the frame backbone (`frame_backbones.py`) on the RGB frame alone, so that any backbone,
  pretrained ImageNet weights included, sees exactly the 3-channel frames it was built for;
- motion: a light CNN (`motion_cnn`) on the frame stacked with its difference from the previous frame
  (TSN's RGB-difference input, Wang et al., 2016; `layers.FrameDifferences`). Where a shape moves, the
  difference is positive at its leading edge and negative at its trailing edge, next to the shape in
  the frame: a local pattern a small CNN finds at any position, which says which way things move.
  With raw frames alone, a temporal model must discover motion by comparing pooled appearance codes
  across time, and a translation-invariant code has no position left to compare.

Earlier versions fed the 6-channel frame + difference to the backbone itself: no pretrained network
takes 6 channels, and the appearance path had to share its capacity with motion.

Example:

>>> frames = keras.Input((4, 32, 32, 3))
>>> per_frame_features(frames, "pooled_cnn", "").shape
(None, 4, 128)
"""

import keras

from videofusion.models import layers
from videofusion.models.conv_blocks import pooled_conv_stack
from videofusion.models.frame_backbones import frame_backbone

_MOTION_WIDTHS = (16, 32, 64)


def motion_cnn(image_size: int, name: str = "motion_cnn") -> keras.Model:
    """`[size, size, 6]` (frame, difference) → `[64]`: a stride-2 3×3 conv stem, then (2×2 max-pool,
    3×3 conv) twice, each conv batch-normalised with ReLU; global max pool.

    The stem's filters still see every pixel of the thin difference edges; striding them keeps the
    stream at under a third of the default appearance backbone's multiply-adds.
    """
    inputs = keras.Input((image_size, image_size, 6), name="frame_and_difference")
    return keras.Model(inputs, pooled_conv_stack(inputs, _MOTION_WIDTHS, stem_strides=2), name=name)


def per_frame_features(frames, backbone: str, weights: str):
    """`[batch, time, size, size, 3]` in [0, 1] → `[batch, time, backbone features + 64]`."""
    size = frames.shape[2]
    appearance = layers.PerFrame(frame_backbone(backbone, size, weights), name="frame_cnn")(frames)
    with_motion = layers.FrameDifferences(name="frame_differences")(frames)
    motion = layers.PerFrame(motion_cnn(size), name="motion_cnn")(with_motion)
    features = keras.layers.Concatenate(name="appearance_and_motion")([appearance, motion])
    return keras.layers.LayerNormalization(name="frame_norm")(features)
