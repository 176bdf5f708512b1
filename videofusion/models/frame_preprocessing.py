"""The video branch's first layer: uint8 square frames → float frames in [0, 1] at the model's size,
with the training-time image augmentation — run on the accelerator, as part of the model.

The input pipeline hands each clip over as uint8 squares of the data's short side (`frame_size`, 128
by default) and stops there. Cropping, resizing and colour jitter are float work on every pixel; in
tf.data they cost a training host as much CPU as decoding the JPEGs (TensorFlow's profiler on the
pipeline of `benchmarks/bench_pipeline.py`: ~1 ms of a core for the bilinear resize of a 16-frame
clip), while on an accelerator they are two small matrix products per frame, and uint8 frames cross
the host-to-device link in a quarter of the bytes of float32. On a machine without an accelerator the
work moves into the training step instead (`benchmarks/bench_device_preprocessing.py`). Because the
layer is part of the model, evaluation and the SavedModel run the very resize training ran: there is
no second implementation to drift (no train/serve skew).

Resizing is separable: per channel, `out = Ry · frame · Rxᵀ`, where `Ry` and `Rx` (`[image_size,
frame_size]`, from `resize_weights`) hold a triangle (bilinear) kernel with half-pixel centres, widened
by the scale factor when shrinking — the filter of `tf.image.resize(..., antialias=True)`. A crop is a
window of the rows and columns those weights sample; a flip reads the columns backwards.

Training, per clip (the same for all of its frames), from the layer's seed:
- random resized crop: `crop_area_min`–100 % of the square, aspect 3/4–4/3, anywhere in it;
- horizontal flip with probability 1/2;
- brightness and contrast: one multiply-add, contrast about the clip's mean.
Inference: the whole square, resized. Frames the mask marks as padding come out zero.

Example:

>>> import numpy as np
>>> layer = FramePreprocessing(image_size=2)
>>> frames = np.full((1, 3, 4, 4, 3), 51, "uint8")  # batch 1, 3 frames of 4×4
>>> out = keras.ops.convert_to_numpy(layer(frames, np.array([[1.0, 1.0, 0.0]])))
>>> out.shape, out[0, :, 0, 0, 0].astype('float64').round(3).tolist()
((1, 3, 2, 2, 3), [0.2, 0.2, 0.0])
"""

import dataclasses
import math

import keras
from keras import ops

from videofusion import config as config_lib
from videofusion.models.layers import clip_uniforms

_LOG_ASPECT_RANGE = (math.log(3 / 4), math.log(4 / 3))
_NUM_UNIFORMS = 7  # crop area, aspect, y, x; flip; brightness, contrast


@dataclasses.dataclass(frozen=True)
class FrameAugment:
    """What `FramePreprocessing` randomises in training (the frame fields of `config.augment`)."""

    random_resized_crop: bool = False
    crop_area_min: float = 0.4
    flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0

    @classmethod
    def from_config(cls, augment_config) -> "FrameAugment":
        return config_lib.dataclass_from_section(cls, augment_config)

    @property
    def active(self) -> bool:
        return self.random_resized_crop or self.flip or self.brightness > 0 or self.contrast > 0


def resize_weights(start, length, in_size: int, out_size: int):
    """`[batch, out_size, in_size]` weights that resample the window `[start, start + length)` of an
    axis of `in_size` pixels to `out_size` pixels (antialiased bilinear; see the module docstring).

    `start` and `length` are float `[batch]`, in pixels; rows of the result sum to 1.

    >>> import numpy as np
    >>> w = resize_weights(np.array([0.0]), np.array([4.0]), in_size=4, out_size=2)
    >>> keras.ops.convert_to_numpy(w)[0].astype('float64').round(3).tolist()
    [[0.429, 0.429, 0.143, 0.0], [0.0, 0.143, 0.429, 0.429]]
    """
    start = ops.cast(start, "float32")
    step = ops.cast(length, "float32") / out_size  # input pixels per output pixel
    centres = start[:, None] + (ops.arange(out_size, dtype="float32") + 0.5)[None, :] * step[:, None]
    pixel_centres = ops.arange(in_size, dtype="float32") + 0.5
    width = ops.maximum(step, 1.0)[:, None, None]
    weights = ops.relu(1.0 - ops.abs(pixel_centres[None, None, :] - centres[:, :, None]) / width)
    return weights / ops.sum(weights, axis=-1, keepdims=True)


def resize_clips(frames, row_weights, column_weights):
    """float frames `[b, t, h, w, c]` → `[b, t, rows, columns, c]`: `Ry · frame · Rxᵀ` per channel,
    with weights `[b or 1, rows, h]` and `[b or 1, columns, w]`."""
    channels_first = ops.transpose(frames, (0, 1, 4, 2, 3))  # [b, t, c, h, w]
    rows = ops.matmul(row_weights[:, None, None], channels_first)
    resized = ops.matmul(rows, ops.transpose(column_weights, (0, 2, 1))[:, None, None])
    return ops.transpose(resized, (0, 1, 3, 4, 2))


@keras.saving.register_keras_serializable(package="videofusion")
class FramePreprocessing(keras.layers.Layer):
    """uint8 frames `[batch, time, frame_size, frame_size, 3]` and the frame mask `[batch, time]` →
    float32 `[batch, time, image_size, image_size, 3]` in [0, 1], augmented in training."""

    def __init__(self, image_size: int, augment=None, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # resampling stays in float32 under mixed precision
        super().__init__(**kwargs)
        self.image_size = image_size
        self.augment = augment if isinstance(augment, FrameAugment) else FrameAugment(**(augment or {}))
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def _training_weights(self, u, size: int):
        """Per clip: the crop window's row and column weights (columns reversed when flipped), from the
        uniforms `u` `[batch, 7]`."""
        aug = self.augment
        batch = ops.shape(u)[0]
        full = ops.full((batch,), float(size))
        if aug.random_resized_crop:
            area = (aug.crop_area_min + (1.0 - aug.crop_area_min) * u[:, 0]) * size * size
            low, high = _LOG_ASPECT_RANGE
            aspect = ops.exp(low + (high - low) * u[:, 1])  # width / height
            height = ops.minimum(ops.sqrt(area / aspect), full)
            width = ops.minimum(ops.sqrt(area * aspect), full)
            top, left = u[:, 2] * (full - height), u[:, 3] * (full - width)
        else:
            top = left = ops.zeros((batch,))
            height = width = full
        rows = resize_weights(top, height, size, self.image_size)
        columns = resize_weights(left, width, size, self.image_size)
        if aug.flip:
            columns = ops.where((u[:, 4] < 0.5)[:, None, None], ops.flip(columns, axis=1), columns)
        return rows, columns

    def _color_jitter(self, pixels, real, u):
        """Brightness shift and contrast scale about the mean of the clip's real frames."""
        aug = self.augment
        shift = aug.brightness * (2.0 * u[:, 5] - 1.0)
        scale = 1.0 + aug.contrast * (2.0 * u[:, 6] - 1.0)
        per_frame = ops.mean(pixels, axis=(2, 3, 4))
        mean = ops.sum(per_frame * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
        offset = mean * (1.0 - scale) + shift
        return ops.clip(pixels * scale[:, None, None, None, None] + offset[:, None, None, None, None], 0.0, 1.0)

    def call(self, frames, frame_mask, training=False):
        size = frames.shape[2]
        if frames.shape[3] != size:
            raise ValueError(f"frames must be squares, got {frames.shape[2]}×{frames.shape[3]}")
        pixels = ops.cast(frames, "float32") / 255.0
        real = ops.cast(frame_mask, "float32")
        augmenting = bool(training) and self.augment.active
        if augmenting:
            u = clip_uniforms(self._seed_generator, _NUM_UNIFORMS, pixels)
            rows, columns = self._training_weights(u, size)
            pixels = resize_clips(pixels, rows, columns)
        elif size != self.image_size:  # (at the same size the weights are the identity)
            rows = columns = resize_weights(ops.zeros((1,)), ops.full((1,), float(size)), size, self.image_size)
            pixels = resize_clips(pixels, rows, columns)
        if augmenting and (self.augment.brightness > 0 or self.augment.contrast > 0):
            pixels = self._color_jitter(pixels, real, u)
        return pixels * real[:, :, None, None, None]

    def compute_output_shape(self, frames_shape, frame_mask_shape=None):
        return tuple(frames_shape[:2]) + (self.image_size, self.image_size, frames_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, augment=dataclasses.asdict(self.augment), seed=self.seed)
        return config
