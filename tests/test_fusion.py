"""Fusion modules on tiny streams: the documented output widths, masked tokens and absent modalities unread.

One model per fusion method, built once: video tokens with a mask (the last one padded), audio tokens with a
presence flag."""

import keras
import numpy as np
import pytest

from videofusion.models.fusion import bottleneck, concat, cross_attention
from videofusion.models.fusion.streams import Stream, pool, pool_and_join

DIM = 8
VIDEO_MASK = np.array([[1, 1, 0], [1, 1, 0]], "float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def fusion_model(module) -> keras.Model:
    """(video tokens, video mask, audio tokens, audio present) → `module.fuse` of the two streams."""
    video, video_mask = keras.Input((3, DIM)), keras.Input((3,))
    audio, present = keras.Input((5, DIM)), keras.Input((1,))
    streams = {
        "video": Stream(video, keras.ops.greater(video_mask, 0.5), keras.ops.ones_like(video_mask[:, :1])),
        "audio": Stream(audio, None, present),
    }
    fused = module.fuse(streams, dim=DIM, num_heads=2, num_layers=1, num_bottlenecks=2)
    return keras.Model([video, video_mask, audio, present], fused)


def streams(seed=0, present=1.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(2, 3, DIM)).astype("float32"), VIDEO_MASK,
            rng.normal(size=(2, 5, DIM)).astype("float32"), np.full((2, 1), present, "float32")]


def fused(model, inputs):
    return numpy(model(inputs, training=False))


# Output widths (fusion/__init__.py): concat mixes to dim; cross-attention pools each modality; the bottleneck
# adds its pooled bottleneck tokens.
METHODS = {"concat": (concat, DIM), "cross_attention": (cross_attention, 2 * DIM),
           "bottleneck": (bottleneck, 3 * DIM)}


@pytest.fixture(scope="module", params=list(METHODS))
def method(request):
    module, width = METHODS[request.param]
    return fusion_model(module), width


def test_fused_width_and_padded_video_tokens_unread(method):
    model, width = method
    assert model.output_shape == (None, width)
    inputs = streams()
    padded = list(inputs)
    padded[0] = inputs[0].copy()
    padded[0][:, 2] += 10.0  # the padded video token
    np.testing.assert_allclose(fused(model, padded), fused(model, inputs), atol=1e-5)


def test_absent_audio_is_not_read_and_present_audio_is(method):
    model, _ = method
    silent = streams(present=0.0)
    noisy = list(silent)
    noisy[2] = silent[2] * 5 + 3
    np.testing.assert_allclose(fused(model, noisy), fused(model, silent), atol=1e-5)
    heard = streams(present=1.0)
    louder = list(heard)
    louder[2] = heard[2] * 5 + 3
    assert not np.allclose(fused(model, louder), fused(model, heard), atol=1e-3)


def test_streams_pool_real_tokens_of_present_modalities():
    tokens = np.arange(12, dtype="float32").reshape(2, 3, 2)  # [[0, 1], [2, 3], [4, 5]], [[6, 7], ...]
    mask = np.array([[True, True, False], [True, True, True]])
    present = np.array([[1.0], [0.0]], "float32")
    stream = Stream(tokens, mask, present)
    assert numpy(stream.token_mask()).tolist() == [[True, True, False], [False, False, False]]
    assert numpy(Stream(tokens).token_mask()).all()
    np.testing.assert_allclose(numpy(pool("video", stream)), [[1.0, 2.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(numpy(pool("video", Stream(tokens, mask))), [[1.0, 2.0], [8.0, 9.0]], atol=1e-6)
    joined = pool_and_join({"video": stream, "audio": Stream(tokens[:, :1] * 0 - 1)}, extra=[tokens[:, 0]])
    # Sorted modality order (audio, video), then the extra tensors.
    np.testing.assert_allclose(numpy(joined), [[-1, -1, 1, 2, 0, 1], [-1, -1, 0, 0, 6, 7]], atol=1e-6)
