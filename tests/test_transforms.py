"""The preprocessing ops shared by the pipeline and the SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from videofusion import transforms
from videofusion.transforms import ClipSpec

SPEC = ClipSpec(num_frames=4, stride=2, image_size=8, fps=10.0, sample_rate=16000, mel_bins=32)


def test_clip_indices_stride_and_loop():
    assert transforms.clip_indices(tf.constant(20), 4, 2, tf.constant(3)).numpy().tolist() == [3, 5, 7, 9]
    assert transforms.clip_indices(tf.constant(3), 4, 2, tf.constant(0)).numpy().tolist() == [0, 2, 1, 0]


def test_clip_start_centred_in_eval_and_in_range_in_training():
    assert int(transforms.clip_start(tf.constant(20), SPEC, training=False)) == (20 - 7) // 2
    assert int(transforms.clip_start(tf.constant(3), SPEC, training=False)) == 0
    starts = {int(transforms.clip_start(tf.constant(10), SPEC, training=True)) for _ in range(200)}
    assert starts == {0, 1, 2, 3}  # span 7 in 10 frames


def test_crop_and_resize_any_batch_shape():
    frames = np.zeros((2, 3, 10, 20, 3), np.uint8)
    frames[..., 5:15, :] = 255  # the centre square of the 10×20 frame is white
    out = transforms.crop_and_resize(tf.constant(frames), 8)
    assert out.shape == (2, 3, 8, 8, 3) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), 1.0, atol=1e-6)
    left = transforms.crop_and_resize(tf.constant(frames), 8, offset_x=0.0)
    np.testing.assert_allclose(left.numpy()[..., :3, :], 0.0, atol=1e-6)  # columns 0–3 of 10
    np.testing.assert_allclose(left.numpy()[..., 5:, :], 1.0, atol=1e-6)  # columns 5–9 of 10


def test_audio_window_matches_the_frames_and_pads_past_the_end():
    waveform = tf.range(15000, dtype=tf.float32)
    window = transforms.audio_window(waveform, tf.constant(5), SPEC)  # frame 5 at 10 fps = 0.5 s
    assert window.shape == (SPEC.audio_samples,) == (12800,)
    np.testing.assert_array_equal(window.numpy()[:7000], np.arange(8000, 15000))
    assert not window.numpy()[7000:].any()
    batched = transforms.audio_window(tf.stack([waveform, waveform]), tf.constant(0), SPEC)
    assert batched.shape == (2, 12800)


def test_log_mel_of_a_tone_peaks_at_its_mel_bin():
    t = np.arange(SPEC.audio_samples) / 16000
    low = transforms.log_mel_spectrogram(tf.constant(np.sin(2 * np.pi * 300 * t), tf.float32), SPEC)
    high = transforms.log_mel_spectrogram(tf.constant(np.sin(2 * np.pi * 3000 * t), tf.float32), SPEC)
    assert low.shape == (SPEC.mel_frames, SPEC.mel_bins) == (78, 32)
    assert int(np.argmax(low.numpy().mean(0))) < int(np.argmax(high.numpy().mean(0)))
    assert np.isfinite(transforms.log_mel_spectrogram(tf.zeros([12800]), SPEC).numpy()).all()


@pytest.mark.parametrize("num_frames, stride, expected", [(8, 2, 25600), (16, 1, 25600)])
def test_audio_samples_cover_the_clip(num_frames, stride, expected):
    spec = ClipSpec(num_frames=num_frames, stride=stride, image_size=8, fps=10.0, sample_rate=16000)
    assert spec.audio_samples == expected
