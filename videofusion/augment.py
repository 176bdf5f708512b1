"""Training augmentation: TensorFlow ops driven by uniform random numbers drawn once per clip.

`draw_uniforms(seed, aug)` draws every random number a clip needs in one stateless op (fixed by the
example's seed, so `train.seed` makes the training input reproducible; one draw instead of one per
decision keeps the per-clip op count, the pipeline's main overhead, low). The ops below each take
their share of those numbers. Every frame of a clip gets the same crop, flip and colour change; the
audio gets SpecAugment masks (Park et al., 2019).

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
    """What training randomises (`config.augment`)."""

    random_resized_crop: bool = True
    crop_area_min: float = 0.4
    flip: bool = True
    stride_jitter: int = 0
    brightness: float = 0.2
    contrast: float = 0.2
    time_masks: int = 2
    time_mask_fraction: float = 0.1
    freq_masks: int = 2
    freq_mask_bins: int = 8

    @classmethod
    def from_config(cls, augment_config) -> "Augmentation":
        return cls(**{f.name: augment_config[f.name] for f in dataclasses.fields(cls)})

    @property
    def num_uniforms(self) -> int:
        """stride, start, crop (4), flip, colour (2), two per SpecAugment mask."""
        return 9 + 2 * (self.time_masks + self.freq_masks)


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


def random_crop_window(u4, height, width, area_min: float) -> tf.Tensor:
    """`[y, x, h, w]` of a random crop covering `area_min`–100 % of the frame, aspect 3/4–4/3."""
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = (area_min + (1.0 - area_min) * u4[0]) * height_f * width_f
    log_ratio = tf.math.log(3 / 4) + (tf.math.log(4 / 3) - tf.math.log(3 / 4)) * u4[1]
    ratio = tf.exp(log_ratio)
    crop_h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32), 1, height)
    crop_w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32), 1, width)
    return tf.stack([random_int(u4[2], 0, height - crop_h), random_int(u4[3], 0, width - crop_w), crop_h, crop_w])


def random_flip(frames: tf.Tensor, u) -> tf.Tensor:
    """Mirrors every frame `[n, h, w, c]` left-right with probability 1/2."""
    return tf.cond(u < 0.5, lambda: tf.reverse(frames, axis=[-2]), lambda: frames)


def scale_with_color_jitter(pixels: tf.Tensor, u2, brightness: float, contrast: float) -> tf.Tensor:
    """Pixel values in [0, 255] → [0, 1], with a random contrast scale (about the clip's mean) and
    brightness shift, the same for the whole clip — in one multiply-add over the pixels."""
    shift = brightness * (2.0 * u2[0] - 1.0)
    scale = 1.0 + contrast * (2.0 * u2[1] - 1.0)
    mean = tf.reduce_mean(pixels) / 255.0
    # (x / 255 - mean) * scale + mean + shift, folded into x * a + b.
    return tf.clip_by_value(pixels * (scale / 255.0) + (mean * (1.0 - scale) + shift), 0.0, 1.0)


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
