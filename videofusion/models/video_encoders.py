"""Video encoders: clip frames `[batch, time, size, size, 3]` → video tokens `[batch, tokens, dim]`.

- `frame`: the article's CNN (`article_cnn.py`) on the middle frame only — one token. It cannot see
  motion; it is the baseline every other encoder must beat.
- `lstm`: the same CNN on every frame (`TimeDistributed`), then an LSTM over time, one token per frame
  (the article's CNN → RNN/LSTM pipeline). Its CNN sees each frame together with its difference from
  the previous frame (TSN's RGB-difference motion input, `layers.FrameDifferences`): with raw frames
  alone, the LSTM has to discover motion by comparing 128-d position codes across time, and on the demo
  data it stayed at chance on direction for 25 epochs in most runs; with differences it learns it in a
  few. The features are layer-normalised before the LSTM to keep its gates out of saturation. The LSTM stays in float32 under mixed precision: its bfloat16
  path fails under the JAX GPU backend.

Example:

>>> frames = keras.Input((8, 32, 32, 3))
>>> encode_video(frames, "lstm", dim=64).shape
(None, 8, 64)
"""

import keras

from videofusion.models import layers
from videofusion.models.article_cnn import article_cnn

VIDEO_ENCODERS = ("frame", "lstm")


def encode_video(frames, encoder: str, dim: int):
    """Applies video encoder `encoder` to a `frames` tensor of the functional graph."""
    image_size = frames.shape[2]
    if encoder == "frame":
        embedding = article_cnn(image_size)(layers.MiddleFrame(name="middle_frame")(frames))
        tokens = keras.layers.Reshape((1, 128), name="frame_token")(embedding)
        return keras.layers.Dense(dim, name="frame_projection")(tokens)
    if encoder == "lstm":
        with_motion = layers.FrameDifferences(name="frame_differences")(frames)
        per_frame = keras.layers.TimeDistributed(article_cnn(image_size, channels=6), name="frame_cnn")(with_motion)
        per_frame = keras.layers.LayerNormalization(name="frame_norm")(per_frame)
        return keras.layers.LSTM(dim, return_sequences=True, dtype="float32", name="lstm")(per_frame)
    raise ValueError(f"model.video_encoder={encoder!r} is not one of {', '.join(VIDEO_ENCODERS)}")
