"""The reference article's Conv2D frame classifier, kept as our baseline per-frame feature extractor.

The reference article (项目实战, `create_video_model`; `docs/from-the-article.md` maps it to the code)
builds, on one frame:
Conv2D 32 (3×3, ReLU) → MaxPooling 2×2 → Conv2D 64 (3×3, ReLU) → MaxPooling 2×2 → Flatten →
Dense 128 (ReLU) → Dense softmax. We keep those layers exactly and leave out only its softmax: the
classification head belongs to the model that uses this network (`builder.py`), so the same 128-d
frame embedding can feed a single-frame classifier, an LSTM or a transformer.

Example:

>>> cnn = article_cnn(image_size=32)
>>> cnn.output_shape
(None, 128)
"""

import keras


def article_cnn(image_size: int, channels: int = 3, name: str = "article_cnn") -> keras.Model:
    """The article's CNN on one frame: float `[image_size, image_size, channels]` → a 128-d embedding."""
    # === Layers ===
    inputs = keras.Input((image_size, image_size, channels), name="frame")
    x = keras.layers.Conv2D(32, (3, 3), activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = keras.layers.Conv2D(64, (3, 3), activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(128, activation="relu", name="dense1")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)
