"""Shared fixtures: tiny real videos (written with PyAV) and a tiny prepared demo dataset."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from videofusion import demo, prepare  # noqa: E402

TONE_HZ = 440.0


def tone(frequency_hz: float, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A float32 sine tone at amplitude 0.5."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 RGB frames whose brightness encodes the frame index (frame i has value 4*i + 10)."""
    values = (10 + 4 * np.arange(num_frames)).clip(0, 255).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, height, width, 3)).copy()


def write_video(path, num_frames=50, fps=25, height=48, width=64, audio_seconds=2.0, tone_hz=TONE_HZ):
    """Writes a real H.264 (+ AAC when `audio_seconds`) mp4 and returns its path as a string."""
    samples = tone(tone_hz, audio_seconds) if audio_seconds else None
    demo.write_mp4(str(path), gradient_frames(num_frames, height, width), fps, samples, 16000)
    return str(path)


@pytest.fixture(scope="session")
def tone_video(tmp_path_factory):
    """2 s, 25 fps, 64×48 H.264 + a 440 Hz AAC tone."""
    return write_video(tmp_path_factory.mktemp("media") / "tone.mp4")


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """36 demo videos of 32×32 pixels, 1 s, and their manifest (demo.demo_split: 12 train, 12 val, 12
    test, each one video of every class)."""
    return demo.write_demo_dataset(str(tmp_path_factory.mktemp("demo_raw")), num_videos=36, seed=0, size=32,
                                   duration_s=1.0)


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory, demo_raw):
    """The 36 demo videos prepared at 10 fps (10 frames each), short side 32, two shards per split."""
    output = str(tmp_path_factory.mktemp("demo_records"))
    prepare.prepare_dataset(
        prepare.PrepareOptions(manifest=demo_raw, output_dir=output, short_side=32, num_shards=2)
    )
    return output


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, demo_records):
    """A finished one-epoch run of the smoke config on `demo_records`: the frame-averaging encoder with
    concatenation (half the tracing of the default), evaluated on 2 clips × 3 crops per video, top-3.
    Tests read it (and may evaluate it); they write their own outputs elsewhere."""
    from videofusion import train
    from videofusion.config import demo_config

    config = demo_config("smoke")
    config.data.dir = demo_records
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    config.eval.update(dict(num_clips=2, num_crops=3, top_k=3))
    workdir = str(tmp_path_factory.mktemp("smoke_run") / "run")
    train.train(config, workdir)
    return workdir
