"""Ablation row `audio`: audio only, the log-mel CNN.

    make train EXP=audio     # or all rows: make ablation
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    config.model.update(dict(modalities="audio", fusion="concat"))
    return config
