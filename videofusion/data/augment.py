"""Training augmentation in the input pipeline: TensorFlow ops driven by uniform random numbers drawn
once per clip.

`draw_uniforms(seed, aug)` draws every random number a clip needs in one stateless op (fixed by the
example's seed, so `train.seed` makes the training input reproducible; one draw instead of one per
decision keeps the per-clip op count low). The pipeline draws here the clip's frame-rate jitter
(random stride), its start, and where its square sits along the frame's long side. The image
augmentation — random resized crop, flip, brightness and contrast — and the audio's SpecAugment masks
run on the accelerator, in the model's first layers (`models/frame_preprocessing.py`,
`models/audio_preprocessing.py`).

Example:

>>> aug = Augmentation(stride_jitter=1)
>>> u = draw_uniforms(tf.constant([1, 2], tf.int64), aug)
>>> int(random_int(u[0], 1, 3)) in (1, 2, 3), u.shape.as_list() == [aug.num_uniforms]
(True, True)
"""

import dataclasses

import tensorflow as tf

from videofusion import config as config_lib


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What the pipeline randomises in training (the stride field of `config.augment`)."""

    stride_jitter: int = 0

    @classmethod
    def from_config(cls, augment_config) -> "Augmentation":
        return config_lib.dataclass_from_section(cls, augment_config)

    @property
    def num_uniforms(self) -> int:
        """stride, start, square's place."""
        return 3


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
