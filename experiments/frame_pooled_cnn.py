"""Ablation row `frame_pooled_cnn`: video only, the middle frame through `pooled_cnn` instead of the
article's network — what one frame can know (the kind of object) when the CNN can find it anywhere.

    make train EXP=frame_pooled_cnn     # or all rows: make ablation
"""

from videofusion.config import SINGLE_FRAME_EPOCHS, demo_config


def get_config(arg: str = ""):
    config = demo_config(arg, epochs=SINGLE_FRAME_EPOCHS)
    config.model.update(dict(modalities="video", video_encoder="frame", frame_backbone="pooled_cnn", fusion="concat"))
    return config
