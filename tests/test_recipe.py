"""The training recipe: warmup + cosine schedule, AdamW, label smoothing, class weights, precisions, NaN guard."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import model_input_shapes
from test_models import batch, inputs_of, model_config

from videofusion.config import base_config, demo_config
from videofusion.contract import tensors
from videofusion.data import pipeline
from videofusion.models import ScaledAdam, build_model, optimization
from videofusion.training import train


def train_config(**overrides):
    cfg = base_config().train
    cfg.update(overrides)
    return cfg


def test_warmup_then_cosine_to_the_final_ratio():
    cfg = train_config(epochs=4, learning_rate=1e-2, warmup_epochs=1.0, final_learning_rate_ratio=0.1)
    schedule = optimization.learning_rate_schedule(cfg, steps_per_epoch=10)
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == 0.0 and rate(5) == pytest.approx(5e-3) and rate(10) == pytest.approx(1e-2)
    # Halfway through the 30 decay steps: the mean of the peak and the floor.
    assert rate(25) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert rate(40) == pytest.approx(1e-3)
    assert optimization.learning_rate_schedule(train_config(lr_schedule="constant"), 10) == 1e-3
    with pytest.raises(ValueError, match="train.lr_schedule='step' is not one of"):
        optimization.learning_rate_schedule(train_config(lr_schedule="step"), 10)


def test_a_later_phase_continues_the_schedule():
    cfg = train_config(epochs=4, learning_rate=1e-2)
    optimizer = optimization.make_optimizer(cfg, steps_per_epoch=10, first_step=25)
    expected = float(optimization.learning_rate_schedule(cfg, 10)(25))
    assert int(optimizer.iterations) == 25
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(expected)


def test_adamw_decays_kernels_at_each_variables_rate_and_leaves_biases():
    """With a zero gradient Adam's own step is zero: what changes is the decoupled decay alone."""
    plain, scaled = keras.layers.Dense(3), keras.layers.Dense(3)
    plain.build((None, 2))
    scaled.build((None, 2))
    for layer in (plain, scaled):
        layer.bias.assign(np.ones(3, "float32"))
    optimizer = ScaledAdam(learning_rate=0.1, learning_rate_scale=0.5, weight_decay=0.2)
    optimizer.scale_variables(scaled.trainable_variables)
    variables = plain.trainable_variables + scaled.trainable_variables
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    optimizer.apply_gradients([(keras.ops.zeros(v.shape), v) for v in variables])
    after = [keras.ops.convert_to_numpy(v) for v in variables]
    np.testing.assert_allclose(after[0], before[0] * (1 - 0.1 * 0.2), rtol=1e-6)  # kernel, full rate
    np.testing.assert_array_equal(after[1], before[1])  # bias: no decay
    np.testing.assert_allclose(after[2], before[2] * (1 - 0.05 * 0.2), rtol=1e-6)  # kernel, half rate
    np.testing.assert_array_equal(after[3], before[3])
    assert ScaledAdam.from_config(optimizer.get_config()).decoupled_weight_decay == 0.2


def test_label_smoothing_spreads_the_target():
    probabilities = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], "float32")
    labels = np.array([2, 0])
    smoothing = 0.1
    targets = np.full((2, 3), smoothing / 3)
    targets[np.arange(2), labels] += 1 - smoothing
    expected = np.mean(-np.sum(targets * np.log(probabilities), axis=1))
    loss = optimization.SmoothedCrossentropy(label_smoothing=smoothing)(labels, probabilities)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_class_weights_reach_each_example_as_its_sample_weight():
    weights = optimization.balanced_class_weights([30, 10, 0])
    assert weights == pytest.approx([40 / 90, 40 / 30, 0.0])
    model = build_model(model_config("audio"), model_input_shapes(4, 16), num_classes=3)
    features, _ = batch()
    labels = np.array([0, 1, 1, 0])
    dataset = tf.data.Dataset.from_tensors(({k: features[k] for k in model.input}, labels))
    _, y, sample_weight = next(iter(pipeline.model_inputs(dataset, model, weights)))
    np.testing.assert_allclose(sample_weight[tensors.CLASSES].numpy(), np.array(weights)[labels], rtol=1e-6)
    np.testing.assert_array_equal(y[tensors.CLASSES].numpy(), labels)


@pytest.fixture
def restore_float32():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("precision", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_a_training_step_under_each_precision(precision, restore_float32):
    config = demo_config("smoke")
    config.train.update(dict(precision=precision, epochs=1))
    train.set_up(config)
    model = build_model(model_config(), model_input_shapes(4, 16, frame_size=20), num_classes=3)
    optimization.compile_classifier(model, config)
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    features, labels = batch()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(inputs_of(model, features), {k: labels for k in model.output}, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
    assert model.get_layer("lstm").compute_dtype == "float32"  # kept so: see models/video/lstm.py
    assert {w.dtype for w in model.trainable_weights} == {"float32"}  # master weights
    assert keras.ops.convert_to_numpy(model(inputs_of(model, features))[tensors.CLASSES]).dtype == np.float32


def test_unknown_precision_names_the_choices():
    config = demo_config("smoke")
    config.train.precision = "float16"
    with pytest.raises(ValueError, match="train.precision='float16' is not one of float32, mixed_float16"):
        train.set_up(config)


@pytest.mark.slow
def test_a_diverging_run_stops_and_says_what_to_try(demo_records, tmp_path):
    config = demo_config("smoke")
    config.data.dir = demo_records
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))  # half the tracing of the default
    config.train.update(dict(learning_rate=1e30, lr_schedule="constant", gradient_clip_norm=0.0, epochs=2))
    with pytest.raises(FloatingPointError, match=r"loss became nan.*lower train.learning_rate \(now 1e\+30\)"):
        train.train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "model.keras").exists()
