"""Ablation row `fusion_bottleneck`: audio + video (CNN + LSTM), attention bottlenecks (MBT).

    make train EXP=fusion_bottleneck     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="video,audio", video_encoder="lstm", fusion="bottleneck"))
    return config
