"""Video encoders: frames `[batch, time, size, size, 3]` + frame mask → (tokens `[batch, t, dim]`, mask).

- `frame`: the article's CNN (`article_cnn.py`) on the middle real frame only — one token. It cannot see
  motion; it is the baseline every other encoder must beat.
- `frame_avg`: the same CNN on every frame (`TimeDistributed`), averaged over the real frames — one
  token. Order-blind by design: it sees every frame, but not which came first.
- `lstm`: the CNN on every frame and its difference from the previous frame (TSN's RGB-difference
  motion input, `layers.FrameDifferences`), then an LSTM over time, one token per frame (the article's
  CNN → RNN/LSTM pipeline), padded frames masked. With raw frames alone the LSTM has to discover motion
  by comparing 128-d position codes across time; on the demo data it stayed at chance on direction for
  25 epochs in most runs, with differences it learns it in a few. Features are layer-normalised before
  the LSTM to keep its gates out of saturation; the LSTM stays in float32 under mixed precision (its
  bfloat16 path fails under the JAX GPU backend).
- `transformer`: the same per-frame features with a learned position embedding, then
  `model.num_layers` self-attention blocks (`layers.TransformerBlock`), padded frames masked.

Example:

>>> frames, mask = keras.Input((8, 32, 32, 3)), keras.Input((8,))
>>> tokens, token_mask = encode_video(frames, mask, "lstm", dim=64)
>>> tokens.shape
(None, 8, 64)
"""

import keras

from videofusion.models import layers
from videofusion.models.frame_backbones import frame_backbone

VIDEO_ENCODERS = ("frame", "frame_avg", "lstm", "transformer")


def _per_frame_with_motion(frames, dim: int, backbone: str, weights_path: str):
    with_motion = layers.FrameDifferences(name="frame_differences")(frames)
    cnn = frame_backbone(backbone, frames.shape[2], channels=6, weights_path=weights_path)
    per_frame = keras.layers.TimeDistributed(cnn, name="frame_cnn")(with_motion)
    return keras.layers.LayerNormalization(name="frame_norm")(per_frame)


def encode_video(frames, frame_mask, encoder: str, dim: int, num_heads: int = 4, num_layers: int = 2,
                 max_frames: int = 64, backbone: str = "article", weights_path: str = ""):
    """Applies video encoder `encoder`; returns (tokens, bool mask `[batch, t]` of real tokens)."""
    real = keras.ops.greater(frame_mask, 0.5)
    if encoder in ("frame", "frame_avg"):
        cnn = frame_backbone(backbone, frames.shape[2], weights_path=weights_path)
        if encoder == "frame":
            embedding = cnn(layers.MiddleFrame(name="middle_frame")(frames, frame_mask))
        else:
            per_frame = keras.layers.TimeDistributed(cnn, name="frame_cnn")(frames)
            embedding = keras.layers.GlobalAveragePooling1D(name="frame_average")(per_frame, mask=real)
        token = keras.layers.Dense(dim, name="frame_projection")(keras.ops.expand_dims(embedding, 1))
        return token, keras.ops.ones_like(token[..., 0], dtype="bool")
    if encoder == "lstm":
        per_frame = _per_frame_with_motion(frames, dim, backbone, weights_path)
        tokens = keras.layers.LSTM(dim, return_sequences=True, dtype="float32", name="lstm")(per_frame, mask=real)
        return tokens, real
    if encoder == "transformer":
        per_frame = _per_frame_with_motion(frames, dim, backbone, weights_path)
        tokens = keras.layers.Dense(dim, name="frame_projection")(per_frame)
        tokens = layers.PositionEmbedding(max_frames, name="frame_positions")(tokens)
        for index in range(num_layers):
            tokens = layers.TransformerBlock(dim, num_heads, name=f"video_block{index}")(tokens, real)
        return keras.layers.LayerNormalization(name="video_norm")(tokens), real
    raise ValueError(f"model.video_encoder={encoder!r} is not one of {', '.join(VIDEO_ENCODERS)}")
