"""Each encoder module on tiny inputs: the documented output shapes, what each token may see, and masks.

One functional model per encoder, built once; inputs are random, the padded frame of a clip is the last."""

import keras
import numpy as np
import pytest

from videofusion.models import audio_encoder, conv_blocks, text_encoder
from videofusion.models.video import frame, frame_avg, lstm, motion, transformer

TIME, SIZE, DIM = 4, 16, 8
MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 0]], "float32")  # three real frames, one padded


def numpy(outputs):
    if isinstance(outputs, list):
        return [keras.ops.convert_to_numpy(x) for x in outputs]
    return keras.ops.convert_to_numpy(outputs)


def clip(seed=0):
    return np.random.default_rng(seed).random((2, TIME, SIZE, SIZE, 3)).astype("float32")


def build_video_model(module):
    """Model: (frames, frame mask) → [tokens, token mask as float] of `module.encode`."""
    frames, mask = keras.Input((TIME, SIZE, SIZE, 3)), keras.Input((TIME,))
    tokens, token_mask = module.encode(frames, mask, keras.ops.greater(mask, 0.5), dim=DIM, num_heads=2,
                                       num_layers=1, max_frames=TIME, backbone="pooled_cnn", weights="")
    return keras.Model([frames, mask], [tokens, keras.ops.cast(token_mask, "float32")])


def encode(model, frames):
    return numpy(model([frames, MASK], training=False))


@pytest.fixture(scope="module")
def video_model():
    """`video_model(module)`: the model of encoder `module`, built once for the tests that use it."""
    models = {}

    def get(module):
        if module not in models:
            models[module] = build_video_model(module)
        return models[module]

    return get


# ------------------------------------------------------------------------------------- one-token encoders

def test_frame_encoder_sees_only_the_middle_real_frame(video_model):
    model = video_model(frame)
    assert model.output_shape[0] == (None, 1, DIM)
    frames = clip()
    tokens, token_mask = encode(model, frames)
    assert token_mask.tolist() == [[1.0], [1.0]]
    others = frames.copy()
    others[:, [0, 2, 3]] = 1 - others[:, [0, 2, 3]]  # every frame but the middle of the three real ones
    np.testing.assert_allclose(encode(model, others)[0], tokens, atol=1e-5)
    middle = frames.copy()
    middle[:, 1] = 1 - middle[:, 1]
    assert not np.allclose(encode(model, middle)[0], tokens, atol=1e-3)


def test_frame_average_encoder_is_blind_to_order_and_padding(video_model):
    model = video_model(frame_avg)
    assert model.output_shape[0] == (None, 1, DIM)
    frames = clip()
    tokens, _ = encode(model, frames)
    shuffled = frames[:, [2, 0, 1, 3]]
    shuffled[:, 3] = 0.5  # and another padded frame
    np.testing.assert_allclose(encode(model, shuffled)[0], tokens, atol=1e-5)


# ------------------------------------------------------------------------------------ temporal encoders

def test_per_frame_features_see_the_frame_and_the_one_before():
    frames = keras.Input((TIME, SIZE, SIZE, 3))
    model = keras.Model(frames, motion.per_frame_features(frames, "pooled_cnn", ""))
    assert model.output_shape == (None, TIME, 128)  # pooled_cnn's 64 + motion_cnn's 64
    assert motion.motion_cnn(SIZE).output_shape == (None, 64)
    original = clip()
    features = numpy(model(original, training=False))
    np.testing.assert_allclose(features.mean(-1), 0, atol=1e-4)  # layer-normalised per frame
    changed = original.copy()
    changed[:, 1] = 1 - changed[:, 1]
    moved = numpy(model(changed, training=False))
    np.testing.assert_allclose(moved[:, [0, 3]], features[:, [0, 3]], atol=1e-5)  # frames 0 and 3: untouched
    assert not np.allclose(moved[:, 2], features[:, 2], atol=1e-3)  # frame 2: its difference from frame 1


@pytest.mark.parametrize("module", [lstm, transformer], ids=["lstm", "transformer"])
def test_temporal_encoders_give_a_token_per_frame_that_ignores_padding(video_model, module):
    model = video_model(module)
    assert model.output_shape[0] == (None, TIME, DIM)
    frames = clip()
    tokens, token_mask = encode(model, frames)
    assert token_mask.tolist() == MASK.tolist()
    padded = frames.copy()
    padded[:, 3] = 1 - padded[:, 3]
    np.testing.assert_allclose(encode(model, padded)[0][:, :3], tokens[:, :3], atol=1e-5)
    reversed_frames = frames[:, [2, 1, 0, 3]]
    assert not np.allclose(encode(model, reversed_frames)[0][:, 1], tokens[:, 1], atol=1e-3)  # order matters


def test_transformer_adds_a_learned_position_per_frame(video_model):
    positions = video_model(transformer).get_layer("frame_positions")
    assert positions.max_length == TIME and positions.embeddings.shape == (TIME, DIM)


# ------------------------------------------------------------------------------------ audio and text

def test_audio_tokens_cover_four_spectrogram_steps_each():
    mel = keras.Input((18, 8))
    model = keras.Model(mel, audio_encoder.encode_audio(mel, dim=DIM))
    assert model.output_shape == (None, 4, DIM)  # 18 // 4
    spectrogram = np.random.default_rng(0).normal(size=(2, 18, 8)).astype("float32")
    tokens = numpy(model(spectrogram, training=False))
    assert (tokens >= 0).all()  # ReLU projection
    later = spectrogram.copy()
    later[:, 7:] += 3.0
    changed = numpy(model(later, training=False))
    # The first token sees steps 0..6 (two 3×3 convolutions, two 2×2 pools): not what follows.
    np.testing.assert_allclose(changed[:, 0], tokens[:, 0], atol=1e-5)
    assert not np.allclose(changed[:, 3], tokens[:, 3], atol=1e-3)


def test_text_tokens_and_the_mask_of_real_ids():
    ids = keras.Input((6,), dtype="int32")
    tokens, mask = text_encoder.encode_text(ids, vocabulary_size=30, dim=DIM, num_heads=2)
    model = keras.Model(ids, [tokens, mask])
    assert model.output_shape[0] == (None, 6, DIM)
    caption = np.array([[5, 7, 2, 0, 0, 0], [0, 0, 0, 0, 0, 0]], "int32")  # a caption; none
    encoded, real = numpy(model(caption, training=False))
    assert real.tolist() == (caption != 0).tolist()
    assert np.isfinite(encoded[0, :3]).all()


# ------------------------------------------------------------------------------------ convolution blocks

def test_conv_blocks_shapes_names_and_batch_norm_momentum():
    images = keras.Input((8, 8, 3))
    block = keras.Model(images, conv_blocks.conv_bn_relu(images, 4, 1, prefix="audio_", strides=2))
    assert block.output_shape == (None, 4, 4, 4)
    assert [layer.name for layer in block.layers[1:]] == ["audio_conv1", "audio_bn1", "audio_relu1"]
    assert block.get_layer("audio_conv1").use_bias is False
    assert block.get_layer("audio_bn1").momentum == conv_blocks.BATCH_NORM_MOMENTUM == 0.9
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    assert (numpy(block(x, training=False)) >= 0).all()
    stacked = keras.Input((16, 16, 6))
    assert conv_blocks.pooled_conv_stack(stacked, widths=(4, 8), stem_strides=2).shape == (None, 8)
