"""Training augmentation: seeded, stateless TensorFlow ops (same seed, same augmentation).

Each op takes a `[2]` int seed (from `tf.random.experimental.stateless_split` of the example's seed) so
that `train.seed` makes the whole training input reproducible. Every frame of a clip gets the same crop,
flip and colour change; the audio gets SpecAugment masks (Park et al., 2019).

Example:

>>> aug = Augmentation(stride_jitter=1)
>>> int(random_stride(tf.constant([1, 2], tf.int64), base=2, jitter=aug.stride_jitter)) in (1, 2, 3)
True
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


def _uniform_int(seed, low, high_inclusive) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, minval=low, maxval=high_inclusive + 1, dtype=tf.int32)


def random_stride(seed, base: int, jitter: int) -> tf.Tensor:
    """A stride in `[max(1, base - jitter), base + jitter]` (frame-rate jitter)."""
    return _uniform_int(seed, max(1, base - jitter), base + jitter)


def random_start(seed, last_start) -> tf.Tensor:
    """A start frame in `[0, last_start]`."""
    return _uniform_int(seed, 0, last_start)


def random_crop_window(seed, height, width, area_min: float) -> tf.Tensor:
    """`[y, x, h, w]` of a random crop covering `area_min`–100 % of the frame, aspect 3/4–4/3."""
    area_seed, ratio_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = tf.random.stateless_uniform([], area_seed, area_min, 1.0) * height_f * width_f
    log_ratio = tf.random.stateless_uniform([], ratio_seed, tf.math.log(3 / 4), tf.math.log(4 / 3))
    ratio = tf.exp(log_ratio)
    crop_h = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32), 1, height)
    crop_w = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32), 1, width)
    y = _uniform_int(y_seed, 0, height - crop_h)
    x = _uniform_int(x_seed, 0, width - crop_w)
    return tf.stack([y, x, crop_h, crop_w])


def random_flip(frames: tf.Tensor, seed) -> tf.Tensor:
    """Mirrors every frame `[n, h, w, c]` left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(frames, axis=[-2]), lambda: frames)


def scale_with_color_jitter(pixels: tf.Tensor, seed, brightness: float, contrast: float) -> tf.Tensor:
    """Pixel values in [0, 255] → [0, 1], with a random contrast scale (about the clip's mean) and
    brightness shift, the same for the whole clip — in one multiply-add over the pixels."""
    b_seed, c_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    shift = tf.random.stateless_uniform([], b_seed, -brightness, brightness)
    scale = tf.random.stateless_uniform([], c_seed, 1.0 - contrast, 1.0 + contrast)
    mean = tf.reduce_mean(pixels) / 255.0
    # (x / 255 - mean) * scale + mean + shift, folded into x * a + b.
    return tf.clip_by_value(pixels * (scale / 255.0) + (mean * (1.0 - scale) + shift), 0.0, 1.0)


def _mask_spans(seed, length: int, count: int, max_width: int) -> tf.Tensor:
    """`[length]` bool: `count` random spans of up to `max_width` steps."""
    positions = tf.range(length)
    masked = tf.zeros([length], tf.bool)
    for span_seed in tf.unstack(tf.random.experimental.stateless_split(seed, count)):
        w_seed, s_seed = tf.unstack(tf.random.experimental.stateless_split(span_seed, 2))
        width = _uniform_int(w_seed, 0, max_width)
        start = _uniform_int(s_seed, 0, length - width)
        masked |= (positions >= start) & (positions < start + width)
    return masked


def spec_augment(mel: tf.Tensor, seed, aug: Augmentation) -> tf.Tensor:
    """Time and frequency masking of a log-mel `[time, mel_bins]`; masked cells get the mean value."""
    time_steps, bins = mel.shape
    t_seed, f_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    mask = tf.zeros_like(mel, tf.bool)
    if aug.time_masks:
        max_width = max(1, int(aug.time_mask_fraction * time_steps))
        mask |= _mask_spans(t_seed, time_steps, aug.time_masks, max_width)[:, None]
    if aug.freq_masks:
        mask |= _mask_spans(f_seed, bins, aug.freq_masks, min(aug.freq_mask_bins, bins))[None, :]
    return tf.where(mask, tf.reduce_mean(mel), mel)
