"""The model's first audio layer: the log-mel it computes, its SpecAugment masks, and its filterbank."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from videofusion.contract import log_mel
from videofusion.data import transforms
from videofusion.data.transforms import ClipSpec
from videofusion.models.audio_preprocessing import AudioPreprocessing, SpecAugment

SPEC = ClipSpec(num_frames=8, stride=2, image_size=16, fps=10.0, sample_rate=16000, mel_bins=40)


@pytest.mark.parametrize("window_ms, hop_ms, sample_rate", [(25.0, 10.0, 16000), (32.0, 20.0, 16000),
                                                             (30.0, 10.0, 22050)])
def test_the_filterbank_is_tensorflows(window_ms, hop_ms, sample_rate):
    spec = log_mel.LogMelSpec(sample_rate, 48, window_ms, hop_ms, 125.0, 7500.0)
    expected = tf.signal.linear_to_mel_weight_matrix(48, spec.fft_length // 2 + 1, sample_rate, 125.0, 7500.0)
    np.testing.assert_allclose(log_mel.mel_matrix(spec), expected.numpy(), atol=1e-5)


def test_the_layer_computes_the_features_the_pipeline_computed():
    """The same log-mel as `transforms.log_mel_spectrogram` (what runs before 0.4.0 were fed), frame for
    frame: noise, a tone, a click and silence."""
    rng = np.random.default_rng(0)
    t = np.arange(SPEC.audio_samples) / SPEC.sample_rate
    click = np.zeros(SPEC.audio_samples)
    click[5000:5040] = 0.9
    waveforms = np.stack([0.1 * rng.normal(size=SPEC.audio_samples), 0.5 * np.sin(2 * np.pi * 1000 * t), click,
                          np.zeros(SPEC.audio_samples)]).astype("float32")
    layer_output = keras.ops.convert_to_numpy(AudioPreprocessing(SPEC.log_mel)(waveforms))
    expected = transforms.log_mel_spectrogram(tf.constant(waveforms), SPEC).numpy()
    assert layer_output.shape == expected.shape == (4, SPEC.mel_frames, 40)
    np.testing.assert_allclose(layer_output, expected, atol=2e-3)


def test_spec_augment_masks_whole_time_steps_and_mel_bins_per_clip_within_their_widths():
    augment = SpecAugment(time_masks=2, time_mask_fraction=0.1, freq_masks=2, freq_mask_bins=8)
    layer = AudioPreprocessing(SPEC.log_mel, augment, seed=1)
    waveforms = np.random.default_rng(1).normal(size=(24, SPEC.audio_samples)).astype("float32")
    clean = keras.ops.convert_to_numpy(layer(waveforms))
    np.testing.assert_allclose(clean, keras.ops.convert_to_numpy(layer(waveforms, training=False)), atol=1e-5)
    masked_clips = keras.ops.convert_to_numpy(layer(waveforms, training=True))
    widths = []
    for mel, out in zip(clean, masked_clips):
        changed = ~np.isclose(out, mel, rtol=0, atol=1e-5)  # (two calls: equal up to float rounding)
        np.testing.assert_allclose(out[changed], mel.mean(), rtol=1e-5)  # masked cells get the clip's mean
        steps, bins = changed.all(axis=1), changed.all(axis=0)
        assert np.array_equal(changed, steps[:, None] | bins[None, :])  # whole rows and columns, nothing else
        max_steps = int(0.1 * SPEC.mel_frames)
        assert steps.sum() <= 2 * max_steps and bins.sum() <= 2 * 8
        widths.append((int(steps.sum()), int(bins.sum())))
    assert sum(s > 0 for s, _ in widths) >= 18 and sum(b > 0 for _, b in widths) >= 18
    assert len(set(widths)) > 5  # each clip of the batch gets masks of its own


def test_the_layer_round_trips_through_its_config():
    layer = AudioPreprocessing(SPEC.log_mel, SpecAugment(time_masks=1), seed=4, name="audio_preprocessing")
    copy = AudioPreprocessing.from_config(layer.get_config())
    assert copy.log_mel_spec == SPEC.log_mel and copy.augment == SpecAugment(time_masks=1) and copy.seed == 4
    assert copy.compute_output_shape((None, SPEC.audio_samples)) == (None, SPEC.mel_frames, 40)
