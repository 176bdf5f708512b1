"""Per-frame feature extractors: the article's CNN (default) or a stronger keras.applications network.

`model.frame_backbone`:
- `article`: the reference article's Conv2D classifier (`article_cnn.py`), 128-d;
- `mobilenet_v3_small`: keras.applications MobileNetV3Small (Howard et al., 2019), global-average
  pooled, 576-d. Built with `weights=None`: nothing is downloaded at run time. To start from weights
  you have on disk (e.g. ImageNet weights saved with `save_weights`), set `model.backbone_weights` to
  that `.weights.h5` file.

Frames arrive in [0, 1]; MobileNetV3 gets them rescaled to the [-1, 1] it was designed for.

Example:

>>> frame_backbone("article", image_size=32).output_shape
(None, 128)
"""

import keras

from videofusion.models.article_cnn import article_cnn

FRAME_BACKBONES = ("article", "mobilenet_v3_small")


def frame_backbone(name: str, image_size: int, channels: int = 3, weights_path: str = "") -> keras.Model:
    """Frame `[image_size, image_size, channels]` in [0, 1] → embedding `[dim]`."""
    if name == "article":
        return article_cnn(image_size, channels)
    if name == "mobilenet_v3_small":
        inputs = keras.Input((image_size, image_size, channels), name="frame")
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric_range")(inputs)
        network = keras.applications.MobileNetV3Small(
            input_shape=(image_size, image_size, channels), include_top=False, weights=None,
            pooling="avg", include_preprocessing=False,
        )
        if weights_path:
            network.load_weights(weights_path)
        return keras.Model(inputs, network(x), name="mobilenet_v3_small")
    raise ValueError(f"model.frame_backbone={name!r} is not one of {', '.join(FRAME_BACKBONES)}")
