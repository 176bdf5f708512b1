"""Ablation row `lstm`: video only, per-frame appearance (`pooled_cnn`) and motion features + LSTM.

    make train EXP=lstm     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video", video_encoder="lstm", fusion="concat"))
    return config
