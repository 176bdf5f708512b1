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
