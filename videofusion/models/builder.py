"""`build_model`: a `config.model` section → a Keras functional classifier over named dict inputs.

Inputs are named after `names.FRAMES` (float `[num_frames, size, size, 3]` in [0, 1]) and `names.MEL`
(log-mel `[mel_frames, mel_bins]`), one per modality in `model.modalities`; the output is class
probabilities (float32, also under mixed precision).

Example:

>>> from ml_collections import ConfigDict
>>> cfg = ConfigDict(dict(modalities="video,audio", video_encoder="lstm", fusion="cross_attention",
...                       embed_dim=32, num_heads=4, dropout=0.1))
>>> model = build_model(cfg, InputShapes(num_frames=4, image_size=32, mel_frames=38, mel_bins=16), 4)
>>> sorted(model.input.keys()), model.output_shape
(['frames', 'mel'], (None, 4))
"""

import dataclasses

import keras

from videofusion import names
from videofusion.models.audio_encoder import encode_audio
from videofusion.models.fusion import fuse
from videofusion.models.video_encoders import encode_video


@dataclasses.dataclass(frozen=True)
class InputShapes:
    """Static sizes of the model inputs (from the data config)."""

    num_frames: int
    image_size: int
    mel_frames: int
    mel_bins: int


def parse_modalities(modalities: str) -> tuple:
    """`"video,audio"` → `("audio", "video")`; raises on an unknown or empty list."""
    chosen = tuple(sorted({m.strip() for m in modalities.split(",") if m.strip()}))
    unknown = [m for m in chosen if m not in (names.VIDEO, names.AUDIO)]
    if not chosen or unknown:
        raise ValueError(
            f"model.modalities={modalities!r}: expected a comma-separated subset of video,audio"
        )
    return chosen


def build_model(model_config, shapes: InputShapes, num_classes: int) -> keras.Model:
    """The classifier that `model_config` describes, for `num_classes` classes."""
    modalities = parse_modalities(model_config.modalities)
    dim = model_config.embed_dim
    # === Inputs ===
    inputs, tokens = {}, {}
    if names.VIDEO in modalities:
        frames = keras.Input((shapes.num_frames, shapes.image_size, shapes.image_size, 3), name=names.FRAMES)
        inputs[names.FRAMES] = frames
        tokens[names.VIDEO] = encode_video(frames, model_config.video_encoder, dim)
    if names.AUDIO in modalities:
        mel = keras.Input((shapes.mel_frames, shapes.mel_bins), name=names.MEL)
        inputs[names.MEL] = mel
        tokens[names.AUDIO] = encode_audio(mel, dim)
    # === Fusion and head ===
    embedding = fuse(tokens, model_config.fusion, dim, model_config.num_heads)
    embedding = keras.layers.Dropout(model_config.dropout, name="head_dropout")(embedding)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(embedding)
    # === Functional Model ===
    name = "_".join([*modalities, model_config.video_encoder, model_config.fusion])
    return keras.Model(inputs, outputs, name=name)
