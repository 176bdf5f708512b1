"""Frame backbones: every one loads pretrained weights from a file into every video encoder, feeds its
network the input scaling its ImageNet weights expect, and a wrong file or choice is named; fine-tuning
freezes the backbone or slows it down."""

import itertools

import keras
import numpy as np
import pytest
from conftest import model_input_shapes
from test_models import model_config

from videofusion.contract import tensors
from videofusion.models import ScaledAdam, build_model
from videofusion.models.finetune import find_backbone
from videofusion.models.frame_backbones import FRAME_BACKBONES, ImageNetScaling, frame_backbone
from videofusion.models.video import VIDEO_ENCODERS

SIZE = 32  # the smallest input keras.applications networks take
SHAPES = model_input_shapes(num_frames=3, image_size=SIZE, frame_size=36)
EXPECTED_SCALING = {"mobilenet_v3_small": "symmetric", "mobilenet_v3_large": "symmetric",
                    "efficientnet_b0": "pixels", "resnet50": "caffe"}


def _perturbed(weights, seed):
    rng = np.random.default_rng(seed)
    return [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.dtype.kind == "f" else w for w in weights]


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """backbone name → (a `.weights.h5` of that backbone with distinctive weights, those weights)."""
    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for index, name in enumerate(FRAME_BACKBONES):
        network = frame_backbone(name, SIZE)
        inner = network.layers[-1] if name in EXPECTED_SCALING else network  # the keras.applications part
        inner.set_weights(_perturbed(inner.get_weights(), index))
        path = str(folder / f"{name}.weights.h5")
        inner.save_weights(path)
        files[name] = (path, inner.get_weights())
    return files


@pytest.mark.parametrize("encoder, backbone", itertools.product(VIDEO_ENCODERS, FRAME_BACKBONES))
def test_weights_file_loads_into_every_encoder_and_backbone(weight_files, encoder, backbone):
    path, expected = weight_files[backbone]
    cfg = model_config("video", encoder, frame_backbone=backbone, backbone_weights=path)
    model = build_model(cfg, SHAPES, num_classes=3)
    loaded = find_backbone(model)
    inner = loaded.layers[-1] if backbone in EXPECTED_SCALING else loaded
    got = inner.get_weights()
    if backbone == "efficientnet_b0":  # its input normalisation is reset to ImageNet's statistics
        got, expected = got[3:], expected[3:]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backbone", sorted(EXPECTED_SCALING))
def test_each_pretrained_backbone_gets_the_input_scaling_its_weights_expect(backbone):
    network = frame_backbone(backbone, SIZE)
    scaling = [layer for layer in network.layers if isinstance(layer, ImageNetScaling)]
    assert [layer.mode for layer in scaling] == [EXPECTED_SCALING[backbone]]


def test_efficientnet_normalises_with_imagenet_statistics():
    network = frame_backbone("efficientnet_b0", SIZE).layers[-1]
    normalization = next(layer for layer in network.layers if isinstance(layer, keras.layers.Normalization))
    # [0, 1] frames × 255 → (x / 255 - mean) / std: a pixel at the ImageNet mean becomes 0.
    pixel = np.array([[[[0.485, 0.456, 0.406]]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalization(pixel)), 0, atol=1e-6)
    one = np.array([[[[0.485 + 0.229, 0.456, 0.406]]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalization(one))[..., 0], 1, atol=1e-5)


def test_scaling_modes():
    frames = np.array([[[[0.0, 0.5, 1.0]]]], "float32")
    out = {mode: keras.ops.convert_to_numpy(ImageNetScaling(mode)(frames))[0, 0, 0].tolist()
           for mode in ImageNetScaling.MODES}
    assert out["symmetric"] == [-1.0, 0.0, 1.0]
    assert out["pixels"] == [0.0, 127.5, 255.0]
    np.testing.assert_allclose(out["caffe"], [255 - 103.939, 127.5 - 116.779, 0 - 123.68], atol=1e-4)  # BGR


def test_wrong_weights_and_choices_are_named(weight_files, tmp_path):
    resnet_file = weight_files["resnet50"][0]
    with pytest.raises(ValueError,
                       match=r"resnet50\.weights\.h5.*does not fit model\.frame_backbone='mobilenet_v3_small'"):
        frame_backbone("mobilenet_v3_small", SIZE, resnet_file)
    with pytest.raises(ValueError, match="does not fit model.frame_backbone='pooled_cnn'"):
        frame_backbone("pooled_cnn", SIZE, weight_files["article"][0])
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        frame_backbone("resnet50", SIZE, str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="no ImageNet weights for model.frame_backbone='article'"):
        frame_backbone("article", SIZE, "imagenet")
    with pytest.raises(ValueError, match="model.frame_backbone='vgg16' is not one of"):
        frame_backbone("vgg16", SIZE)


@pytest.mark.parametrize("scale", [0.0, 0.1])
def test_scaled_adam_moves_the_backbone_at_its_own_rate(scale):
    model = build_model(model_config("video", "frame_avg"), model_input_shapes(2, 16), num_classes=3)
    backbone = find_backbone(model)
    optimizer = ScaledAdam(learning_rate=1e-2, learning_rate_scale=scale)
    optimizer.scale_variables(backbone.trainable_variables)
    model.compile(optimizer=optimizer, loss={k: "sparse_categorical_crossentropy" for k in model.output})
    rng = np.random.default_rng(0)
    x = {tensors.FRAMES: rng.integers(0, 256, (4, 2, 16, 16, 3), dtype=np.uint8), tensors.FRAME_MASK: np.ones((4, 2))}
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    backbone_paths = {v.path for v in backbone.trainable_variables}
    model.fit(x, {tensors.CLASSES: np.array([0, 1, 2, 0])}, epochs=1, batch_size=4, verbose=0)
    # Adam's first step moves every weight by about learning rate × its scale (the gradient's sign).
    for variable in model.trainable_variables:
        step = np.abs(keras.ops.convert_to_numpy(variable) - before[variable.path]).max()
        expected = 1e-2 * (scale if variable.path in backbone_paths else 1.0)
        assert step <= expected * 1.01 + 1e-7 and step >= expected * 0.5, variable.path


class _BackboneSnapshots(keras.callbacks.Callback):
    """Keeps the frame backbone's weights (trainable and not) at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append([keras.ops.convert_to_numpy(v).copy() for v in find_backbone(self.model).weights])


@pytest.mark.slow
def test_training_freezes_then_slows_the_pretrained_backbone(demo_records, tmp_path):
    """Through `train`'s steps (`start_run`, then `fit`'s two phases): in epoch 1, frozen, the backbone
    keeps every weight as loaded (batch-normalisation statistics included); in epoch 2 it trains, at
    `backbone_learning_rate_scale` × the rate: every weight moves (never unfrozen, none would), by at most
    what Adam's steps at that rate allow (at the full rate they move a hundred times as far)."""
    from videofusion.config import demo_config
    from videofusion.training import strategy, train

    config = demo_config("smoke")
    network = frame_backbone("pooled_cnn", config.data.image_size)
    network.set_weights(_perturbed(network.get_weights(), 1))
    path = str(tmp_path / "pooled_cnn.weights.h5")
    network.save_weights(path)
    config.data.dir = demo_records
    config.model.update(dict(frame_backbone="pooled_cnn", backbone_weights=path,
                             video_encoder="frame_avg", fusion="concat"))  # half the tracing of the smoke model
    scale = 0.01
    config.train.update(dict(epochs=2, backbone_frozen_epochs=1, backbone_learning_rate_scale=scale))
    run = train.start_run(train.resolve_data_config(config), str(tmp_path / "run"),
                          strategy.make_distribution("default"))
    loaded = [keras.ops.convert_to_numpy(v) for v in find_backbone(run.model).weights]
    for weight, expected in zip(loaded, network.get_weights()):
        np.testing.assert_array_equal(weight, expected)
    snapshots = _BackboneSnapshots()
    train.fit(run, extra_callbacks=[snapshots])
    frozen, unfrozen = snapshots.epochs
    for variable, before, after in zip(find_backbone(run.model).weights, loaded, frozen):
        np.testing.assert_array_equal(after, before, err_msg=f"{variable.path} changed while frozen")
    # Adam moves a weight by at most about 3.2 × its rate per step ((1 - beta_1) / sqrt(1 - beta_2)),
    # AdamW's decay by rate × weight_decay × |w| more.
    steps = run.data.steps_per_epoch
    limit = steps * config.train.learning_rate * scale * (3.2 + config.train.weight_decay * 2)
    for variable, before, after in zip(find_backbone(run.model).weights, frozen, unfrozen):
        change = np.abs(after - before).max()
        assert change > 0, f"{variable.path} did not train in the second phase"
        if variable.trainable:
            assert change <= limit, f"{variable.path} moved {change:.3g}, more than its rate allows ({limit:.3g})"
    assert not (tmp_path / "run" / "backup").exists()  # the phases' backups go once the fit is done
