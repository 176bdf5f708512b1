"""Progress of long work: a tqdm bar when stderr is a terminal, an absl log line every 10 s otherwise
(so that a log file or CI shows how far a command got without a bar's carriage returns).

Example:

>>> for video in track(["a.mp4", "b.mp4"], desc="embed", unit="video"):
...     pass
"""

import sys
import time
from typing import Iterable, Iterator, Optional

from absl import logging


def _tqdm():
    """tqdm's bar, imported only for a terminal: a run that logs to a file saves its import (about
    30 ms of CPU time at every start of `prepare`)."""
    import tqdm

    return tqdm.tqdm


def track(items: Iterable, desc: str, unit: str, total: Optional[int] = None) -> Iterator:
    """Iterates `items` with a progress bar on a terminal, and a log line every 10 s otherwise.

    >>> [i * i for i in track(range(3), desc="squares", unit="number")]
    [0, 1, 4]
    """
    if total is None:
        try:
            total = len(items)
        except TypeError:  # generators, and tf.data datasets of unknown length
            total = None
    if sys.stderr.isatty():
        yield from _tqdm()(items, desc=desc, unit=unit, total=total)
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
    """Progress of work items that each cover some seconds of media: count, media-seconds/s, ETA (`total`
    None: a count of unknown end).

    A tqdm bar on a terminal, a log line every 10 s otherwise.

    >>> bar = RateProgress(total=2, desc="prepare", unit="video")
    >>> bar.update(seconds=3.0); bar.update(seconds=1.0); bar.close()
    """

    def __init__(self, total: Optional[int], desc: str, unit: str):
        self._total, self._desc, self._unit = total, desc, unit
        self._done, self._seconds = 0, 0.0
        self._started = self._last_log = time.monotonic()
        self._bar = _tqdm()(total=total, desc=desc, unit=unit) if sys.stderr.isatty() else None

    def _rates(self) -> tuple:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        known = self._done and self._total is not None
        remaining = (self._total - self._done) * elapsed / self._done if known else float("nan")
        return self._seconds / elapsed, remaining

    def update(self, seconds: float = 0.0) -> None:
        self._done += 1
        self._seconds += seconds
        media_rate, _ = self._rates()
        if self._bar is not None:
            if self._seconds:
                self._bar.set_postfix_str(f"{media_rate:.1f} {self._unit}-s/s", refresh=False)
            self._bar.update(1)
        elif time.monotonic() - self._last_log >= 10:
            self._log()

    def _log(self) -> None:
        media_rate, remaining = self._rates()
        rate = (f"{media_rate:.1f} {self._unit}-seconds/s" if self._seconds
                else f"{self._done / max(time.monotonic() - self._started, 1e-9):.1f} {self._unit}s/s")
        total = "?" if self._total is None else self._total
        logging.info("%s: %d/%s %ss, %s, ETA %.0f s", self._desc, self._done, total, self._unit, rate, remaining)
        self._last_log = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._log()
