"""Ablation row `fusion_concat`: audio + video (CNN + LSTM), late fusion by concatenation.

    make train EXP=fusion_concat     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video,audio", video_encoder="lstm", fusion="concat"))
    return config
