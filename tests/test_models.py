"""Every encoder × fusion builds, trains a step and survives a `.keras` save/load; masks and missing
modalities behave."""

import itertools

import keras
import numpy as np
import pytest
from conftest import model_input_shapes

from videofusion.config import base_config
from videofusion.contract import tensors
from videofusion.models.article_cnn import article_cnn
from videofusion.models.builder import build_model
from videofusion.models.fusion import FUSIONS
from videofusion.models.layers import PerFrame
from videofusion.models.pooled_cnn import pooled_cnn
from videofusion.models.video import VIDEO_ENCODERS

SHAPES = model_input_shapes(num_frames=4, image_size=16, text_length=6, vocabulary_size=30, frame_size=20)


def model_config(modalities="audio,video", encoder="lstm", fusion="concat", **overrides):
    cfg = base_config().model
    cfg.update(dict(modalities=modalities, video_encoder=encoder, fusion=fusion, embed_dim=16, num_heads=2,
                    num_layers=1, **overrides))
    return cfg


def batch(size=4, frames=4, seed=0, frame_size=20):
    rng = np.random.default_rng(seed)
    mask = np.ones((size, frames), "float32")
    features = {
        tensors.FRAMES: rng.integers(0, 256, size=(size, frames, frame_size, frame_size, 3), dtype=np.uint8),
        tensors.FRAME_MASK: mask,
        tensors.WAVEFORM: 0.1 * rng.normal(size=(size, SHAPES.audio_samples)).astype("float32"),
        tensors.AUDIO_PRESENT: np.ones((size, 1), "float32"),
        tensors.TOKENS: rng.integers(0, 30, size=(size, 6)).astype("int32"),
    }
    return features, rng.integers(0, 3, size=size)


def inputs_of(model, features):
    return {key: value for key, value in features.items() if key in model.input}


def classes(model, features):
    return keras.ops.convert_to_numpy(model(inputs_of(model, features), training=False)[tensors.CLASSES])


def check_trains_and_round_trips(model, tmp_path):
    # Eagerly: for one step of a tiny model, tracing a graph would cost more than the step.
    model.compile(optimizer="adam", loss={k: "sparse_categorical_crossentropy" for k in model.output},
                  run_eagerly=True)
    video = model.input.get(tensors.FRAMES)
    features, labels = batch(frames=video.shape[1] if video is not None else 4,
                             frame_size=video.shape[2] if video is not None else 20)
    x = inputs_of(model, features)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, {k: labels for k in model.output}, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(classes(reloaded, features), classes(model, features), atol=1e-5)


@pytest.mark.parametrize("encoder, fusion", itertools.product(VIDEO_ENCODERS, FUSIONS))
def test_audio_visual_models_train_and_round_trip(tmp_path, encoder, fusion):
    model = build_model(model_config(encoder=encoder, fusion=fusion), SHAPES, num_classes=3)
    assert model.output[tensors.CLASSES].shape == (None, 3)
    check_trains_and_round_trips(model, tmp_path)


@pytest.mark.parametrize(
    "modalities, encoder, fusion, overrides",
    [
        ("video", "transformer", "concat", {}),
        ("audio", "lstm", "concat", {}),
        ("text", "lstm", "concat", {}),
        ("audio,text,video", "lstm", "cross_attention", {}),
        ("audio,text,video", "transformer", "bottleneck", {"modality_dropout": 0.3, "aux_loss_weight": 0.5}),
        ("video", "lstm", "concat", {"frame_backbone": "mobilenet_v3_small"}),
    ],
)
def test_other_modalities_and_options_train_and_round_trip(tmp_path, modalities, encoder, fusion, overrides):
    shapes = SHAPES
    if "frame_backbone" in overrides:  # MobileNetV3 takes at least 32×32
        shapes = model_input_shapes(2, 32)
    model = build_model(model_config(modalities, encoder, fusion, **overrides), shapes, num_classes=3)
    if overrides.get("aux_loss_weight"):
        assert sorted(model.output) == ["aux_audio", "aux_text", "aux_video", "classes"]
    check_trains_and_round_trips(model, tmp_path)


@pytest.mark.parametrize("encoder", VIDEO_ENCODERS)
def test_padded_short_video_gives_the_unpadded_output(encoder):
    shapes = model_input_shapes(None, 16, frame_size=20)
    model = build_model(model_config(encoder=encoder, fusion="cross_attention"), shapes, num_classes=3)
    features, _ = batch(size=2, frames=5)
    padded = dict(features)
    padded[tensors.FRAMES] = np.concatenate([features[tensors.FRAMES], np.full((2, 3, 20, 20, 3), 180, np.uint8)], 1)
    padded[tensors.FRAME_MASK] = np.concatenate([features[tensors.FRAME_MASK], np.zeros((2, 3), "float32")], 1)
    np.testing.assert_allclose(classes(model, padded), classes(model, features), atol=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_missing_audio_is_ignored_not_read(fusion):
    model = build_model(model_config(fusion=fusion), SHAPES, num_classes=3)
    features, _ = batch(size=2)
    silent = dict(features, **{tensors.AUDIO_PRESENT: np.zeros((2, 1), "float32")})
    noisy = dict(silent, **{tensors.WAVEFORM: features[tensors.WAVEFORM] * 5 + 3})
    np.testing.assert_allclose(classes(model, silent), classes(model, noisy), atol=1e-5)
    assert not np.allclose(classes(model, features), classes(model, silent), atol=1e-4)


def test_article_cnn_keeps_the_articles_layers():
    cnn = article_cnn(32)
    kinds = [type(layer).__name__ for layer in cnn.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert [cnn.get_layer(n).filters for n in ("conv1", "conv2")] == [32, 64]
    assert cnn.get_layer("dense1").units == 128


@pytest.mark.parametrize("encoder", ["frame", "frame_avg"])
def test_single_frame_and_average_models_are_blind_to_order(encoder):
    model = build_model(model_config("video", encoder), SHAPES, num_classes=3)
    features, _ = batch(size=2)
    reversed_frames = dict(features, **{tensors.FRAMES: features[tensors.FRAMES][:, ::-1].copy()})
    if encoder == "frame":  # only the middle frame (index 1 of 4) matters
        features[tensors.FRAMES][:, [0, 2, 3]] = 0
        reversed_frames = dict(features, **{tensors.FRAMES: features[tensors.FRAMES].copy()})
        reversed_frames[tensors.FRAMES][:, [0, 2, 3]] = 230
    np.testing.assert_allclose(classes(model, features), classes(model, reversed_frames), atol=1e-5)


def test_per_frame_runs_the_network_on_each_frame_and_normalises_over_all_of_them():
    network = pooled_cnn(16)
    per_frame = PerFrame(network)
    frames = np.random.default_rng(0).random((2, 3, 16, 16, 3)).astype("float32")
    expected = np.stack([keras.ops.convert_to_numpy(network(frames[:, t])) for t in range(3)], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(per_frame(frames)), expected, rtol=1e-5, atol=1e-6)
    assert per_frame.compute_output_shape((None, 3, 16, 16, 3)) == (None, 3, 64)
    # Training: one batch-norm update from the statistics of all 6 frames (momentum 0.9).
    per_frame(frames, training=True)
    first_conv = keras.ops.convert_to_numpy(network.get_layer("conv1")(frames.reshape(6, 16, 16, 3)))
    moving_mean = keras.ops.convert_to_numpy(network.get_layer("bn1").moving_mean)
    np.testing.assert_allclose(moving_mean, 0.1 * first_conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_unknown_choices_are_named():
    with pytest.raises(ValueError, match="model.video_encoder='gru'"):
        build_model(model_config("video", "gru"), SHAPES, 3)
    with pytest.raises(ValueError, match="model.fusion='sum'"):
        build_model(model_config(fusion="sum"), SHAPES, 3)
    with pytest.raises(ValueError, match="model.modalities='smell'"):
        build_model(model_config("smell"), SHAPES, 3)
