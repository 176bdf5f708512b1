"""Small file helpers: atomic writes (temp name, then rename) and progress reporting.

Example:

>>> with atomic_open("/tmp/videofusion-doctest.txt", "w") as f:
...     _ = f.write("complete or absent, never half-written")
>>> open("/tmp/videofusion-doctest.txt").read()
'complete or absent, never half-written'
"""

import contextlib
import json
import os
import sys
import time
from typing import Iterable, Iterator, Optional

from absl import logging
import tqdm


def temp_name(path: str) -> str:
    """The name a file is written under until it is complete: hidden, same extension.

    >>> temp_name("out/train-00000-of-00004.tfrecord").startswith("out/.train-00000-of-00004.tmp-")
    True
    """
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.tmp-{os.getpid()}{extension}")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path to write; renames it to `path` on success, deletes it on error."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """`open(path, mode)` that only replaces `path` once the `with` block ends without error."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_json(path: str, value) -> None:
    """Writes `value` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path: str):
    """Reads a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def progress(items: Iterable, desc: str, unit: str, total: Optional[int] = None) -> Iterator:
    """Iterates `items` with a progress bar on a terminal, and a log line every 10 s otherwise."""
    if total is None:
        try:
            total = len(items)
        except TypeError:  # generators, and tf.data datasets of unknown length
            total = None
    if sys.stderr.isatty():
        yield from tqdm.tqdm(items, desc=desc, unit=unit, total=total)
        return
    last_log = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        if time.monotonic() - last_log >= 10:
            logging.info("%s: %d/%s (%s)", desc, done, total if total is not None else "?", unit)
            last_log = time.monotonic()
    logging.info("%s: done, %d (%s)", desc, done, unit)


class RateProgress:
    """Progress of work items that each cover some seconds of media: count, media-seconds/s, ETA.

    A tqdm bar on a terminal, a log line every 10 s otherwise.

    >>> bar = RateProgress(total=2, desc="prepare", unit="video")
    >>> bar.update(seconds=3.0); bar.update(seconds=1.0); bar.close()
    """

    def __init__(self, total: int, desc: str, unit: str):
        self._total, self._desc, self._unit = total, desc, unit
        self._done, self._seconds = 0, 0.0
        self._started = self._last_log = time.monotonic()
        self._bar = tqdm.tqdm(total=total, desc=desc, unit=unit) if sys.stderr.isatty() else None

    def _rates(self) -> tuple:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        remaining = (self._total - self._done) * elapsed / self._done if self._done else float("nan")
        return self._seconds / elapsed, remaining

    def update(self, seconds: float = 0.0) -> None:
        self._done += 1
        self._seconds += seconds
        media_rate, _ = self._rates()
        if self._bar is not None:
            self._bar.set_postfix_str(f"{media_rate:.1f} {self._unit}-s/s", refresh=False)
            self._bar.update(1)
        elif time.monotonic() - self._last_log >= 10:
            self._log()

    def _log(self) -> None:
        media_rate, remaining = self._rates()
        logging.info(
            "%s: %d/%d %ss, %.1f %s-seconds/s, ETA %.0f s",
            self._desc, self._done, self._total, self._unit, media_rate, self._unit, remaining,
        )
        self._last_log = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._log()
