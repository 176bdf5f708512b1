"""`prepare` in parallel and after a kill -9: the same shards as one uninterrupted serial run."""

import filecmp
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_inputs")
    lines = ["path,label,split"]
    for i in range(12):
        write_video(root / f"v{i:02d}.mp4", num_frames=40, width=64, height=48, tone_hz=300 + 50 * i)
        lines.append(f"v{i:02d}.mp4,{'ab'[i % 2]},{'train' if i < 8 else 'test'}")
    path = root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def prepare_command(manifest, output, workers):
    return [sys.executable, "-m", "videofusion.cli", "prepare", "--manifest", manifest, "--output", output,
            "--short-side", "32", "--num-shards", "4", "--workers", str(workers)]


def run_prepare(manifest, output, workers):
    subprocess.run(prepare_command(manifest, output, workers), check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=REPO))


def shards(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tfrecord") and not n.startswith("."))


def assert_same_dataset(a, b):
    assert shards(a) == shards(b) and len(shards(a)) == 8
    for name in shards(a) + ["labels.txt", "errors.jsonl"]:
        assert filecmp.cmp(os.path.join(a, name), os.path.join(b, name), shallow=False), name
    assert not [n for n in os.listdir(b) if ".tmp-" in n]


@pytest.fixture(scope="module")
def serial(manifest, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("serial"))
    run_prepare(manifest, output, workers=1)
    return output


def test_output_is_identical_whatever_the_number_of_workers(manifest, serial, tmp_path):
    run_prepare(manifest, str(tmp_path), workers=3)
    assert_same_dataset(serial, str(tmp_path))


def test_rerun_after_kill_9_finishes_without_redoing_complete_shards(manifest, serial, tmp_path):
    output = str(tmp_path)
    process = subprocess.Popen(prepare_command(manifest, output, workers=1), env=dict(os.environ, PYTHONPATH=REPO),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(shards(output) if os.path.isdir(output) else []) < 2:
        assert process.poll() is None, "prepare finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {name: os.stat(os.path.join(output, name)).st_mtime_ns for name in shards(output)}
    assert 2 <= len(done_before) < 8

    run_prepare(manifest, output, workers=1)
    assert_same_dataset(serial, output)
    for name, mtime in done_before.items():  # complete shards were kept, not rewritten
        assert os.stat(os.path.join(output, name)).st_mtime_ns == mtime
