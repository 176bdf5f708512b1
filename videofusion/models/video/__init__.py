"""Video encoders: frames `[batch, time, size, size, 3]` + frame mask → (tokens `[batch, t, dim]`, mask).

One module per encoder (`model.video_encoder`):

- `frame` (`frame.py`): a frame CNN on the middle real frame — the baseline, blind to motion;
- `frame_avg` (`frame_avg.py`): the frame CNN on every frame, averaged — order-blind by design;
- `lstm` (`lstm.py`): appearance and motion features per frame (`motion.py`), then an LSTM;
- `transformer` (`transformer.py`): the same per-frame features, position embedding, self-attention.

The frame CNN is `model.frame_backbone` (`frame_backbones.py`); `auto` picks the reference article's
network for the `frame` baseline (it is the article's model) and `pooled_cnn`, which learns what is in
a frame wherever it is, for every other encoder.

Example:

>>> frames, mask = keras.Input((8, 32, 32, 3)), keras.Input((8,))
>>> tokens, token_mask = encode_video(frames, mask, "lstm", dim=64)
>>> tokens.shape
(None, 8, 64)
>>> default_backbone("frame"), default_backbone("lstm")
('article', 'pooled_cnn')
"""

import keras

from videofusion.models.video import frame, frame_avg, lstm, transformer

_ENCODERS = {"frame": frame, "frame_avg": frame_avg, "lstm": lstm, "transformer": transformer}
VIDEO_ENCODERS = tuple(_ENCODERS)
AUTO_BACKBONE = "auto"


def default_backbone(encoder: str) -> str:
    """The frame backbone `model.frame_backbone = "auto"` stands for with video encoder `encoder`."""
    return "article" if encoder == "frame" else "pooled_cnn"


def encode_video(frames, frame_mask, encoder: str, dim: int, num_heads: int = 4, num_layers: int = 2,
                 max_frames: int = 64, backbone: str = AUTO_BACKBONE, weights: str = ""):
    """Applies video encoder `encoder`; returns (tokens, bool mask `[batch, t]` of real tokens).

    `weights` starts the frame backbone from pretrained weights (`imagenet` or a file; "" for none).
    """
    if encoder not in _ENCODERS:
        raise ValueError(f"model.video_encoder={encoder!r} is not one of {', '.join(VIDEO_ENCODERS)}")
    if backbone == AUTO_BACKBONE:
        backbone = default_backbone(encoder)
    real = keras.ops.greater(frame_mask, 0.5)
    settings = dict(dim=dim, num_heads=num_heads, num_layers=num_layers, max_frames=max_frames,
                    backbone=backbone, weights=weights)
    return _ENCODERS[encoder].encode(frames, frame_mask, real, **settings)
