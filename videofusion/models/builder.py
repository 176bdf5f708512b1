"""`build_model`: a `config.model` section → a Keras functional classifier over named dict inputs.

Inputs (`contract/tensors.py`), per modality in `model.modalities`:
- video: `frames` uint8 `[num_frames, frame_size, frame_size, 3]` (squares of the data's short side)
  and `frame_mask` `[num_frames]`; the first layer (`FramePreprocessing`) resizes them to `image_size`,
  scales them to [0, 1] and, in training, applies `frame_augment` (random resized crop, flip, colour);
- audio: `waveform` `[audio_samples]` (the audio window that plays with the frames) and
  `audio_present` `[1]` (0 for a silent or audio-less clip); the first layer (`AudioPreprocessing`)
  computes its log-mel (`shapes.log_mel`) and, in training, applies `audio_augment` (SpecAugment);
- text: `tokens` int `[text_length]` caption ids (all zero: no caption).

Outputs: a dict with `classes` (probabilities, float32 also under mixed precision) and, when
`model.aux_loss_weight > 0` (the default recipe, `config.py`), one `aux_<modality>` head per modality on
that modality's own embedding, trained by its own loss: the cure Wang, Tran and Feiszli (CVPR 2020)
recommend when fusion learns from the modality that is quickest to learn and starves the other. The
aux heads' logits are also added to the fused head's, each gated by its modality's presence, so that
`classes` knows at once what each modality knows (a product of experts) while the fused head is still
learning to combine them; on the demo's kind × pitch clips (`tests/test_learning.py`'s set, 12
epochs, one run each) it moved the fused accuracy from 0.77 to 0.81 at 48×48 and by +0.04, −0.05
and +0.10 for cross-attention, concat and bottleneck fusion at 32×32: +0.03 on average, within the
run-to-run spread, but not a loss.
`model.modality_dropout` drops whole modalities at random in training (never all of a clip's).

Example:

>>> from ml_collections import ConfigDict
>>> from videofusion.config import base_config
>>> cfg = base_config().model
>>> cfg.update(dict(embed_dim=32, num_heads=4))
>>> from videofusion.contract.log_mel import LogMelSpec
>>> log_mel = LogMelSpec(sample_rate=16000, mel_bins=16, window_ms=25.0, hop_ms=10.0, fmin_hz=60.0, fmax_hz=7600.0)
>>> shapes = InputShapes(num_frames=4, image_size=32, audio_samples=6400, log_mel=log_mel, frame_size=40)
>>> model = build_model(cfg, shapes, 4)
>>> sorted(model.input.keys()), model.input["frames"].shape, model.output["classes"].shape
(['audio_present', 'frame_mask', 'frames', 'waveform'], (None, 4, 40, 40, 3), (None, 4))
"""

import dataclasses
from typing import Optional

import keras

from videofusion.contract import modalities, tensors
from videofusion.contract.log_mel import LogMelSpec
from videofusion.models.audio_encoder import encode_audio
from videofusion.models.audio_preprocessing import AudioPreprocessing, SpecAugment
from videofusion.models.frame_preprocessing import FrameAugment, FramePreprocessing
from videofusion.models.fusion import Stream, fuse, pool
from videofusion.models.layers import ModalityDropout
from videofusion.models.video import encode_video


@dataclasses.dataclass(frozen=True)
class InputShapes:
    """Static sizes of the model inputs (from the data config); `num_frames` None: any length.

    `frame_size` is the side of the square frames the model takes (the data's short side), `image_size`
    the side its video encoder works at; `frame_size` 0 means the same as `image_size`. `audio_samples`
    is the length of a clip's audio window, `log_mel` the features the model computes from it.
    """

    num_frames: Optional[int]
    image_size: int
    audio_samples: int
    log_mel: LogMelSpec
    text_length: int = 16
    vocabulary_size: int = 0
    frame_size: int = 0


def modality_streams(cfg, shapes: InputShapes, chosen, frame_augment: FrameAugment, audio_augment: SpecAugment,
                     seed):
    """(inputs dict, streams dict) for the chosen modalities: the encoders `build_model` and
    `pretraining.build_pretraining_model` share, their layers named alike in both."""
    inputs, streams = {}, {}
    if modalities.VIDEO in chosen:
        side = shapes.frame_size or shapes.image_size
        frames = keras.Input((shapes.num_frames, side, side, 3), dtype="uint8", name=tensors.FRAMES)
        frame_mask = keras.Input((shapes.num_frames,), name=tensors.FRAME_MASK)
        inputs.update({tensors.FRAMES: frames, tensors.FRAME_MASK: frame_mask})
        pixels = FramePreprocessing(shapes.image_size, frame_augment, seed, name="frame_preprocessing")(
            frames, frame_mask
        )
        tokens, mask = encode_video(
            pixels, frame_mask, cfg.video_encoder, cfg.embed_dim, cfg.num_heads, cfg.num_layers,
            max_frames=shapes.num_frames or cfg.max_frames, backbone=cfg.frame_backbone,
            weights=cfg.backbone_weights,
        )
        streams[modalities.VIDEO] = Stream(tokens, mask, keras.ops.ones_like(frame_mask[:, :1]))
    if modalities.AUDIO in chosen:
        waveform = keras.Input((shapes.audio_samples,), name=tensors.WAVEFORM)
        present = keras.Input((1,), name=tensors.AUDIO_PRESENT)
        inputs.update({tensors.WAVEFORM: waveform, tensors.AUDIO_PRESENT: present})
        audio_seed = None if seed is None else seed + 1  # draws of their own, not the frames'
        mel = AudioPreprocessing(shapes.log_mel, audio_augment, audio_seed, name="audio_preprocessing")(waveform)
        streams[modalities.AUDIO] = Stream(encode_audio(mel, cfg.embed_dim), None, present)
    if modalities.TEXT in chosen:
        from videofusion.models.text_encoder import encode_text  # keras-hub only when text is used

        token_ids = keras.Input((shapes.text_length,), dtype="int32", name=tensors.TOKENS)
        inputs[tensors.TOKENS] = token_ids
        tokens, mask = encode_text(token_ids, shapes.vocabulary_size, cfg.embed_dim, cfg.num_heads)
        present = keras.ops.cast(keras.ops.any(mask, axis=1, keepdims=True), "float32")
        streams[modalities.TEXT] = Stream(tokens, mask, present)
    return inputs, streams


def _drop_modalities(streams: dict, rate: float) -> dict:
    if rate <= 0 or len(streams) < 2:
        return streams
    order = sorted(streams)
    kept = ModalityDropout(rate, name="modality_dropout")([streams[n].present for n in order])
    return {n: dataclasses.replace(streams[n], present=p) for n, p in zip(order, kept)}


def build_model(
    cfg, shapes: InputShapes, num_classes: int, frame_augment: FrameAugment = FrameAugment(),
    audio_augment: SpecAugment = SpecAugment(), seed=None,
) -> keras.Model:
    """The classifier that `cfg` (a `config.model`) describes, for `num_classes` classes.

    `frame_augment` and `audio_augment` are the augmentation its first video and audio layers apply in
    training (none by default), drawn from `seed`.
    """
    chosen = modalities.parse(cfg.modalities)
    # === Inputs and encoders ===
    inputs, streams = modality_streams(cfg, shapes, chosen, frame_augment, audio_augment, seed)
    # === Fusion and heads ===
    outputs, aux_logits = {}, {}
    if cfg.aux_loss_weight > 0 and len(streams) > 1:
        for name, stream in streams.items():
            aux_logits[name] = keras.layers.Dense(num_classes, dtype="float32", name=f"aux_{name}_logits")(
                pool(f"aux_{name}", stream)
            )
            outputs[f"aux_{name}"] = keras.layers.Softmax(dtype="float32", name=f"aux_{name}")(aux_logits[name])
    streams = _drop_modalities(streams, cfg.modality_dropout)
    embedding = fuse(streams, cfg.fusion, cfg.embed_dim, cfg.num_heads, cfg.num_layers, cfg.num_bottlenecks)
    embedding = keras.layers.Dropout(cfg.dropout, name="head_dropout")(embedding)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="fused_logits")(embedding)
    if aux_logits:  # the modalities' own heads vote too, each gated by its modality's presence
        votes = [aux_logits[n] * keras.ops.cast(streams[n].present, "float32") for n in sorted(aux_logits)]
        logits = keras.layers.Add(name="fused_and_modality_logits")([logits, *votes])
    outputs[tensors.CLASSES] = keras.layers.Softmax(dtype="float32", name=tensors.CLASSES)(logits)
    # === Functional Model ===
    name = "_".join([*chosen, cfg.video_encoder, cfg.fusion])
    return keras.Model(inputs, outputs, name=name)


def build_classifier(config, shapes: InputShapes, num_classes: int) -> keras.Model:
    """The classifier of the experiment `config` (a whole config, not its `model` section), as
    `videofusion train` builds it: `build_model` with the experiment's augmentation, drawn from
    `train.seed`.

    >>> from videofusion.config import demo_config
    >>> from videofusion.contract.log_mel import LogMelSpec
    >>> log_mel = LogMelSpec(16000, 16, 25.0, 10.0, 60.0, 7600.0)
    >>> shapes = InputShapes(num_frames=4, image_size=32, audio_samples=6400, log_mel=log_mel)
    >>> build_classifier(demo_config("smoke"), shapes, 3).output["classes"].shape
    (None, 3)
    """
    return build_model(config.model, shapes, num_classes, frame_augment=FrameAugment.from_config(config.augment),
                       audio_augment=SpecAugment.from_config(config.augment), seed=config.train.seed)
