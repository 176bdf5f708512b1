"""Cross-modal self-supervised pretraining: the encoders of `build_model`, taught by the agreement of a
clip's modalities, no label needed.

`build_pretraining_model` puts, on each modality's encoder (the same layers, named as in the
classifier, so that `model.init_from` carries them over by name: `transfer.py`), its masked mean
(`<modality>_pool`), a two-layer projection head (`<modality>_projection_head_1`, `_2`) and an L2
normalisation; `ContrastiveScale` multiplies every unit vector by √s, s = 1 / temperature learnt from
`pretrain.temperature`, so that a dot product of two outputs is s × their cosine. Its output
`embeddings` is `[batch, modalities, projection_dim]`, the modalities in sorted order.

The loss is `training/contrastive.py`'s (it gathers the other replicas' clips under `tf.distribute`).
The variant is the common core of the published audio-visual methods (AVID's cross-modal term, CLIP's
learnt temperature and projection heads), not picked among alternatives by measurement: cross-modal
pairs only (no within-modality views: the pipeline draws one view per clip per epoch), the training
augmentations on both modalities (the pipeline's and the first layers'), negatives from the batch (no
memory queue). What it gives is in
`benchmarks/bench_pretrain.py`'s table (README, "Few labels"); the alternatives are not measured yet.

Example:

>>> from videofusion.config import base_config
>>> cfg = base_config().model
>>> cfg.update(dict(embed_dim=16, video_encoder="frame_avg"))
>>> from videofusion.contract.log_mel import LogMelSpec
>>> log_mel = LogMelSpec(sample_rate=16000, mel_bins=16, window_ms=25.0, hop_ms=10.0, fmin_hz=60.0, fmax_hz=7600.0)
>>> shapes = InputShapes(num_frames=4, image_size=32, audio_samples=6400, log_mel=log_mel)
>>> model = build_pretraining_model(cfg, shapes, projection_dim=8, temperature=0.1)
>>> model.output[EMBEDDINGS].shape
(None, 2, 8)
"""

import math

import keras
from keras import ops

from videofusion.contract import modalities
from videofusion.models.audio_preprocessing import SpecAugment
from videofusion.models.builder import InputShapes, modality_streams
from videofusion.models.frame_preprocessing import FrameAugment
from videofusion.models.fusion.streams import pool

_PACKAGE = "videofusion"
EMBEDDINGS = "embeddings"
SCALE_LAYER = "contrastive_scale"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContrastiveScale(keras.layers.Layer):
    """Unit vectors `[..., d]` → × √s, with s = exp(`log_scale`) learnt, from 1 / `temperature`, at most 100
    (CLIP's clip), so that the dot product of two outputs is s × the cosine of their inputs."""

    def __init__(self, temperature: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def build(self, input_shape):
        self.log_scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(1.0 / self.temperature)), name="log_scale"
        )

    def call(self, unit):
        scale = ops.exp(ops.minimum(self.log_scale, math.log(100.0)))
        return unit * ops.cast(ops.sqrt(scale), unit.dtype)

    def current_temperature(self) -> float:
        """1 / s, as now learnt."""
        return float(1.0 / math.exp(min(float(ops.convert_to_numpy(self.log_scale)), math.log(100.0))))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class L2Normalize(keras.layers.Layer):
    """`[..., d]` → unit vectors along the last axis (float32)."""

    def call(self, x):
        x = ops.cast(x, "float32")
        return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), 1e-12))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StackModalities(keras.layers.Layer):
    """A list of `[batch, d]` → `[batch, len(list), d]`."""

    def call(self, parts):
        return ops.stack(parts, axis=1)

    def compute_output_shape(self, shapes):
        return (shapes[0][0], len(shapes), shapes[0][-1])


def build_pretraining_model(cfg, shapes: InputShapes, projection_dim: int, temperature: float,
                            frame_augment: FrameAugment = FrameAugment(), audio_augment: SpecAugment = SpecAugment(),
                            seed=None) -> keras.Model:
    """The encoders of `cfg` (a `config.model`: its modalities, at least two) with projection heads →
    `{"embeddings": [batch, modalities, projection_dim]}` (scaled unit vectors, modalities sorted)."""
    chosen = modalities.parse(cfg.modalities)
    if len(chosen) < 2:
        raise ValueError(f"model.modalities={cfg.modalities!r}: pretraining needs two modalities or more")
    inputs, streams = modality_streams(cfg, shapes, chosen, frame_augment, audio_augment, seed)
    projected = []
    for name in sorted(streams):
        hidden = keras.layers.Dense(cfg.embed_dim, activation="relu", name=f"{name}_projection_head_1")(
            pool(name, streams[name]))
        projected.append(L2Normalize(name=f"{name}_unit")(
            keras.layers.Dense(projection_dim, name=f"{name}_projection_head_2")(hidden)))
    stacked = StackModalities(name="stack_modalities")(projected)
    outputs = {EMBEDDINGS: ContrastiveScale(temperature, name=SCALE_LAYER, dtype="float32")(stacked)}
    return keras.Model(inputs, outputs, name="pretrain_" + "_".join([*chosen, cfg.video_encoder]))
