"""Video encoder `lstm`: per-frame CNN features (with motion, `motion.py`), then an LSTM over time.

The article's CNN → RNN/LSTM pipeline (核心算法原理, sections 1–2), with Keras's LSTM in place of its
plain RNN formula. Padded frames are masked. The LSTM stays in float32 under mixed precision: its
bfloat16 path fails under the JAX GPU backend. One token per frame.
"""

import keras

from videofusion.models.video.motion import per_frame_features


def encode(frames, frame_mask, real, *, dim, backbone, weights, **_):
    """(`[batch, time, dim]` tokens, the frame mask)."""
    per_frame = per_frame_features(frames, backbone, weights)
    tokens = keras.layers.LSTM(dim, return_sequences=True, dtype="float32", name="lstm")(per_frame, mask=real)
    return tokens, real
