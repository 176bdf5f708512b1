"""The audio branch's first layer: a clip's waveform → log-mel spectrogram, with SpecAugment in
training — run on the accelerator, as part of the model.

The input pipeline hands each clip's audio over as the window of waveform samples that plays with its
frames and stops there, as it stops at uint8 squares for the frames (`frame_preprocessing.py`). The
log-mel's short-time Fourier transform cost a training host a quarter of the pipeline's CPU time
(`benchmarks/bench_pipeline.py`: 1.7 of 6.7 CPU ms per clip on 2 cores); on an accelerator it is a
batched FFT and one matrix product. Because the layer is part of the model, evaluation and the
SavedModel compute the very features training computed (no train/serve skew).

The features are those of `contract/log_mel.py` (its filterbank, its framing: whole frames only, so
`mel_frames = 1 + (samples - window) // hop`). `keras.ops.stft` centres a window shorter than the FFT
in the FFT's frame; the waveform is padded by that offset on both sides so that frame `i` is windowed
over samples `[i * hop, i * hop + window)`, the frames of `tf.signal.stft`.

SpecAugment (Park et al., 2019), in training, per clip: `time_masks` spans of up to
`time_mask_fraction` of the time steps and `freq_masks` spans of up to `freq_mask_bins` mel bins, each
of a random width from 0, set to the clip's mean log-mel.

Example:

>>> import numpy as np
>>> from videofusion.contract.log_mel import LogMelSpec
>>> spec = LogMelSpec(sample_rate=16000, mel_bins=8, window_ms=25.0, hop_ms=10.0, fmin_hz=60.0, fmax_hz=7600.0)
>>> layer = AudioPreprocessing(spec)
>>> tone = np.sin(2 * np.pi * 440.0 * np.arange(3200) / 16000).astype("float32")[None]
>>> log_mel = keras.ops.convert_to_numpy(layer(tone))
>>> log_mel.shape, int(log_mel[0, 5].argmax())  # 18 steps of 10 ms; 440 Hz falls in mel bin 1
((1, 18, 8), 1)
"""

import dataclasses

import keras
from keras import ops

from videofusion import config as config_lib
from videofusion.contract import log_mel
from videofusion.models.layers import clip_uniforms


@dataclasses.dataclass(frozen=True)
class SpecAugment:
    """What `AudioPreprocessing` masks in training (the SpecAugment fields of `config.augment`)."""

    time_masks: int = 0
    time_mask_fraction: float = 0.1
    freq_masks: int = 0
    freq_mask_bins: int = 8

    @classmethod
    def from_config(cls, augment_config) -> "SpecAugment":
        return config_lib.dataclass_from_section(cls, augment_config)

    @property
    def active(self) -> bool:
        return self.time_masks > 0 or self.freq_masks > 0


def _mask_spans(u, length: int, count: int, max_width: int):
    """`[batch, length]` bool: per clip, `count` spans of a random width in `[0, max_width]` at random
    places, from `2 * count` uniforms per clip (`u` `[batch, 2 * count]`: widths, then places)."""
    widths = ops.minimum(ops.floor(u[:, :count] * (max_width + 1)), float(max_width))
    starts = ops.floor(u[:, count:] * (length - widths + 1))
    positions = ops.arange(length, dtype="float32")[None, :, None]
    inside = (positions >= starts[:, None, :]) & (positions < (starts + widths)[:, None, :])
    return ops.any(inside, axis=-1)


@keras.saving.register_keras_serializable(package="videofusion")
class AudioPreprocessing(keras.layers.Layer):
    """float32 waveform windows `[batch, samples]` → float32 log-mel `[batch, mel_frames, mel_bins]`,
    SpecAugment-masked in training.

    Args:
      log_mel_spec: the features' parameters (`contract.log_mel.LogMelSpec`, or its fields as a dict).
      augment: the training masks (`SpecAugment`, or its fields as a dict); none by default.
      seed: the masks' seed.
    """

    def __init__(self, log_mel_spec, augment=None, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # the spectrum stays in float32 under mixed precision
        super().__init__(**kwargs)
        self.log_mel_spec = (log_mel_spec if isinstance(log_mel_spec, log_mel.LogMelSpec)
                             else log_mel.LogMelSpec(**log_mel_spec))
        self.augment = augment if isinstance(augment, SpecAugment) else SpecAugment(**(augment or {}))
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        self._mel_matrix = log_mel.mel_matrix(self.log_mel_spec)

    def _spectrogram(self, waveform):
        spec = self.log_mel_spec
        offset = (spec.fft_length - spec.window) // 2
        padded = ops.pad(waveform, [[0, 0], [offset, spec.fft_length - spec.window - offset]])
        real, imaginary = ops.stft(padded, sequence_length=spec.window, sequence_stride=spec.hop,
                                   fft_length=spec.fft_length, window="hann", center=False)
        power = ops.square(real) + ops.square(imaginary)
        mel = ops.matmul(power, ops.convert_to_tensor(self._mel_matrix))
        return ops.log(mel + log_mel.LOG_OFFSET)

    def _masked(self, spectrogram):
        aug = self.augment
        time_steps, bins = spectrogram.shape[1], spectrogram.shape[2]
        u = clip_uniforms(self._seed_generator, 2 * (aug.time_masks + aug.freq_masks), spectrogram)
        mask = ops.zeros_like(spectrogram, dtype="bool")
        split = 2 * aug.time_masks
        if aug.time_masks:
            max_width = max(1, int(aug.time_mask_fraction * time_steps))
            mask = mask | _mask_spans(u[:, :split], time_steps, aug.time_masks, max_width)[:, :, None]
        if aug.freq_masks:
            max_width = min(aug.freq_mask_bins, bins)
            mask = mask | _mask_spans(u[:, split:], bins, aug.freq_masks, max_width)[:, None, :]
        mean = ops.mean(spectrogram, axis=(1, 2), keepdims=True)
        return ops.where(mask, mean, spectrogram)

    def call(self, waveform, training=False):
        spectrogram = self._spectrogram(ops.cast(waveform, "float32"))
        return self._masked(spectrogram) if training and self.augment.active else spectrogram

    def compute_output_shape(self, waveform_shape):
        return (waveform_shape[0], self.log_mel_spec.num_frames(waveform_shape[1]), self.log_mel_spec.mel_bins)

    def get_config(self):
        config = super().get_config()
        config.update(log_mel_spec=dataclasses.asdict(self.log_mel_spec), augment=dataclasses.asdict(self.augment),
                      seed=self.seed)
        return config
