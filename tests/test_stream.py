"""`videofusion stream` (videofusion/serving/stream.py, live_source.py, live_buffer.py): real files played at
real speed, and local network streams served by FFmpeg over HTTP (its static binary from imageio-ffmpeg);
no PyAV mocks."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import imageio_ffmpeg
import numpy as np
import pytest
from conftest import free_ports
from media_factory import write_media

from videofusion.ingest import media
from videofusion.serving import export, stream
from videofusion.serving.live_source import SourceOptions

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, smoke_run):
    return export.export(smoke_run, str(tmp_path_factory.mktemp("stream_export") / "exports"))


@pytest.fixture(scope="module")
def model(export_dir):
    """The smoke run's export: 4 frames, stride 2 at 10 fps, so windows of 0.8 s; short side 32."""
    return stream.load_model(export_dir)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """3 s of H.264 (25 fps, 64×48) and an AAC tone."""
    return write_media(tmp_path_factory.mktemp("stream_media") / "three.mp4", num_frames=75)


def run_stream(source, model, hop_s=0.5, **source_options):
    live = stream.Stream(source, model, stream.StreamOptions(hop_s=hop_s, top_k=3,
                                                             source=SourceOptions(**source_options)))
    try:
        return list(live.results()), live
    finally:
        live.close()


def serve(path, port, loop=False):
    """FFmpeg serving `path` at its own speed as MPEG-TS over HTTP on 127.0.0.1:`port` (looped: a camera)."""
    loop_args = ["-stream_loop", "-1"] if loop else []
    return subprocess.Popen([FFMPEG, "-v", "error", *loop_args, "-re", "-i", path, "-c", "copy", "-f", "mpegts",
                             "-listen", "1", f"http://127.0.0.1:{port}/live.ts"])


def stop(process):
    process.kill()
    process.wait()


def test_a_file_at_real_speed_gives_serving_default_s_scores_window_by_window(video, model):
    started = time.monotonic()
    results, live = run_stream(video, model)
    elapsed = time.monotonic() - started
    assert elapsed >= 2.5  # played at its speed: 3 s of video
    assert [r["end"] for r in results] == [0.8, 1.3, 1.8, 2.3, 2.8]
    assert all(r["latency_s"] > 0 and r["skipped"] == 0 for r in results)
    assert live.summary.ended == "end of file" and live.summary.windows == 5
    # Parity: the same span decoded as `prepare` decodes the file, through the SavedModel's serving_default.
    whole = media.read_media(video, fps=model.fps, short_side=model.short_side)
    frames, rate = np.stack(whole.frames), model.sample_rate / model.fps
    for result in results:
        end = int(round(result["end"] * model.fps))
        start = end - model.window_frames
        expected = model.classify(frames[start:end], whole.waveform[int(round(start * rate)) : int(round(end * rate))])
        assert [item["score"] for item in result["top_k"]] == pytest.approx(np.sort(expected)[::-1][:3], abs=1e-5)


def test_a_file_without_sound_whose_resolution_changes_goes_faster_than_real_time(tmp_path, model):
    parts = [write_media(tmp_path / f"{w}.mp4", width=w, height=48, num_frames=40, audio_codec=None) for w in (64, 96)]
    (tmp_path / "parts.txt").write_text("".join(f"file '{part}'\n" for part in parts))
    changing = str(tmp_path / "changing.ts")  # 64×48 for 1.6 s, then 96×48
    subprocess.run([FFMPEG, "-v", "error", "-f", "concat", "-safe", "0", "-i", str(tmp_path / "parts.txt"),
                    "-c", "copy", changing], check=True)
    started = time.monotonic()
    results, live = run_stream(changing, model, hop_s=0.2, realtime=False)
    assert time.monotonic() - started < 3.2 / 2
    assert [r["window"] for r in results] == list(range(13))  # every window of 3.2 s: (3.2 - 0.8) / 0.2 + 1
    assert live.summary.ended == "end of file"


def test_a_network_stream_reconnects_when_its_server_comes_back(tmp_path, video, model, caplog):
    (port,) = free_ports(1)
    server = serve(video, port, loop=True)
    live = stream.Stream(f"http://127.0.0.1:{port}/live.ts", model,
                         stream.StreamOptions(hop_s=0.5, source=SourceOptions(timeout_s=2.0, max_retries=4)))
    caplog.set_level(logging.INFO, logger="absl")
    results = live.results()
    try:
        before = [next(results) for _ in range(3)]
        stop(server)
        server = serve(video, port, loop=True)
        after = [next(results) for _ in range(3)]
    finally:
        live.close()
        stop(server)
    assert [r["end"] for r in before] == [0.8, 1.3, 1.8]
    assert after[0]["end"] > before[-1]["end"] and all(r["latency_s"] > 0 for r in after)
    assert any("reconnected" in message for message in caplog.messages)


def test_a_stalled_network_stream_is_detected_by_its_timeout(video, model, caplog):
    (port,) = free_ports(1)
    server = serve(video, port, loop=True)
    live = stream.Stream(f"http://127.0.0.1:{port}/live.ts", model,
                         stream.StreamOptions(hop_s=0.5, source=SourceOptions(timeout_s=1.0, max_retries=1)))
    results = live.results()
    try:
        next(results)
        server.send_signal(signal.SIGSTOP)  # the server stops sending; its socket stays open
        started = time.monotonic()
        rest = list(results)
        waited = time.monotonic() - started
    finally:
        live.close()
        server.send_signal(signal.SIGCONT)
        stop(server)
    assert live.summary.ended.startswith("gave up") and waited < 10
    assert len(rest) <= 3  # at most the frames already received


def test_ctrl_c_ends_the_command_with_its_summary(tmp_path, export_dir):
    long_video = write_media(tmp_path / "long.mp4", num_frames=250)  # 10 s
    command = [sys.executable, "-m", "videofusion.cli", "stream", "--model", export_dir, "--hop", "0.5", long_video]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": REPO})
    first = json.loads(process.stdout.readline())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert first["window"] == 0 and {"top_k", "latency_s", "start", "end"} <= set(first)
    assert all(json.loads(line)["window"] > 0 for line in out.splitlines())
    summary = json.loads(re.search(r"\{.*\}$", err.strip().splitlines()[-1]).group())
    assert summary["ended"] == "stopped" and summary["windows"] >= 1


def _model_like(model, classify):
    """`model` (a `StreamModel`) with another `classify`: the interface a stream runs, not a mock of PyAV."""
    return stream.StreamModel(classify, model.labels, model.fps, model.sample_rate, model.short_side,
                              model.window_frames)


def test_a_model_slower_than_the_hop_skips_windows_and_says_so_once(video, model, caplog):
    def slow(frames, waveform):
        time.sleep(0.35)  # every inference takes more than the 0.1-s hop
        return model.classify(frames, waveform)

    caplog.set_level(logging.WARNING, logger="absl")
    started = time.monotonic()
    results, live = run_stream(video, _model_like(model, slow), hop_s=0.1)
    assert time.monotonic() - started < 3.0 + 1.5  # kept pace with the 3-s file instead of falling behind
    assert live.summary.skipped > 0 and sum(r["skipped"] for r in results) == live.summary.skipped
    assert len(results) + live.summary.skipped == live.summary.windows + live.summary.skipped
    indices = [r["window"] for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices) and max(indices) >= 15
    assert len([r for r in caplog.records if "skipping to the newest" in r.getMessage()]) == 1


def test_smoothing_is_an_exponential_moving_average_of_the_windows_scores(video, model):
    picks = [0, 1, 1, 2, 0]  # the class each window's model output is sure of
    one_hots = iter(np.eye(len(model.labels), dtype=np.float32)[picks])

    def sure(frames, waveform):  # the warm-up's black frames get a uniform output
        return next(one_hots) if frames.any() else np.full(len(model.labels), 1 / len(model.labels), np.float32)

    live = stream.Stream(video, _model_like(model, sure), stream.StreamOptions(
        hop_s=0.5, top_k=len(model.labels), smoothing=0.5, source=SourceOptions(realtime=False)))
    try:
        results = list(live.results())
    finally:
        live.close()
    assert len(results) == len(picks)
    expected = None
    for pick, result in zip(picks, results):
        one_hot = np.eye(len(model.labels))[pick]
        expected = one_hot if expected is None else 0.5 * expected + 0.5 * one_hot
        scores = {item["label"]: item["score"] for item in result["top_k"]}
        assert [scores[label] for label in model.labels] == pytest.approx(expected, abs=1e-6)
