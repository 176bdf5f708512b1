"""Audio-visual fusion on the demo data: article CNN + LSTM for video, log-mel CNN for audio, fused by
cross-modal attention.

    make train EXP=demo
    # = videofusion train --config experiments/demo.py --workdir runs/demo

`--config experiments/demo.py:smoke` shrinks it to a seconds-long smoke run (used by the tests).
"""

from videofusion.config import base_config


def get_config(arg: str = ""):
    config = base_config()
    config.data.dir = "datasets/demo/records"
    config.data.num_frames = 8
    config.data.stride = 2
    config.data.image_size = 48
    config.model.modalities = "video,audio"
    config.model.video_encoder = "lstm"
    config.model.fusion = "cross_attention"
    config.model.embed_dim = 64
    # Mirroring would swap the left and right classes; cropping could cut the square out of the frame;
    # frequency masks could hide the tone. Time-based augmentation is safe.
    config.augment.flip = False
    config.augment.random_resized_crop = False
    config.augment.freq_masks = 0
    config.augment.stride_jitter = 1
    config.train.epochs = 15
    config.train.batch_size = 16
    config.train.learning_rate = 2e-3
    if arg == "smoke":
        config.data.num_frames = 4
        config.data.image_size = 32
        config.data.mel_bins = 16
        config.model.embed_dim = 16
        config.train.epochs = 1
        config.train.batch_size = 4
    return config
