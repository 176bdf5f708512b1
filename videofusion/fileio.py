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
