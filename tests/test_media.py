"""media.read_media on real mp4 files written with PyAV."""

import numpy as np
import pytest
from conftest import TONE_HZ, gradient_frames, write_video

from videofusion.ingest import demo_videos, media


def dominant_frequency(waveform: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * sample_rate / len(waveform))


def test_frames_resampled_by_timestamp(tone_video):
    decoded = media.read_media(tone_video, fps=10, short_side=24)
    assert len(decoded.frames) == 20  # 2 s at 10 fps from a 25 fps source
    assert decoded.frames[0].shape == (24, 32, 3)  # 64×48 scaled to short side 24
    assert decoded.frame_rate == pytest.approx(10.0)  # 1 / (1 / fps): two roundings
    assert decoded.duration_s == pytest.approx(2.0, abs=1e-6)
    # Frame i of the source has brightness 10 + 4 i; at 10 fps, output k shows source frame
    # floor(k * 2.5), the last one at or before time k / 10.
    brightness = [float(frame.mean()) for frame in decoded.frames]
    expected = [10 + 4 * int(k * 2.5) for k in range(20)]
    np.testing.assert_allclose(brightness, expected, atol=3)


def test_native_rate_keeps_every_frame(tone_video):
    decoded = media.read_media(tone_video, fps=25, short_side=48)
    assert len(decoded.frames) == 50
    assert decoded.frames[0].shape == (48, 64, 3)


def test_audio_is_16k_mono_float_with_the_right_pitch(tone_video):
    decoded = media.read_media(tone_video, fps=10, short_side=24)
    assert decoded.has_audio
    assert decoded.sample_rate == 16000
    assert decoded.waveform.dtype == np.float32 and decoded.waveform.ndim == 1
    # AAC works in 1024-sample frames: the stream may end up to one frame after the 2 s written.
    assert 32000 <= len(decoded.waveform) <= 32000 + 1024
    assert np.abs(decoded.waveform).max() <= 1.0
    assert dominant_frequency(decoded.waveform, 16000) == pytest.approx(TONE_HZ, abs=2)


def test_audio_resampled_to_another_rate(tone_video):
    decoded = media.read_media(tone_video, fps=10, short_side=24, sample_rate=8000)
    assert 16000 <= len(decoded.waveform) <= 16000 + 512
    assert dominant_frequency(decoded.waveform, 8000) == pytest.approx(TONE_HZ, abs=2)


def test_video_without_audio_gets_silence_of_its_length(tmp_path):
    path = write_video(tmp_path / "silent.mp4", num_frames=25, audio_seconds=0)
    decoded = media.read_media(path, fps=10, short_side=24)
    assert not decoded.has_audio
    assert len(decoded.waveform) == 16000 and not decoded.waveform.any()


def test_one_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", num_frames=1, audio_seconds=0)
    decoded = media.read_media(path, fps=10, short_side=24)
    assert len(decoded.frames) == 1


def test_frame_fn_sees_each_kept_frame(tone_video):
    decoded = media.read_media(tone_video, fps=5, short_side=24, frame_fn=lambda rgb: rgb.shape)
    assert decoded.frames == [(24, 32, 3)] * 10


@pytest.mark.parametrize(
    "content, reason",
    [(None, "file not found"), (b"", "empty"), (b"\x00\x17garbage" * 100, "cannot decode")],
)
def test_bad_files_raise_media_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad video.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(media.MediaError) as error:
        media.read_media(str(path), fps=10, short_side=24)
    assert str(path) in str(error.value) and reason in error.value.reason


@pytest.mark.parametrize("bug", [ValueError, IndexError])
def test_errors_of_our_own_code_are_not_taken_for_a_bad_file(tone_video, bug):
    """Only the decoder's (and the file system's) errors become `MediaError`; a bug raises as itself."""

    def buggy_frame_fn(rgb):
        raise bug("a bug in the frame encoder")

    with pytest.raises(bug, match="a bug in the frame encoder"):
        media.read_media(tone_video, fps=10, short_side=24, frame_fn=buggy_frame_fn)


def test_a_span_keeps_its_sound_in_sync(tmp_path):
    """A clip cut from `start` hears at time t what the source plays at start + t (audio before the span
    was once dropped uncounted, shifting the sound late)."""
    samples = np.zeros(48000, np.float32)  # 3 s at 16 kHz, a click at 1.0 s
    samples[16000:16160] = 0.8
    path = str(tmp_path / "click.mp4")
    demo_videos.write_mp4(path, gradient_frames(75, 48, 64), 25, samples, 16000)
    (segment,) = media.iter_segments(path, fps=10, short_side=24, start_s=0.7, end_s=2.3)
    assert abs(np.argmax(np.abs(segment.waveform) > 0.3) / 16000 - 0.3) < 0.01


def _segments(path, **kwargs):
    return [(s.frames, s.waveform, s.start_s) for s in media.iter_segments(path, **kwargs)]


def _assert_same_segments(a, b):
    assert len(a) == len(b)
    for (frames_a, wave_a, start_a), (frames_b, wave_b, start_b) in zip(a, b):
        assert start_a == start_b and len(frames_a) == len(frames_b)
        for frame_a, frame_b in zip(frames_a, frames_b):
            np.testing.assert_array_equal(frame_a, frame_b)
        np.testing.assert_array_equal(wave_a, wave_b)  # bit for bit


@pytest.mark.parametrize("drain_chunks", [1, 1000])
def test_queued_audio_gives_the_samples_of_frame_by_frame(tmp_path, monkeypatch, drain_chunks):
    """Audio frames wait in a queue and are downmixed and resampled many at a time: the same chunks reach
    the resampler, so the same samples come out, whether the queue is drained at every chunk (as frame by
    frame) or only at the end."""
    import media_factory

    path = media_factory.write_media(tmp_path / "stereo.mp4", num_frames=150, fps=25, sample_rate=48000,
                                     channels=2, tone_hz=300.0)
    kwargs = dict(fps=10, short_side=24, max_clip_seconds=2.0)
    default = _segments(path, **kwargs)
    monkeypatch.setattr(media, "_DRAIN_SAMPLES", drain_chunks * media._RESAMPLE_CHUNK)
    _assert_same_segments(_segments(path, **kwargs), default)


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_pictures_made_in_batches_are_those_made_one_by_one(tone_video, monkeypatch, batch):
    """Kept frames are scaled and given to `frame_fn` a few at a time: the same pictures, in order, in
    the same segments, whatever the batch."""
    kwargs = dict(fps=10, short_side=24, max_clip_seconds=0.7)
    default = _segments(tone_video, **kwargs)
    monkeypatch.setattr(media, "_PICTURE_BATCH_FRAMES", batch)
    _assert_same_segments(_segments(tone_video, **kwargs), default)
    assert [len(frames) for frames, _, _ in default] == [7, 7, 6]


def test_decoded_frames_waiting_for_their_picture_are_bounded(tmp_path, monkeypatch):
    """At most `_PICTURE_BATCH_FRAMES` decoded frames wait for their picture, and fewer large ones."""
    waiting = []
    original = media.FrameSampler.make_pictures

    def make_pictures(self):
        waiting.append(len(self._waiting))
        original(self)

    monkeypatch.setattr(media.FrameSampler, "make_pictures", make_pictures)
    monkeypatch.setattr(media, "_PICTURE_BATCH_PIXELS", 64 * 48 * 3)  # 3 frames of the 64×48 video
    path = write_video(tmp_path / "a.mp4", num_frames=50)
    assert len(media.read_media(path, fps=25, short_side=24).frames) == 50
    assert max(waiting) == 3


def test_a_span_stops_decoding_at_its_end_though_audio_is_queued(tmp_path, monkeypatch):
    """Decoding stops soon after a span's end once its audio is in, even while decoded audio frames
    still wait in the queue (they are drained to see whether they cover the span)."""
    monkeypatch.setattr(media, "_DRAIN_SAMPLES", 10**9)  # never drained by `push`
    pushed = []
    original = media.FrameSampler.push

    def push(self, frame, time_s, duration_s):
        pushed.append(time_s)
        return original(self, frame, time_s, duration_s)

    monkeypatch.setattr(media.FrameSampler, "push", push)
    path = write_video(tmp_path / "long.mp4", num_frames=250, audio_seconds=10.0)  # 10 s
    (segment,) = media.iter_segments(path, fps=10, short_side=24, start_s=1.0, end_s=2.0)
    assert len(segment.frames) == 10 and len(segment.waveform) == 16000
    assert max(pushed) < 3.0
