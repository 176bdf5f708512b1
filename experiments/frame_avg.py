"""Ablation row `frame_avg`: video only, the CNN on every frame averaged over time (order-blind).

    make train EXP=frame_avg     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video", video_encoder="frame_avg", fusion="concat"))
    return config
