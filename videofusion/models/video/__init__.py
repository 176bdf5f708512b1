"""Video encoders: frames `[batch, time, size, size, 3]` + frame mask → (tokens `[batch, t, dim]`, mask).

One module per encoder (`model.video_encoder`):

- `frame` (`frame.py`): the article's CNN on the middle real frame — the baseline, blind to motion;
- `frame_avg` (`frame_avg.py`): the same CNN on every frame, averaged — order-blind by design;
- `lstm` (`lstm.py`): CNN on frames and their differences, then an LSTM;
- `transformer` (`transformer.py`): the same per-frame features, position embedding, self-attention.

Example:

>>> frames, mask = keras.Input((8, 32, 32, 3)), keras.Input((8,))
>>> tokens, token_mask = encode_video(frames, mask, "lstm", dim=64)
>>> tokens.shape
(None, 8, 64)
"""

import keras

from videofusion.models.video import frame, frame_avg, lstm, transformer

_ENCODERS = {"frame": frame, "frame_avg": frame_avg, "lstm": lstm, "transformer": transformer}
VIDEO_ENCODERS = tuple(_ENCODERS)


def encode_video(frames, frame_mask, encoder: str, dim: int, num_heads: int = 4, num_layers: int = 2,
                 max_frames: int = 64, backbone: str = "article", weights_path: str = ""):
    """Applies video encoder `encoder`; returns (tokens, bool mask `[batch, t]` of real tokens)."""
    if encoder not in _ENCODERS:
        raise ValueError(f"model.video_encoder={encoder!r} is not one of {', '.join(VIDEO_ENCODERS)}")
    real = keras.ops.greater(frame_mask, 0.5)
    settings = dict(dim=dim, num_heads=num_heads, num_layers=num_layers, max_frames=max_frames,
                    backbone=backbone, weights_path=weights_path)
    return _ENCODERS[encoder].encode(frames, frame_mask, real, **settings)
