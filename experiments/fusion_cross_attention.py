"""Ablation row `fusion_cross_attention`: audio + video (CNN + LSTM), cross-modal attention (the demo model).

    make train EXP=fusion_cross_attention     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video,audio", video_encoder="lstm", fusion="cross_attention"))
    return config
