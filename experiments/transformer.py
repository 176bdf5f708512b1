"""Ablation row `transformer`: video only, per-frame appearance and motion features + temporal transformer.

    make train EXP=transformer     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video", video_encoder="transformer", fusion="concat"))
    return config
