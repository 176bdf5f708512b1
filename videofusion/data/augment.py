"""Training augmentation in the input pipeline: TensorFlow ops driven by uniform random numbers drawn
once per clip.

`draw_uniforms(seed, aug)` draws every random number a clip needs in one stateless op (fixed by the
example's seed, so `train.seed` makes the training input reproducible; one draw instead of one per
decision keeps the per-clip op count low). The pipeline draws here the clip's frame-rate jitter
(random stride), its start, where its square sits along the frame's long side, and the audio's
SpecAugment masks (Park et al., 2019). The image augmentation — random resized crop, flip, brightness
and contrast — runs on the accelerator, in the model's first layer (`models/frame_preprocessing.py`).

Example:

>>> aug = Augmentation(stride_jitter=1)
>>> u = draw_uniforms(tf.constant([1, 2], tf.int64), aug)
>>> int(random_int(u[0], 1, 3)) in (1, 2, 3), u.shape.as_list() == [aug.num_uniforms]
(True, True)
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What the pipeline randomises in training (the stride and audio fields of `config.augment`)."""

    stride_jitter: int = 0
    time_masks: int = 2
    time_mask_fraction: float = 0.1
    freq_masks: int = 2
    freq_mask_bins: int = 8

    @classmethod
    def from_config(cls, augment_config) -> "Augmentation":
        return cls(**{f.name: augment_config[f.name] for f in dataclasses.fields(cls)})

    @property
    def num_uniforms(self) -> int:
        """stride, start, square's place, two per SpecAugment mask."""
        return 3 + 2 * (self.time_masks + self.freq_masks)


def draw_uniforms(seed, aug: Augmentation) -> tf.Tensor:
    """`[aug.num_uniforms]` numbers in [0, 1), fixed by the `[2]` int seed."""
    return tf.random.stateless_uniform([aug.num_uniforms], seed)


def random_int(u, low, high_inclusive) -> tf.Tensor:
    """An int in `[low, high_inclusive]` from a uniform number `u` in [0, 1)."""
    low, high = tf.cast(low, tf.float32), tf.cast(high_inclusive, tf.float32)
    return tf.cast(tf.minimum(tf.floor(low + u * (high - low + 1.0)), high), tf.int32)


def random_stride(u, base: int, jitter: int) -> tf.Tensor:
    """A stride in `[max(1, base - jitter), base + jitter]` (frame-rate jitter)."""
    return random_int(u, max(1, base - jitter), base + jitter)


def _mask_spans(u, length: int, count: int, max_width: int) -> tf.Tensor:
    """`[length]` bool: `count` random spans of up to `max_width` steps (two uniforms per span)."""
    widths = random_int(u[:count], 0, max_width)
    starts = tf.cast(tf.floor(u[count:] * tf.cast(length - widths + 1, tf.float32)), tf.int32)
    positions = tf.range(length)[:, None]
    return tf.reduce_any((positions >= starts) & (positions < starts + widths), axis=1)


def spec_augment(mel: tf.Tensor, u, aug: Augmentation) -> tf.Tensor:
    """Time and frequency masking of a log-mel `[time, mel_bins]`; masked cells get the mean value.

    `u` holds `2 * (aug.time_masks + aug.freq_masks)` uniforms.
    """
    time_steps, bins = mel.shape
    mask = tf.zeros_like(mel, tf.bool)
    split = 2 * aug.time_masks
    if aug.time_masks:
        max_width = max(1, int(aug.time_mask_fraction * time_steps))
        mask |= _mask_spans(u[:split], time_steps, aug.time_masks, max_width)[:, None]
    if aug.freq_masks:
        mask |= _mask_spans(u[split:], bins, aug.freq_masks, min(aug.freq_mask_bins, bins))[None, :]
    return tf.where(mask, tf.reduce_mean(mel), mel)
