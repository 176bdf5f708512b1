"""The preprocessing ops shared by the pipeline and the SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from videofusion.contract import tensors
from videofusion.data import transforms
from videofusion.data.transforms import ClipSpec

SPEC = ClipSpec(num_frames=4, stride=2, image_size=8, fps=10.0, sample_rate=16000, mel_bins=32)
PAD = ClipSpec(num_frames=4, stride=2, image_size=8, fps=10.0, sample_rate=16000, mel_bins=32, pad_short_videos=True)


def as_lists(pair):
    return [t.numpy().tolist() for t in pair]


def test_clip_indices_stride_loop_and_pad():
    assert as_lists(transforms.clip_indices(tf.constant(20), SPEC, tf.constant(3))) == [[3, 5, 7, 9], [1, 1, 1, 1]]
    assert as_lists(transforms.clip_indices(tf.constant(3), SPEC, tf.constant(0))) == [[0, 2, 1, 0], [1, 1, 1, 1]]
    assert as_lists(transforms.clip_indices(tf.constant(3), PAD, tf.constant(0))) == [[0, 2, 2, 2], [1, 1, 0, 0]]
    assert as_lists(transforms.clip_indices(tf.constant(20), SPEC, tf.constant(0), stride=3))[0] == [0, 3, 6, 9]


def test_eval_clip_starts_centred_or_evenly_spaced():
    assert transforms.eval_clip_starts(tf.constant(20), SPEC, 1).numpy().tolist() == [(20 - 7) // 2]
    assert transforms.eval_clip_starts(tf.constant(3), SPEC, 1).numpy().tolist() == [0]
    assert transforms.eval_clip_starts(tf.constant(17), SPEC, 3).numpy().tolist() == [0, 5, 10]


def test_square_crop_any_batch_shape_kept_or_fitted_to_the_frame_size():
    frames = np.zeros((2, 3, 10, 20, 3), np.uint8)
    frames[..., 10:, :] = 255  # the right half of the 10×20 frame is white
    frames[..., 5, :] = 7  # and column 5 grey
    out = transforms.square_crop(tf.constant(frames), 10)
    assert out.shape == (2, 3, 10, 10, 3) and out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), frames[..., 5:15, :])  # the right size: an exact crop
    left = transforms.square_crop(tf.constant(frames), 10, offset_x=0.0).numpy()
    assert not left[..., :5, :].any() and (left[..., 5, :] == 7).all() and not left[..., 6:, :].any()
    fitted = transforms.square_crop(tf.constant(frames), 4, offset_x=1.0)
    assert fitted.shape == (2, 3, 4, 4, 3) and fitted.dtype == tf.uint8
    assert (fitted.numpy() == 255).all()  # columns 10–19, white, resized to 4×4


def test_square_window_places_the_short_side_square():
    assert transforms.square_window(tf.constant(10), tf.constant(30), 0.5, 0.5).numpy().tolist() == [0, 10, 10, 10]
    assert transforms.square_window(tf.constant(30), tf.constant(10), 1.0, 1.0).numpy().tolist() == [20, 0, 10, 10]
    uniform = [transforms.square_window(tf.constant(10), tf.constant(13), u, u).numpy()[1]
               for u in np.arange(0, 1, 0.01)]
    assert np.bincount(uniform).tolist() == [25, 25, 25, 25]  # all 4 places, equally often


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


def test_eval_views_are_clip_major_with_three_crops():
    frames = np.zeros((17, 10, 30, 3), np.uint8)
    frames[:, :, :10] = 255  # white left third: only the left crop sees white
    frames[10] = 128  # frame 10 starts the third clip
    views = transforms.eval_views(tf.constant(17), lambda i: tf.gather(tf.constant(frames), i),
                                  tf.zeros([40000]), SPEC, num_clips=3, num_crops=3)
    assert views[tensors.FRAMES].shape == (9, 4, 8, 8, 3) and views[tensors.FRAMES].dtype == tf.uint8
    assert views[tensors.WAVEFORM].shape == (9, 12800) and views[tensors.FRAME_MASK].shape == (9, 4)
    assert tensors.MEL not in views
    means = views[tensors.FRAMES].numpy().mean(axis=(2, 3, 4))
    np.testing.assert_array_equal(means[[0, 3]][:, 0], 255)  # left crop of clips 1 and 2
    np.testing.assert_array_equal(means[[1, 2, 4, 5]][:, 0], 0)
    np.testing.assert_array_equal(means[6:, 0], 128)  # clip 3 starts at frame 10


def test_eval_views_zero_the_padding_frames():
    frames = np.full((3, 8, 8, 3), 200, np.uint8)
    views = transforms.eval_views(tf.constant(3), lambda i: tf.gather(tf.constant(frames), i), tf.zeros([40000]),
                                  PAD, num_clips=1, num_crops=1)
    assert views[tensors.FRAME_MASK].numpy().tolist() == [[1, 1, 0, 0]]
    assert (views[tensors.FRAMES].numpy()[0, :2] == 200).all() and not views[tensors.FRAMES].numpy()[0, 2:].any()


def test_eval_views_of_a_run_from_before_0_4_0_carry_the_log_mel():
    """Such a run's model takes the log-mel of each view's audio window, not the window."""
    t = np.arange(40000) / 16000
    waveform = tf.constant(np.sin(2 * np.pi * 440 * t), tf.float32)
    frames = tf.zeros((17, 8, 8, 3), tf.uint8)
    old = transforms.eval_views(tf.constant(17), lambda i: tf.gather(frames, i), waveform, SPEC, 3, 1, tensors.MEL)
    new = transforms.eval_views(tf.constant(17), lambda i: tf.gather(frames, i), waveform, SPEC, 3, 1)
    assert old[tensors.MEL].shape == (3, 78, 32) and tensors.WAVEFORM not in old
    np.testing.assert_allclose(old[tensors.MEL], transforms.log_mel_spectrogram(new[tensors.WAVEFORM], SPEC),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="audio_input='spectrogram'"):
        transforms.eval_views(tf.constant(17), lambda i: tf.gather(frames, i), waveform, SPEC, 1, 1, "spectrogram")
