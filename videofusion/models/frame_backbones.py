"""Per-frame feature extractors (`model.frame_backbone`): frame `[size, size, 3]` in [0, 1] → embedding.

- `article`: the reference article's Conv2D network (`article_cnn.py`), Flatten → Dense 128; the
  default of the `frame` baseline only;
- `pooled_cnn`: the article's conv stack with batch normalisation and global pooling
  (`pooled_cnn.py`), the default of every other encoder;
- `mobilenet_v3_small`, `mobilenet_v3_large`, `efficientnet_b0`, `resnet50`: keras.applications
  networks without their classifier, global-average pooled, each fed the input scaling its ImageNet
  weights expect (`ImageNetScaling`).

`model.backbone_weights` starts a backbone from pretrained weights: `imagenet` (Keras downloads the file
on first use and caches it in `~/.keras/models/`, so a machine that has the cached file works
offline), or the path of a weights file — `network.save_weights("x.weights.h5")` of the same
backbone, or the `*_notop.h5` file Keras downloads. Nothing is downloaded otherwise.

Every backbone is a Keras model named `frame_backbone` (`BACKBONE_LAYER`), so that training can
freeze it or give it its own learning rate (`train.backbone_frozen_epochs`,
`train.backbone_learning_rate_scale`).

Example:

>>> frame_backbone("pooled_cnn", image_size=32).output_shape
(None, 64)
>>> frame_backbone("mobilenet_v3_small", image_size=32).output_shape
(None, 576)
"""

import os

import keras
from keras import ops

from videofusion.models.article_cnn import article_cnn
from videofusion.models.pooled_cnn import pooled_cnn

BACKBONE_LAYER = "frame_backbone"
IMAGENET = "imagenet"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"

# name → (keras.applications constructor, the input scaling its ImageNet weights expect)
_APPLICATIONS = {
    "mobilenet_v3_small": ("MobileNetV3Small", "symmetric"),
    "mobilenet_v3_large": ("MobileNetV3Large", "symmetric"),
    "efficientnet_b0": ("EfficientNetB0", "pixels"),
    "resnet50": ("ResNet50", "caffe"),
}
FRAME_BACKBONES = ("article", "pooled_cnn", *_APPLICATIONS)


@keras.saving.register_keras_serializable(package="videofusion")
class ImageNetScaling(keras.layers.Layer):
    """Frames in [0, 1] → the input range a keras.applications network was trained on.

    `mode`: `symmetric` → [-1, 1] (MobileNetV3 built without its own rescaling); `pixels` → [0, 255]
    (EfficientNet, which normalises inside); `caffe` → BGR, 0–255 minus the ImageNet mean (ResNet50).

    >>> import numpy as np
    >>> frames = np.array([[[[0.0, 0.5, 1.0]]]], "float32")
    >>> keras.ops.convert_to_numpy(ImageNetScaling("caffe")(frames)).astype("float64").round(2).tolist()
    [[[[151.06, 10.72, -123.68]]]]
    """

    MODES = ("symmetric", "pixels", "caffe")

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"ImageNetScaling mode {mode!r} is not one of {', '.join(self.MODES)}")
        self.mode = mode

    def call(self, frames):
        if self.mode == "symmetric":
            return frames * 2.0 - 1.0
        pixels = frames * 255.0
        if self.mode == "pixels":
            return pixels
        return ops.flip(pixels, axis=-1) - ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=frames.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def frame_backbone(name: str, image_size: int, weights: str = "") -> keras.Model:
    """The backbone `name` (`FRAME_BACKBONES`): frame `[image_size, image_size, 3]` in [0, 1] → `[dim]`.

    `weights`: "" (random initialisation), `imagenet`, or a weights file (see the module docstring).
    """
    if name not in FRAME_BACKBONES:
        raise ValueError(f"model.frame_backbone={name!r} is not one of {', '.join(FRAME_BACKBONES)}")
    if name in _APPLICATIONS:
        return _application_backbone(name, image_size, weights)
    if weights == IMAGENET:
        raise ValueError(
            f"model.backbone_weights='imagenet': there are no ImageNet weights for model.frame_backbone={name!r}; "
            f"use one of {', '.join(_APPLICATIONS)}, or give a weights file"
        )
    network = (article_cnn if name == "article" else pooled_cnn)(image_size, name=BACKBONE_LAYER)
    if weights:
        _load_weights_file(network, weights, name)
    return network


def _application_backbone(name: str, image_size: int, weights: str) -> keras.Model:
    constructor, mode = _APPLICATIONS[name]
    network = _application(constructor, image_size, weights=None)
    if weights == IMAGENET:  # built apart: for EfficientNet, Keras adds a rescaling layer with them
        network.set_weights(_application(constructor, image_size, weights=IMAGENET).get_weights())
    elif weights:
        _load_weights_file(network, weights, name)
    if name.startswith("efficientnet"):
        _set_imagenet_normalization(network)
    inputs = keras.Input((image_size, image_size, 3), name="frame")
    scaled = ImageNetScaling(mode, name="imagenet_scaling")(inputs)
    return keras.Model(inputs, network(scaled), name=BACKBONE_LAYER)


def _application(constructor: str, image_size: int, weights):
    options = dict(include_preprocessing=False) if constructor.startswith("MobileNetV3") else {}
    return getattr(keras.applications, constructor)(
        input_shape=(image_size, image_size, 3), include_top=False, weights=weights, pooling="avg", **options
    )


def _set_imagenet_normalization(network: keras.Model) -> None:
    """EfficientNet normalises its 0–255 input inside; make that (x/255 - mean) / std with ImageNet's
    statistics, whatever the weights held (Keras's file stores std, not std², as the variance)."""
    normalization = next(layer for layer in network.layers if isinstance(layer, keras.layers.Normalization))
    normalization.adapt_mean.assign(_IMAGENET_MEAN)
    normalization.adapt_variance.assign([s * s for s in _IMAGENET_STD])
    normalization.finalize_state()


def _load_weights_file(network: keras.Model, path: str, name: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.backbone_weights={path!r}: no such file")
    try:
        network.load_weights(path)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"model.backbone_weights={path!r} does not fit model.frame_backbone={name!r} at this image size: "
            f"{error}. Give weights saved from the same backbone (network.save_weights), or `imagenet`."
        ) from error
