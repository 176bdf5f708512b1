"""Video encoder `lstm`: per-frame CNN features (with motion, `motion.py`), then an LSTM over time.

The article's CNN → RNN/LSTM pipeline (核心算法原理, sections 1–2), with Keras's LSTM in place of its
plain RNN formula. Padded frames are masked. Each token is the LSTM's output plus a linear projection
of its frame's features: a residual path that lets what a frame shows reach the classifier without
first passing the LSTM's gates (measured on the kind × pitch clips of tests/test_learning.py, 12
epochs: 0.83 test accuracy without it, 0.94 with). The LSTM stays in float32 under mixed precision: its
bfloat16 path fails under the JAX GPU backend. One token per frame.
"""

import keras

from videofusion.models.video.motion import per_frame_features


def encode(frames, frame_mask, real, *, dim, backbone, weights, **_):
    """(`[batch, time, dim]` tokens, the frame mask)."""
    per_frame = per_frame_features(frames, backbone, weights)
    sequence = keras.layers.LSTM(dim, return_sequences=True, dtype="float32", name="lstm")(per_frame, mask=real)
    frame_tokens = keras.layers.Dense(dim, name="frame_projection")(per_frame)
    return keras.layers.Add(name="lstm_and_frame")([sequence, frame_tokens]), real
