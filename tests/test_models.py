"""Every model builds, trains a step, and survives a `.keras` save/load with identical outputs."""

import itertools

import keras
import numpy as np
import pytest
from ml_collections import ConfigDict

from videofusion import names
from videofusion.models import InputShapes, build_model
from videofusion.models.article_cnn import article_cnn

SHAPES = InputShapes(num_frames=4, image_size=24, mel_frames=20, mel_bins=16)
COMBINATIONS = [
    ("video", "frame", "concat"),
    ("video", "lstm", "concat"),
    ("audio", "lstm", "concat"),
    *[("audio,video", e, f) for e, f in itertools.product(("frame", "lstm"), ("concat", "cross_attention"))],
]


def model_config(modalities, encoder, fusion):
    return ConfigDict(dict(modalities=modalities, video_encoder=encoder, fusion=fusion,
                           embed_dim=16, num_heads=2, dropout=0.1))


def batch(size=4, seed=0):
    rng = np.random.default_rng(seed)
    features = {
        names.FRAMES: rng.uniform(size=(size, 4, 24, 24, 3)).astype("float32"),
        names.MEL: rng.normal(size=(size, 20, 16)).astype("float32"),
    }
    return features, rng.integers(0, 3, size=size)


def inputs_of(model, features):
    return {key: value for key, value in features.items() if key in model.input}


@pytest.mark.parametrize("modalities, encoder, fusion", COMBINATIONS)
def test_builds_trains_and_round_trips(tmp_path, modalities, encoder, fusion):
    model = build_model(model_config(modalities, encoder, fusion), SHAPES, num_classes=3)
    assert model.output_shape == (None, 3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    features, labels = batch()
    x = inputs_of(model, features)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, labels, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_article_cnn_keeps_the_articles_layers():
    cnn = article_cnn(32)
    kinds = [type(layer).__name__ for layer in cnn.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert [cnn.get_layer(n).filters for n in ("conv1", "conv2")] == [32, 64]
    assert cnn.get_layer("dense1").units == 128


def test_frame_encoder_sees_only_the_middle_frame():
    model = build_model(model_config("video", "frame", "concat"), SHAPES, num_classes=3)
    features, _ = batch(size=2)
    changed = {names.FRAMES: features[names.FRAMES].copy()}
    changed[names.FRAMES][:, [0, 1, 3]] = 0.0
    np.testing.assert_allclose(
        model.predict({names.FRAMES: features[names.FRAMES]}, verbose=0),
        model.predict(changed, verbose=0), atol=1e-6,
    )


def test_unknown_choices_are_named():
    with pytest.raises(ValueError, match="model.video_encoder='gru'"):
        build_model(model_config("video", "gru", "concat"), SHAPES, 3)
    with pytest.raises(ValueError, match="model.fusion='sum'"):
        build_model(model_config("video,audio", "lstm", "sum"), SHAPES, 3)
    with pytest.raises(ValueError, match="model.modalities='smell'"):
        build_model(model_config("smell", "lstm", "concat"), SHAPES, 3)
