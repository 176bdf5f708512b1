"""Ablation row `frame`: video only, the article's CNN on the middle frame (the baseline; cannot see motion or hear).

    make train EXP=frame     # or all rows: make ablation
"""

from videofusion.config import SINGLE_FRAME_EPOCHS, demo_config


def get_config(arg: str = ""):
    config = demo_config(arg, epochs=SINGLE_FRAME_EPOCHS)
    config.model.update(dict(modalities="video", video_encoder="frame", fusion="concat"))
    return config
