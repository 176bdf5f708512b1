"""Progress of long work off a terminal (a log file, CI): every item passes through, and absl logs lines."""

import io
import sys

import pytest

from videofusion import progress


@pytest.fixture
def absl_lines(caplog):
    """absl's INFO lines (absl's own level may have been raised by an earlier test in the process)."""
    caplog.set_level("INFO", logger="absl")
    return caplog


def test_track_yields_every_item_and_logs_when_done(absl_lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # stderr goes to a file, not a terminal
    assert list(progress.track(iter(["a.mp4", "b.mp4", "c.mp4"]), desc="embed", unit="video")) == [
        "a.mp4", "b.mp4", "c.mp4"]
    assert "embed: done, 3 (video)" in absl_lines.text
    assert "\r" not in sys.stderr.getvalue()  # no progress bar's carriage returns in the log file


def test_rate_progress_logs_its_count_when_closed(absl_lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.RateProgress(total=3, desc="prepare", unit="video")
    bar.update(seconds=3.0)
    bar.update(seconds=1.0)
    bar.close()
    assert "prepare: 2/3 videos" in absl_lines.text
    assert "\r" not in sys.stderr.getvalue()


def test_rate_progress_without_a_total_or_seconds_logs_items_per_second(absl_lines, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.RateProgress(total=None, desc="embed", unit="video")
    bar.update()
    bar.close()
    assert "embed: 1/? videos" in absl_lines.text and "videos/s" in absl_lines.text
    assert "video-seconds/s" not in absl_lines.text
