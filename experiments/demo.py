"""Audio-visual fusion on the demo data: article CNN + LSTM for video, log-mel CNN for audio, fused by
cross-modal attention (the settings are `videofusion.config.demo_config`).

    make train EXP=demo
    # = videofusion train --config experiments/demo.py --workdir runs/demo

`--config experiments/demo.py:smoke` shrinks it to a seconds-long smoke run (used by the tests).
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    return demo_config(arg)
