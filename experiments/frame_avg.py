"""Ablation row `frame_avg`: video only, the CNN on every frame averaged over time (order-blind).

    make train EXP=frame_avg     # or all rows: make ablation
"""

from videofusion.config import SINGLE_FRAME_EPOCHS, demo_config


def get_config(arg: str = ""):
    config = demo_config(arg, epochs=SINGLE_FRAME_EPOCHS)
    config.model.update(dict(modalities="video", video_encoder="frame_avg", fusion="concat"))
    return config
