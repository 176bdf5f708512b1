"""Experiment configs: the defaults every `experiments/NAME.py` starts from, and run-config files.

An experiment is a Python file whose `get_config()` returns an `ml_collections.ConfigDict` (the
big_vision / scenic convention). Field names are an interface: scripts and users set them from the
command line (`--config.data.num_frames=16`, `--config.model.fusion=concat`, ...).

Example:

>>> config = base_config()
>>> config.model.fusion, config.train.strategy
('cross_attention', 'auto')
"""

import dataclasses
import json
import os

import ml_collections

from videofusion import fileio

RUN_CONFIG_FILE = "config.json"
# The log-mel features' defaults (those of Google's VGGish / YAMNet), the only copy: `config.data` carries
# them into every run's config.json, so evaluate, export and predict compute a run's features as it was
# trained even if a default here changes later.
MEL_WINDOW_MS, MEL_HOP_MS, MEL_FMIN_HZ, MEL_FMAX_HZ = 25.0, 10.0, 60.0, 7600.0
# Epochs of the demo's single-frame and order-blind ablation rows (`frame`, `frame_pooled_cnn`,
# `frame_avg`), the others' 7 being too few for them: they see one frame (or an average) per clip, and
# the kind they can know is a quarter of each twelve-way label. `frame_pooled_cnn` at seed 0: test
# accuracy 0.125, top-5 0.60 after 7 epochs; 0.201, top-5 1.000 (the right kind for every test video)
# after 20, its validation accuracy at 0.21–0.32 from epoch 5 on while training accuracy rose to 0.62.
SINGLE_FRAME_EPOCHS = 20


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every field; experiments override what they need."""
    config = ml_collections.ConfigDict()
    config.data = ml_collections.ConfigDict(
        dict(
            dir="datasets/demo/records",
            num_frames=8,
            stride=1,
            image_size=64,
            mel_bins=64,
            mel_window_ms=MEL_WINDOW_MS,
            mel_hop_ms=MEL_HOP_MS,
            mel_fmin_hz=MEL_FMIN_HZ,
            mel_fmax_hz=MEL_FMAX_HZ,
            # Filled in from the prepared data's dataset.json when training starts.
            fps=0.0,
            sample_rate=0,
            short_side=0,
            short_videos="loop",  # or "pad": repeat nothing, zero frames past the end, frame_mask 0
            ignore_errors=False,  # skip corrupted records (with a warning) instead of failing
            text_length=16,  # caption tokens per clip (models with the text modality)
            vocabulary_size=2000,  # WordPiece vocabulary learnt from the training captions
            # Keep the labels of only this fraction of each class's training clips (seeded by train.seed,
            # the same clips every run: data/labeled_subset.py); `train` leaves the others out.
            labeled_fraction=1.0,
        )
    )
    # Training augmentation. The frame fields (random_resized_crop … contrast) are applied by the model's
    # first layer on the accelerator (models/frame_preprocessing.py); the stride and the SpecAugment
    # masks by the input pipeline (augment.py).
    config.augment = ml_collections.ConfigDict(
        dict(
            random_resized_crop=True,
            crop_area_min=0.4,
            flip=True,
            stride_jitter=0,
            brightness=0.2,
            contrast=0.2,
            time_masks=2,
            time_mask_fraction=0.1,
            freq_masks=2,
            freq_mask_bins=8,
        )
    )
    config.model = ml_collections.ConfigDict(
        dict(
            modalities="video,audio",
            video_encoder="lstm",
            fusion="cross_attention",
            embed_dim=128,
            num_heads=4,
            num_layers=2,  # transformer blocks (video encoder `transformer`, fusion `bottleneck`)
            num_bottlenecks=4,  # shared tokens of fusion `bottleneck`
            dropout=0.1,
            modality_dropout=0.0,  # probability of dropping a whole modality of a training clip
            # A classifier per modality, its loss added with this weight (0: none). Measured on the demo's
            # kind × pitch clips (tests/test_learning.py's set, cross-attention fusion): without, the fused
            # model learnt the pitch and ignored the picture (0.44, chance 1/6); with 0.5 or 1, 0.79–0.92.
            # Modality dropout (0.3) did not help there (0.40): both modalities are needed at once.
            aux_loss_weight=1.0,
            # "auto": the article's CNN for video encoder `frame`, `pooled_cnn` for the others; or
            # article, pooled_cnn, mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0, resnet50
            frame_backbone="auto",
            backbone_weights="",  # "imagenet" (downloaded once by Keras) or a weights file; "": random
            max_frames=64,  # longest clip the transformer's position embedding covers
            # A `videofusion pretrain` run folder: `train` starts from its encoders (models/transfer.py),
            # frozen for train.backbone_frozen_epochs epochs (all of them with train.linear_probe).
            init_from="",
            # The modalities whose encoders model.init_from loads (comma-separated; "": all of this run's);
            # the others start new (e.g. "audio": the pretrained audio encoder, a video encoder from scratch).
            init_from_modalities="",
        )
    )
    # The recipe (models/optimization.py): the reference trainers' AdamW + warmup + cosine + label smoothing.
    # Measured against Adam at a constant rate (README.md's "Training recipe" has the table): the demo's
    # fusion model 0.986 vs 0.993 test accuracy (6 epochs; training accuracy 0.99 vs 0.95); the
    # appearance set's video-only and fused models 0.483 and 0.792 (15 epochs) vs 0.496 and 0.825 (10);
    # the learning tests pass with both; the single-frame `frame_pooled_cnn` row did worse with one seed
    # of two (top-5 0.60 vs 0.97). Kept: no better on runs of 6–7 epochs, but the standard for the tens
    # of epochs real datasets take.
    config.train = ml_collections.ConfigDict(
        dict(
            epochs=10,
            batch_size=16,  # per replica: the global batch is this × the strategy's replicas
            learning_rate=1e-3,  # the peak, reached at the end of the warmup
            lr_schedule="warmup_cosine",  # or "constant"
            warmup_epochs=1.0,
            final_learning_rate_ratio=0.0,  # the cosine ends at this × learning_rate
            weight_decay=0.05,  # AdamW's decoupled decay of kernels (0: Adam)
            gradient_clip_norm=1.0,  # global norm of the gradient (0: no clipping)
            label_smoothing=0.1,
            class_weights="none",  # or "balanced": n / (classes × n_c) from the training counts
            early_stopping_patience=0,  # stop after this many epochs without a better val accuracy (0: never)
            precision="float32",  # or mixed_float16 (with loss scaling), mixed_bfloat16
            jit_compile="auto",  # XLA: "auto" (Keras decides), "true" or "false"
            # Under JAX: the compiled programs, kept for the next run that compiles the same ones (a resumed
            # run, a rerun: its first step then skips XLA; training/compilation_cache.py); "": JAX's own setting.
            compilation_cache="~/.cache/videofusion/jax",
            strategy="auto",
            seed=0,
            backbone_frozen_epochs=0,  # epochs with the frame backbone frozen (fine-tuning pretrained weights)
            backbone_learning_rate_scale=1.0,  # afterwards the backbone learns at this × learning_rate
            # A confusion matrix and sample clips in TensorBoard at each validation (dashboards.py): the
            # clips cost one small inference call per epoch. False leaves them out (quick runs, tests).
            validation_dashboards=True,
            # Train only what is not loaded from model.init_from (the heads, and fusion layers if any):
            # the linear probe of a pretrained representation.
            linear_probe=False,
            # Self-training (training/pseudo_labels.py): a trained run with the same labels (e.g. a fused one
            # fine-tuned on the few labels) labels the training clips that have no label here, and the
            # pseudo_label_fraction of them it is most confident of join the labeled ones.
            pseudo_labels_from="",
            pseudo_label_fraction=0.5,
            # "grpc://HOST:PORT": the training input is made by the workers of the tf.data service whose
            # dispatcher listens there (data/service.py; README "Input across hosts"); "": on this machine.
            data_service="",
        )
    )
    # `videofusion pretrain` (training/pretrain.py): the encoders of config.model learn from the agreement of
    # a clip's modalities on every training clip, labels unused; the recipe's other fields come from
    # config.train (schedule, clipping, precision, strategy, seed).
    config.pretrain = ml_collections.ConfigDict(
        dict(
            epochs=40,
            batch_size=32,  # per replica; the negatives are the global batch's other clips
            learning_rate=1e-3,
            weight_decay=0.0,
            projection_dim=64,
            temperature=0.1,  # learnt from this start
            # Examples per clip in a batch (batch_size counts examples): each view its own stride, start
            # and square, its audio window starting with its frames; the views of a clip are positives of
            # each other in the cross-modal term, and in the within-modality term when its weight is > 0.
            views_per_clip=1,
            within_modal_weight=0.0,
        )
    )
    config.eval = ml_collections.ConfigDict(
        dict(split="test", batch_size=32, num_clips=1, num_crops=1, top_k=5)
    )
    return config


def dataclass_from_section(cls, section):
    """An instance of the dataclass `cls` whose every field is the same-named field of a config `section`.

    >>> @dataclasses.dataclass
    ... class Sizes:
    ...     num_frames: int
    >>> dataclass_from_section(Sizes, base_config().data)
    Sizes(num_frames=8)
    """
    return cls(**{field.name: section[field.name] for field in dataclasses.fields(cls)})


def demo_config(arg: str = "", epochs: int = 7) -> ml_collections.ConfigDict:
    """The settings every experiment on the demo data shares (`experiments/demo.py` and the ablation rows),
    training for `epochs`.

    `arg == "smoke"` shrinks it to a seconds-long run (the tests use it).
    """
    config = base_config()
    config.data.update(dict(dir="datasets/demo/records", num_frames=8, stride=2, image_size=48))
    config.model.update(dict(modalities="video,audio", video_encoder="lstm", fusion="cross_attention", embed_dim=64))
    # Mirroring would swap the left and right classes; cropping could cut the object out of the frame;
    # frequency masks could hide the tone. Time-based augmentation is safe.
    config.augment.update(dict(flip=False, random_resized_crop=False, freq_masks=0, stride_jitter=1))
    config.train.update(dict(epochs=epochs, batch_size=16, learning_rate=2e-3))
    if arg == "smoke":
        config.data.update(dict(num_frames=4, image_size=32, mel_bins=16))
        config.model.embed_dim = 16
        config.train.update(dict(epochs=1, batch_size=4))
    return config


def save_run_config(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Writes the resolved config of a run to `workdir/config.json`; returns the path."""
    path = os.path.join(workdir, RUN_CONFIG_FILE)
    fileio.write_json(path, json.loads(config.to_json()))
    return path


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run in `workdir` was trained with."""
    path = os.path.join(workdir, RUN_CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {workdir} a `videofusion train` workdir?")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    config = base_config()  # fields added since the run was trained get their defaults
    config.update(saved)
    return config
