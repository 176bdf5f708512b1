"""The model's first video layer: the resize matches TensorFlow's antialiased resize, and each training
augmentation (random resized crop, flip, brightness/contrast) does what it says, per clip, from a seed."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import model_input_shapes

from videofusion.config import base_config
from videofusion.models import FrameAugment, build_model
from videofusion.models.frame_preprocessing import FramePreprocessing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(layer, frames, mask=None, training=False):
    mask = np.ones(frames.shape[:2], "float32") if mask is None else mask
    return keras.ops.convert_to_numpy(layer(frames, mask, training=training))


def ramps(batch, size, frames=2):
    """uint8 clips whose red channel grows along x and green along y (0 … 255)."""
    ramp = np.linspace(0, 255, size)
    image = np.stack([np.broadcast_to(ramp[None, :], (size, size)), np.broadcast_to(ramp[:, None], (size, size)),
                      np.full((size, size), 90.0)], axis=-1)
    return np.broadcast_to(np.round(image).astype(np.uint8), (batch, frames, size, size, 3)).copy()


@pytest.mark.parametrize("frame_size, image_size", [(32, 24), (40, 12), (12, 20), (16, 16)])
def test_inference_resize_is_tensorflows_antialiased_resize(frame_size, image_size):
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, frame_size, frame_size, 3), dtype=np.uint8)
    out = run(FramePreprocessing(image_size), frames)
    flat = frames.reshape(-1, frame_size, frame_size, 3).astype("float32")
    expected = tf.image.resize(flat, [image_size, image_size], antialias=True).numpy() / 255.0
    np.testing.assert_allclose(out, expected.reshape(out.shape), atol=1e-5)
    assert out.dtype == np.float32


def test_random_resized_crop_covers_the_configured_area_and_aspect():
    layer = FramePreprocessing(16, FrameAugment(random_resized_crop=True, crop_area_min=0.4), seed=1)
    out = run(layer, ramps(64, 32), training=True)
    # The ramps turn output values back into input coordinates: the crop's extent on each axis.
    width = (out[:, 0, :, :, 0].max(axis=(1, 2)) - out[:, 0, :, :, 0].min(axis=(1, 2))) * 32 * 16 / 15
    height = (out[:, 0, :, :, 1].max(axis=(1, 2)) - out[:, 0, :, :, 1].min(axis=(1, 2))) * 32 * 16 / 15
    area = width * height / 32**2
    assert area.min() > 0.4 - 0.08 and area.max() <= 1.0 + 0.08 and area.max() - area.min() > 0.3
    uncut = (width < 31) & (height < 31)  # aspect is only clipped when a side hits the frame's
    assert np.all((width / height)[uncut] > 0.75 - 0.08) and np.all((width / height)[uncut] < 4 / 3 + 0.08)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])  # every frame of a clip gets the same crop


def test_flip_mirrors_about_half_of_the_clips():
    layer = FramePreprocessing(16, FrameAugment(flip=True), seed=0)
    frames = ramps(64, 16)
    plain = run(FramePreprocessing(16), frames)
    out = run(layer, frames, training=True)
    mirrored = np.array([np.allclose(clip, plain[0, :, :, ::-1], atol=1e-6) for clip in out])
    unchanged = np.array([np.allclose(clip, plain[0], atol=1e-6) for clip in out])
    assert np.all(mirrored ^ unchanged) and 16 < mirrored.sum() < 48
    np.testing.assert_allclose(run(layer, frames, training=False), plain)  # inference never flips


def test_colour_jitter_shifts_and_scales_per_clip_within_range():
    layer = FramePreprocessing(8, FrameAugment(brightness=0.2, contrast=0.2), seed=0)
    frames = np.zeros((32, 2, 8, 8, 3), np.uint8)
    frames[:, :, :, :4] = 100  # two grey levels: the contrast between them changes too
    frames[:, :, :, 4:] = 150
    out = run(layer, frames, training=True)
    dark, light = out[:, :, :, :3].mean(axis=(1, 2, 3, 4)), out[:, :, :, 5:].mean(axis=(1, 2, 3, 4))
    mean_before, spread_before = 125 / 255, 50 / 255
    assert np.all(np.abs((dark + light) / 2 - mean_before) <= 0.2 + 1e-5)
    assert np.all(np.abs((light - dark) / spread_before - 1) <= 0.2 + 1e-5)
    assert np.std(dark + light) > 0.05 and np.std(light - dark) > 0.01  # the draws differ per clip
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_padding_frames_come_out_zero_even_when_brightened():
    layer = FramePreprocessing(8, FrameAugment(brightness=0.5), seed=0)
    frames = np.full((4, 3, 8, 8, 3), 128, np.uint8)
    out = run(layer, frames, np.array([[1, 1, 0]] * 4, "float32"), training=True)
    assert not out[:, 2].any() and out[:, :2].min() > 0


def test_the_seed_fixes_the_augmentation():
    augment = FrameAugment(random_resized_crop=True, flip=True, brightness=0.2, contrast=0.2)
    frames = ramps(8, 24)

    def outputs(seed):
        layer = FramePreprocessing(16, augment, seed=seed)
        return run(layer, frames, training=True), run(layer, frames, training=True)

    (first, second), (again, _), (other, _) = outputs(5), outputs(5), outputs(6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # the next batch draws anew
    assert not np.array_equal(first, other)


def test_model_with_augmentation_trains_and_reloads_with_it(tmp_path):
    cfg = base_config().model
    cfg.update(dict(modalities="video", video_encoder="frame_avg", fusion="concat", embed_dim=8))
    augment = FrameAugment(random_resized_crop=True, flip=True, brightness=0.2, contrast=0.2)
    model = build_model(cfg, model_input_shapes(2, 16, frame_size=24), 3, frame_augment=augment, seed=3)
    assert model.input["frames"].dtype == "uint8"
    model.compile(optimizer="adam", loss={"classes": "sparse_categorical_crossentropy"})
    x = {"frames": ramps(4, 24), "frame_mask": np.ones((4, 2), "float32")}
    history = model.fit(x, {"classes": np.array([0, 1, 2, 0])}, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.get_layer("frame_preprocessing").augment == augment
    np.testing.assert_allclose(reloaded.predict(x, verbose=0)["classes"], model.predict(x, verbose=0)["classes"],
                               atol=1e-6)



MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from videofusion.models import FrameAugment
    from videofusion.models.frame_preprocessing import FramePreprocessing

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = FramePreprocessing(8, FrameAugment(random_resized_crop=True), seed=0)
    ramp = np.linspace(0, 255, 16)
    clips = []
    for blue in (40, 200):  # the same coordinate ramps in red and green, another blue per replica
        image = np.stack([np.broadcast_to(ramp[None], (16, 16)), np.broadcast_to(ramp[:, None], (16, 16)),
                          np.full((16, 16), blue)], -1)
        clips.append(tf.constant(np.broadcast_to(image.astype(np.uint8), (4, 2, 16, 16, 3))))
    inputs = strategy.experimental_distribute_values_from_function(lambda ctx: clips[ctx.replica_id_in_sync_group])
    outputs = strategy.run(lambda frames: layer(frames, tf.ones((4, 2)), training=True), args=(inputs,))
    first, second = [t.numpy()[..., :2] for t in strategy.experimental_local_results(outputs)]
    print(json.dumps({"same_crops": [bool(np.array_equal(a, b)) for a, b in zip(first, second)]}))
    """
)


def test_replicas_of_a_distributed_step_draw_different_crops():
    """tf.distribute replicas share the layer's seed generator; the clips' own pixels tell them apart."""
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    same = json.loads(result.stdout.strip().splitlines()[-1])["same_crops"]
    assert not any(same), same
