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
learnt temperature and projection heads): cross-modal pairs, one view per clip, the training
augmentations on both modalities (the pipeline's and the first layers'), negatives from the batch (no
memory queue). Within-modality views are an option (`pretrain.views_per_clip=2`: two temporal views
of each clip, each with its own stride, start and audio window; `pretrain.within_modal_weight`: their
within-modality term, as AVID+CMA and SimCLR add), measured against the default on the agreement set
with 10 % of the labels (`benchmarks/bench_pretrain.py`'s rows, 50 pretraining epochs; by hand, one run
each; test accuracy, then the share right in the digit / in the direction):

| pretraining | video fine-tuned | fused fine-tuned | linear probe | minutes |
|---|---|---|---|---|
| cross-modal, one view (default) | 0.505 (0.84 / 0.61) | 0.605 (0.90 / 0.69) | 0.570 (0.985 / 0.57) | 8 |
| two views, within-modality weight 1 | 0.390 (0.50 / 0.81) | 0.550 (0.79 / 0.73) | 0.405 (0.65 / 0.66) | 16 |
| two views, within-modality weight 0.3 | 0.370 (0.49 / 0.79) | 0.515 (0.77 / 0.68) | 0.465 (0.73 / 0.65) | 16 |

The within-clip views keep what only the picture shows (the direction of travel: 0.81 against 0.61
fine-tuned) but trade away what both modalities share (the digit, 0.50 against 0.84), at twice the
time: the default stays cross-modal.

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
        projected.append(L2Normalize(name=_unit_layer(name))(
            keras.layers.Dense(projection_dim, name=f"{name}_projection_head_2")(hidden)))
    stacked = StackModalities(name="stack_modalities")(projected)
    outputs = {EMBEDDINGS: ContrastiveScale(temperature, name=SCALE_LAYER, dtype="float32")(stacked)}
    return keras.Model(inputs, outputs, name="pretrain_" + "_".join([*chosen, cfg.video_encoder]))


def _unit_layer(modality: str) -> str:
    return f"{modality}_unit"


def is_pretraining_model(model: keras.Model) -> bool:
    """Whether `model` is a `build_pretraining_model` (its output `embeddings`), not a classifier."""
    return isinstance(model.output, dict) and EMBEDDINGS in model.output


def modality_spaces(model: keras.Model) -> keras.Model:
    """A pretraining model → `{modality: [batch, projection_dim]}`, each modality's unit vector before the
    learnt scale: the spaces in which a clip's modalities agree (cosine), for retrieval across them."""
    names = sorted(layer.name.removesuffix("_unit") for layer in model.layers if isinstance(layer, L2Normalize))
    return keras.Model(model.input, {name: model.get_layer(_unit_layer(name)).output for name in names},
                       name="modality_spaces")

