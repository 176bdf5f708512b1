"""The `videofusion` command line: usage, exit statuses of `prepare`, and `info`."""

import os
import subprocess
import sys

from conftest import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def videofusion(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=REPO))


def test_usage_lists_the_verbs():
    result = videofusion()
    assert result.returncode == 2
    for verb in ("demo-data", "prepare", "info", "train", "evaluate", "export", "predict"):
        assert verb in result.stderr


def test_prepare_exit_status_and_strict(tmp_path):
    write_video(tmp_path / "good.mp4", num_frames=5, audio_seconds=0.2)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "some.csv").write_text("path,label\ngood.mp4,a\nbad.mp4,b\n")
    (tmp_path / "none.csv").write_text("path,label\nbad.mp4,b\n")
    common = ["--short-side", "16", "--workers", "1"]
    lenient = videofusion("prepare", "--manifest", "some.csv", "--output", "out1", *common, cwd=tmp_path)
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    strict = videofusion("prepare", "--manifest", "some.csv", "--output", "out2", "--strict", *common, cwd=tmp_path)
    assert strict.returncode == 1 and "--strict: 1 inputs were skipped" in strict.stderr
    nothing = videofusion("prepare", "--manifest", "none.csv", "--output", "out3", *common, cwd=tmp_path)
    assert nothing.returncode == 1 and "No record was written" in nothing.stderr
    no_header = videofusion("prepare", "--manifest", "good.mp4", "--output", "out4", *common, cwd=tmp_path)
    assert no_header.returncode == 2 and "good.mp4" in no_header.stderr


def test_info_prints_totals_and_a_per_label_table(demo_records):
    result = videofusion("info", demo_records)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{demo_records}: 36 clips from 36 videos, 36.0 s; 0 inputs skipped"
    table = {line.split()[0]: line.split()[1:] for line in lines[4:]}
    assert table["disk-left-low"] == ["1", "1", "1", "3"]
    assert table["total"] == ["12", "12", "12", "36"]
