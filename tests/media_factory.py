"""Writers of real media files in many formats, made with PyAV at test time (no binaries are committed).

`write_media` writes a video whose frame `i` has the uniform brightness `10 + 4 i` (as
`conftest.gradient_frames`), so a test can tell which source frame was kept, and a sine tone at
`tone_hz` (amplitude 0.5) in every audio channel. `FORMATS` names the cases the decoder must handle;
the other writers make broken or unusual inputs.

Example:

>>> write_format(tmp_path, "webm_vp9_opus")  # doctest: +SKIP
'.../clip.webm'
>>> write_media(tmp_path / "vfr.mkv", pts=[0.0, 0.3, 0.31], audio_codec=None)  # doctest: +SKIP
"""

import os
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
_AUDIO_CHUNK = 1024
# Timestamps of frames given by `pts` are stored in milliseconds.
_VFR_TIME_BASE = Fraction(1, 1000)
# Without it the Matroska muxer writes a random segment UID and the date.
_BITEXACT = {"fflags": "+bitexact"}
# Quiet, deterministic encoder settings (x264 without B-frames gives the same bytes every run).
_VIDEO_OPTIONS = {
    "libx264": {"preset": "ultrafast", "bf": "0", "threads": "1"},
    "libx265": {
        "preset": "ultrafast",
        "x265-params": "log-level=none:bframes=0:pools=1:frame-threads=1",
    },
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "threads": "1", "lag-in-frames": "0"},
}

# Each case: the file name to write and `write_media` keyword arguments.
FORMATS = {
    "mp4_h264_aac": dict(name="clip.mp4"),
    "webm_vp9_opus": dict(
        name="clip.webm", video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000
    ),
    "mkv_hevc_aac": dict(name="clip.mkv", video_codec="libx265"),
    "avi_mjpeg_pcm": dict(
        name="clip.avi", video_codec="mjpeg", pix_fmt="yuvj420p", audio_codec="pcm_s16le"
    ),
    "mov_h264_aac": dict(name="clip.mov"),
    "h264_10bit": dict(name="10bit.mp4", pix_fmt="yuv420p10le"),
    "h264_yuv444p": dict(name="444.mp4", pix_fmt="yuv444p"),
    # x264 needs even sizes for 4:2:0; with 4:4:4 no chroma plane is halved, so 321×239 is allowed.
    "odd_size_321x239": dict(name="odd.mp4", pix_fmt="yuv444p", width=321, height=239, num_frames=10),
    "tiny_16x16": dict(name="tiny.mp4", width=16, height=16),
    "full_hd_1080p": dict(name="1080p.mp4", width=1920, height=1080, num_frames=5),
    "one_frame": dict(name="one.mp4", num_frames=1),
    "variable_frame_rate": dict(name="vfr.mp4", pts=[0.0, 0.04, 0.30, 0.31, 0.70, 0.75, 1.23]),
    "rotated_90": dict(name="rotated.mp4", rotation=90, num_frames=10),
    "audio_5_1_48k": dict(name="surround.mp4", sample_rate=48000, channels=6),
    "audio_stereo_8k": dict(name="stereo8k.mp4", sample_rate=8000, channels=2),
    "no_audio": dict(name="silent.mp4", audio_codec=None),
    "unicode_name": dict(name="vidéo 東京 clip.mp4"),
}


def frame_pixels(index: int, height: int, width: int, marker: bool = False) -> np.ndarray:
    """uint8 RGB frame `index`: brightness `10 + 4 index`; with `marker`, a white top-left quadrant."""
    rgb = np.full((height, width, 3), min(255, 10 + 4 * index), np.uint8)
    if marker:
        rgb[: height // 2, : width // 2] = 255
    return rgb


def write_media(
    path,
    *,
    container: Optional[str] = None,
    video_codec: Optional[str] = "libx264",
    pix_fmt: str = "yuv420p",
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    num_frames: int = 50,
    audio_codec: Optional[str] = "aac",
    sample_rate: int = 16000,
    channels: int = 1,
    audio_seconds: Optional[float] = None,
    tone_hz: float = 440.0,
    video_options: Optional[dict] = None,
    pts: Optional[Sequence[float]] = None,
    rotation: Optional[int] = None,
) -> str:
    """Writes a real media file with PyAV and returns its path as a string.

    Args:
      path: where to write; the container is guessed from the extension unless `container` is given.
      container: an FFmpeg muxer name ("mp4", "matroska", ...).
      video_codec: an FFmpeg encoder, or None for a file without video.
      pix_fmt, width, height, fps, num_frames: the video stream.
      audio_codec: an FFmpeg encoder, or None for a file without audio.
      sample_rate, channels: the audio stream (1, 2 or 6 channels).
      audio_seconds: the tone's length; None means as long as the video (its last frame lasts
        `1 / fps`), 0 means no audio stream.
      tone_hz: the tone's frequency.
      video_options: encoder options, replacing this module's quiet, deterministic defaults.
      pts: each frame's timestamp in seconds (variable frame rate); `num_frames` is then `len(pts)`.
      rotation: degrees a player turns the picture clockwise, like the `rotate` tag phones write;
        stored as a display matrix (PyAV's `VideoFrame.rotation` reads back `-rotation`). The frames
        then get a white top-left quadrant so that their orientation shows.
    """
    path = str(path)
    if pts is not None:
        num_frames = len(pts)
    if audio_seconds is None:
        audio_seconds = pts[-1] + 1 / fps if pts is not None else num_frames / fps
    with av.open(path, "w", format=container, container_options=_BITEXACT) as output:
        video = None
        if video_codec:
            options = _VIDEO_OPTIONS.get(video_codec, {}) if video_options is None else video_options
            video = output.add_stream(video_codec, rate=fps, options=options)
            video.width, video.height, video.pix_fmt = width, height, pix_fmt
            if pts is not None:
                video.codec_context.time_base = _VFR_TIME_BASE
            if rotation is not None:
                video.set_display_rotation(-rotation)
        audio = None
        if audio_codec and audio_seconds:
            audio = output.add_stream(audio_codec, rate=sample_rate, layout=_LAYOUTS[channels])
        if video is not None:
            for index in range(num_frames):
                frame = av.VideoFrame.from_ndarray(
                    frame_pixels(index, height, width, marker=rotation is not None), format="rgb24"
                )
                if pts is not None:
                    frame.pts, frame.time_base = round(pts[index] / _VFR_TIME_BASE), _VFR_TIME_BASE
                output.mux(video.encode(frame))
            output.mux(video.encode(None))
        if audio is not None:
            samples = _tone(tone_hz, audio_seconds, sample_rate)
            for start in range(0, len(samples), _AUDIO_CHUNK):
                chunk = np.repeat(samples[np.newaxis, start : start + _AUDIO_CHUNK], channels, axis=0)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=_LAYOUTS[channels])
                frame.sample_rate, frame.pts = sample_rate, start
                output.mux(audio.encode(frame))
            output.mux(audio.encode(None))
    return path


def _tone(frequency_hz: float, seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def write_format(directory, case: str) -> str:
    """Writes `FORMATS[case]` into `directory` and returns its path."""
    kwargs = dict(FORMATS[case])
    return write_media(os.path.join(str(directory), kwargs.pop("name")), **kwargs)


def write_truncated(src, dst, fraction: float = 0.5) -> str:
    """Copies the first `fraction` of the bytes of `src` to `dst` (a download cut short)."""
    with open(str(src), "rb") as f:
        data = f.read()
    with open(str(dst), "wb") as f:
        f.write(data[: int(len(data) * fraction)])
    return str(dst)


def write_random_bytes(path, n: int = 4096, seed: int = 0) -> str:
    """Writes `n` random bytes (not media at all)."""
    with open(str(path), "wb") as f:
        f.write(np.random.default_rng(seed).bytes(n))
    return str(path)


def write_text_as_mp4(path) -> str:
    """Writes a text file, whatever the extension of `path` says."""
    with open(str(path), "w", encoding="utf-8") as f:
        f.write("This is not a video, only text saved with a .mp4 name.\n" * 20)
    return str(path)


def write_audio_only(path) -> str:
    """Writes an mp4 (m4a) with one AAC stream (1 s of tone) and no video stream."""
    return write_media(path, container="mp4", video_codec=None, audio_seconds=1.0)
