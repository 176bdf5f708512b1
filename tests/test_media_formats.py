"""media.read_media on real files in many containers, codecs and shapes, and on broken inputs.

The files are written at test time by `media_factory`; frame `i` of each has brightness `10 + 4 i`, so
the brightness of a decoded frame tells which source frame was kept for its time.
"""

import math

import av
import media_factory
import numpy as np
import pytest
from media_factory import FORMATS

from videofusion.ingest import media

FPS = 10
SHORT_SIDE = 32
SAMPLE_RATE = 16000
# What each case must be, read back from the file: container, video codec, pix_fmt, size, audio codec,
# sample rate and channels (None: no audio stream).
STREAMS = {
    "mp4_h264_aac": ("mp4", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
    "webm_vp9_opus": ("webm", "vp9", "yuv420p", (64, 48), "opus", 48000, 1),
    "mkv_hevc_aac": ("matroska", "hevc", "yuv420p", (64, 48), "aac", 16000, 1),
    "avi_mjpeg_pcm": ("avi", "mjpeg", "yuvj420p", (64, 48), "pcm_s16le", 16000, 1),
    "mov_h264_aac": ("mov", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
    "h264_10bit": ("mp4", "h264", "yuv420p10le", (64, 48), "aac", 16000, 1),
    "h264_yuv444p": ("mp4", "h264", "yuv444p", (64, 48), "aac", 16000, 1),
    "odd_size_321x239": ("mp4", "h264", "yuv444p", (321, 239), "aac", 16000, 1),
    "tiny_16x16": ("mp4", "h264", "yuv420p", (16, 16), "aac", 16000, 1),
    "full_hd_1080p": ("mp4", "h264", "yuv420p", (1920, 1080), "aac", 16000, 1),
    "one_frame": ("mp4", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
    "variable_frame_rate": ("mp4", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
    "rotated_90": ("mp4", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
    "audio_5_1_48k": ("mp4", "h264", "yuv420p", (64, 48), "aac", 48000, 6),
    "audio_stereo_8k": ("mp4", "h264", "yuv420p", (64, 48), "aac", 8000, 2),
    "no_audio": ("mp4", "h264", "yuv420p", (64, 48), None, None, None),
    "unicode_name": ("mp4", "h264", "yuv420p", (64, 48), "aac", 16000, 1),
}


def container_kind(path: str) -> str:
    """The muxer that wrote `path`, from its first bytes (FFmpeg's demuxers lump mp4/mov, mkv/webm)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[4:8] == b"ftyp":
        return {b"isom": "mp4", b"qt  ": "mov"}[head[8:12]]
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head else "matroska"
    return "avi" if head[:4] == b"RIFF" and head[8:12] == b"AVI " else "unknown"


def dominant_frequency(waveform: np.ndarray, sample_rate: int) -> float:
    """The spectrum's peak, zero-padded so that short clips still resolve a fraction of a hertz."""
    n = max(len(waveform), 1 << 18)
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform)), n))
    return float(np.argmax(spectrum) * sample_rate / n)


def padding_s(codec: str, sample_rate: int) -> float:
    """The most audio a decoder may add past what was written: one codec frame.

    AAC works in 1024-sample frames; Opus in 20 ms ones, plus its pre-skip (312 samples at 48 kHz).
    """
    return {"aac": 1024 / sample_rate, "libopus": 0.020 + 312 / 48000}.get(codec, 0.0)


def source_times(kwargs: dict) -> list:
    """Each source frame's timestamp in seconds."""
    fps = kwargs.get("fps", 25)
    return list(kwargs.get("pts") or [i / fps for i in range(kwargs.get("num_frames", 50))])


@pytest.mark.parametrize("case", FORMATS)
def test_file_has_the_stated_streams(tmp_path, case):
    path = media_factory.write_format(tmp_path, case)
    kind, video_codec, pix_fmt, size, audio_codec, rate, channels = STREAMS[case]
    assert container_kind(path) == kind
    with av.open(path) as container:
        video = container.streams.video[0].codec_context
        assert (video.name, video.pix_fmt, (video.width, video.height)) == (video_codec, pix_fmt, size)
        audio = [stream.codec_context for stream in container.streams.audio]
        found = [(a.name, a.sample_rate, a.layout.nb_channels) for a in audio]
        assert found == ([(audio_codec, rate, channels)] if audio_codec else [])


@pytest.mark.parametrize("case", FORMATS)
def test_read_media_decodes_every_format(tmp_path, case):
    kwargs = FORMATS[case]
    path = media_factory.write_format(tmp_path, case)
    decoded = media.read_media(path, fps=FPS, short_side=SHORT_SIDE)

    times = source_times(kwargs)
    end = times[-1] + 1 / kwargs.get("fps", 25)
    # Output k shows the last source frame at or before time k / FPS, until the last frame ends.
    count = max(1, math.ceil(end * FPS - 1e-6))
    assert len(decoded.frames) == count
    assert decoded.duration_s == pytest.approx(end, abs=1 / FPS)
    kept = [max(i for i, t in enumerate(times) if t <= k / FPS + 1e-6) for k in range(count)]
    # The median ignores the white quadrant that the rotated case has.
    brightness = [float(np.median(frame)) for frame in decoded.frames]
    np.testing.assert_allclose(brightness, [10 + 4 * i for i in kept], atol=3)

    width, height = media.scaled_size(kwargs.get("width", 64), kwargs.get("height", 48), SHORT_SIDE)
    if kwargs.get("rotation", 0) % 180:
        width, height = height, width
    assert {frame.shape for frame in decoded.frames} == {(height, width, 3)}

    assert decoded.sample_rate == SAMPLE_RATE
    assert decoded.waveform.dtype == np.float32 and decoded.waveform.ndim == 1
    codec = kwargs.get("audio_codec", "aac")
    samples = round(end * SAMPLE_RATE)  # the tone lasts as long as the video
    if codec is None:
        assert not decoded.has_audio
        assert len(decoded.waveform) == samples and not decoded.waveform.any()
        return
    assert decoded.has_audio
    # A few samples may go in resampling; at most one codec frame may be added.
    padding = padding_s(codec, kwargs.get("sample_rate", 16000)) * SAMPLE_RATE
    assert samples - 16 <= len(decoded.waveform) <= samples + padding
    assert np.abs(decoded.waveform).max() <= 1.0
    assert dominant_frequency(decoded.waveform, SAMPLE_RATE) == pytest.approx(440.0, abs=3)


def test_rotated_video_is_decoded_upright(tmp_path):
    # Stored 64×48 with a white top-left quadrant and a display matrix that turns it 90° clockwise, so
    # a player shows it 48×64 (portrait) with the white quadrant at the top right.
    path = media_factory.write_format(tmp_path, "rotated_90")
    decoded = media.read_media(path, fps=FPS, short_side=SHORT_SIDE)
    frame = decoded.frames[0].mean(axis=2)
    assert frame.shape == (43, 32)
    top, bottom = frame[:21], frame[22:]
    left, right = slice(0, 16), slice(16, 32)
    assert top[:, right].mean() > 200
    assert max(top[:, left].mean(), bottom[:, left].mean(), bottom[:, right].mean()) < 50


def test_display_matrix_reads_back_as_counterclockwise_rotation(tmp_path):
    # PyAV's VideoFrame.rotation is counter-clockwise: a 90° clockwise display reads as -90, and
    # np.rot90(rgb, k=rotation // 90) turns the stored picture upright.
    path = media_factory.write_format(tmp_path, "rotated_90")
    with av.open(path) as container:
        frame = next(container.decode(video=0))
    assert frame.rotation == -90
    upright = np.rot90(frame.to_ndarray(format="rgb24").mean(axis=2), k=frame.rotation // 90)
    assert upright.shape == (64, 48)
    assert upright[:32, 24:].mean() > 200 and upright[:32, :24].mean() < 50


def assert_media_error(path, reason: str):
    with pytest.raises(media.MediaError) as error:
        media.read_media(str(path), fps=FPS, short_side=SHORT_SIDE)
    assert str(path) in str(error.value)
    assert reason in error.value.reason


@pytest.mark.parametrize(
    "write, reason",
    [
        (media_factory.write_random_bytes, "cannot decode"),
        (media_factory.write_text_as_mp4, "cannot decode"),
        (lambda path: path.write_bytes(b""), "empty"),
        (lambda path: None, "file not found"),
        (media_factory.write_audio_only, "no video stream"),
    ],
    ids=["random_bytes", "text", "zero_bytes", "missing", "audio_only"],
)
def test_bad_input_raises_media_error_naming_the_file(tmp_path, write, reason):
    path = tmp_path / "bad vidéo.mp4"
    write(path)
    assert_media_error(path, reason)


def test_truncated_mp4_raises(tmp_path):
    # The mp4 muxer writes the index (moov) after the data, so the first half has no index at all.
    source = media_factory.write_format(tmp_path, "mp4_h264_aac")
    path = media_factory.write_truncated(source, tmp_path / "cut short.mp4")
    with open(path, "rb") as f:
        assert b"moov" not in f.read()
    assert_media_error(path, "cannot decode")


def test_truncated_mkv_raises(tmp_path):
    # The muxer writes the duration back into the header, so half of the file still opens, declares
    # 2.06 s (the AAC track's end) and decodes its first frames without an error from FFmpeg.
    source = media_factory.write_format(tmp_path, "mkv_hevc_aac")
    path = media_factory.write_truncated(source, tmp_path / "cut short.mkv")
    with av.open(path) as container:
        assert container.duration / 1e6 == pytest.approx(2.064)
        assert 0 < sum(1 for _ in container.decode(video=0)) < 50
    assert_media_error(path, "truncated")


def test_mkv_cut_near_its_end_raises_but_a_complete_one_does_not(tmp_path):
    # 5 s of video: losing the last 10 % of the bytes loses about half a second of frames, which the
    # video track's own DURATION tag exposes.
    source = media_factory.write_media(tmp_path / "long.mkv", container="matroska", video_codec="libx265",
                                       fps=10, num_frames=50)
    assert len(media.read_media(source, fps=10, short_side=32).frames) == 50
    path = media_factory.write_truncated(source, tmp_path / "cut late.mkv", fraction=0.9)
    assert_media_error(path, "truncated")
