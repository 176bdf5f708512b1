"""Small file helpers: paths that may be URLs, atomic writes (temp name, then rename).

Every function here takes a local path or a URL that TensorFlow's filesystem layer (`tf.io.gfile`)
opens: `gs://` (Google Cloud Storage), `s3://` and `hdfs://` (with the `tensorflow-io` plugin), and the
in-process `ram://` that the tests use. Local paths go to `os` and `open`, and nothing imports
TensorFlow for them: `prepare`'s worker processes stay free of it (they start in a fraction of a
second). The first URL imports TensorFlow (a few seconds, once per process). Errors are raised as
`OSError`s for both (`FileNotFoundError` for a missing file), so callers handle one kind.

Writes are atomic: a file is written under a temporary name next to it and renamed into place when
complete (`atomic_open`, `atomic_path`), so a reader sees it complete or not at all. On a local disk the
rename is atomic; on GCS it is a copy and a delete, so a file appears complete under its name only once
the copy is done (a GCS object is never visible half-written), and a run killed between the two leaves
the temporary object, which the next run of `prepare` removes.

Example:

>>> with atomic_open("/tmp/videofusion-doctest.txt", "w") as f:
...     _ = f.write("complete or absent, never half-written")
>>> open_file("/tmp/videofusion-doctest.txt").read()
'complete or absent, never half-written'
>>> is_url("gs://bucket/videos/a.mp4"), is_url("/data/videos/a.mp4")
(True, False)
"""

import builtins
import concurrent.futures
import contextlib
import errno
import glob as glob_lib
import io
import json
import os
import posixpath
import re
import shutil
from typing import Iterator, List, Optional, Tuple

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DOT_SEGMENT = re.compile(r"/\.(?=/|$)")  # `root/./a`: a local path resolves it, an object store would not
_STAT_THREADS = 32  # stats of URLs in flight at once: each is a round trip to the storage service


def is_url(path: str) -> bool:
    """True for `scheme://…` paths, which `tf.io.gfile` opens; False for local paths."""
    return bool(_URL.match(path))


@contextlib.contextmanager
def _os_errors(path: str) -> Iterator[None]:
    """Raises TensorFlow's file errors as the `OSError`s that `os` raises for local paths."""
    import tensorflow as tf  # here, not at the top: only URLs need it

    try:
        yield
    except tf.errors.NotFoundError as error:
        raise FileNotFoundError(errno.ENOENT, error.message, path) from error
    except tf.errors.PermissionDeniedError as error:
        raise PermissionError(errno.EACCES, error.message, path) from error
    except tf.errors.OpError as error:
        raise OSError(errno.EIO, f"{type(error).__name__}: {error.message}", path) from error


def _gfile(path: str, operation: str, *args, **kwargs):
    """`tf.io.gfile.<operation>(path, *args)` with `path`'s `.` segments dropped, and `OSError`s."""
    import tensorflow as tf  # here, not at the top: only URLs need it

    with _os_errors(path):
        return getattr(tf.io.gfile, operation)(_DOT_SEGMENT.sub("", path), *args, **kwargs)


def exists(path: str) -> bool:
    """`os.path.exists`, URLs too."""
    return _gfile(path, "exists") if is_url(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    """`os.path.isdir`, URLs too (on an object store: any object below `path/`)."""
    return _gfile(path, "isdir") if is_url(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    """`os.path.isfile`, URLs too."""
    return exists(path) and not isdir(path) if is_url(path) else os.path.isfile(path)


def listdir(path: str) -> List[str]:
    """The names in folder `path` (without the trailing `/` that object stores give folders)."""
    return [name.rstrip("/") for name in _gfile(path, "listdir")] if is_url(path) else os.listdir(path)


def walk(top: str) -> Iterator[Tuple[str, List[str], List[str]]]:
    """`os.walk(top)` (top-down; prune by editing the yielded folder list in place), URLs too.

    On an object store every entry costs a request (is it a folder?): fine for thousands of files; for
    hundreds of thousands, list them in a manifest instead.
    """
    if not is_url(top):
        yield from os.walk(top)
        return
    try:
        names = listdir(top)
    except FileNotFoundError:  # as os.walk: a missing folder yields nothing
        return
    folders = [name for name in names if isdir(posixpath.join(top, name))]
    yield top, folders, sorted(set(names) - set(folders))
    for name in folders:
        yield from walk(posixpath.join(top, name))


def glob(pattern: str) -> List[str]:
    """The sorted paths that match `pattern` (`*`, `?`, `[…]`; not `**`)."""
    return sorted(_gfile(pattern, "glob") if is_url(pattern) else glob_lib.glob(pattern))


def makedirs(path: str) -> None:
    """Creates folder `path` and its parents, if missing."""
    if is_url(path):
        _gfile(path, "makedirs")
    else:
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    """Deletes file `path`; `FileNotFoundError` if it is not there."""
    if is_url(path):
        _gfile(path, "remove")
    else:
        os.remove(path)


def rename(source: str, target: str) -> None:
    """Renames `source` to `target`, replacing it: atomic on a local disk, a copy and a delete on GCS."""
    if is_url(source):
        _gfile(source, "rename", target, overwrite=True)
    else:
        os.replace(source, target)


def copy(source: str, target: str) -> None:
    """Copies file `source` to `target`, replacing it; URLs too."""
    if is_url(source) or is_url(target):
        _gfile(source, "copy", target, overwrite=True)
    else:
        shutil.copyfile(source, target)


def stat(path: str) -> Tuple[int, int]:
    """(size in bytes, modification time in ns) of file `path`; `OSError` if it cannot be read."""
    if not is_url(path):
        info = os.stat(path)
        return info.st_size, info.st_mtime_ns
    info = _gfile(path, "stat")
    return info.length, info.mtime_nsec


def stat_all(paths: List[str]) -> List[Optional[Tuple[int, int]]]:
    """`stat` of every path, None where it fails; URLs' round trips overlap (`_STAT_THREADS` at once).

    >>> stat_all(["/nowhere/a.mp4"])
    [None]
    """
    def stat_or_none(path):
        try:
            return stat(path)
        except OSError:
            return None

    if not any(map(is_url, paths)):
        return [stat_or_none(path) for path in paths]
    with concurrent.futures.ThreadPoolExecutor(_STAT_THREADS) as pool:
        return list(pool.map(stat_or_none, paths))


def absolute(path: str) -> str:
    """`os.path.abspath` of a local path; a URL as it is."""
    return path if is_url(path) else os.path.abspath(path)


def relative(path: str, start: str) -> str:
    """`path` relative to the folder `start` (`os.path.relpath`), URLs too.

    >>> relative("gs://bucket/data/cat/a.mp4", "gs://bucket/data")
    'cat/a.mp4'
    """
    if is_url(path):
        return posixpath.relpath(_URL.sub("/", path), _URL.sub("/", start))
    return os.path.relpath(path, start)


class _GFileIO(io.RawIOBase):
    """A `tf.io.gfile.GFile` as a Python raw stream, for `io`'s buffered and text layers and PyAV.

    It never calls the GFile's `flush`, which on GCS would upload the whole file so far each time; the
    GFile uploads once, on `close`.
    """

    def __init__(self, path: str, writing: bool):
        super().__init__()
        self._path, self._writing = path, writing
        self._file = _gfile(path, "GFile", "wb" if writing else "rb")
        if writing:  # a GFile creates its file on the first write: an empty file must exist too
            self.write(b"")

    def readable(self) -> bool:
        return not self._writing

    def writable(self) -> bool:
        return self._writing

    def seekable(self) -> bool:
        return not self._writing

    def readinto(self, buffer) -> int:
        with _os_errors(self._path):
            data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data) -> int:
        with _os_errors(self._path):
            self._file.write(bytes(data))
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with _os_errors(self._path):
            self._file.seek(offset, whence)
            return self._file.tell()

    def tell(self) -> int:
        with _os_errors(self._path):
            return self._file.tell()

    def close(self) -> None:
        if not self.closed:
            with _os_errors(self._path):
                self._file.close()
        super().close()


def open_file(path: str, mode: str = "r", encoding: Optional[str] = None, newline: Optional[str] = None):
    """`open(path, mode, encoding=, newline=)` for a local path or a URL; modes `r`, `w`, `rb`, `wb`.

    A URL's file is a `tf.io.gfile.GFile` behind Python's own buffered (and, in text mode, text)
    layers, so it behaves as a local file does: `csv`, `json` and PyAV take either. Text defaults to
    UTF-8. A URL written to appears only when the file is closed.
    """
    if not is_url(path):
        return builtins.open(path, mode, encoding=encoding, newline=newline)
    if mode not in ("r", "w", "rb", "wb"):
        raise ValueError(f"{path}: mode {mode!r} is not one of r, w, rb, wb")
    writing = mode.startswith("w")
    raw = _GFileIO(path, writing)
    buffered = io.BufferedWriter(raw) if writing else io.BufferedReader(raw)
    return buffered if mode.endswith("b") else io.TextIOWrapper(buffered, encoding or "utf-8", newline=newline)


def temp_name(path: str) -> str:
    """The name a file is written under until it is complete: hidden, same extension, same folder.

    >>> temp_name("out/train-00000-of-00004.tfrecord").startswith("out/.train-00000-of-00004.tmp-")
    True
    """
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.tmp-{os.getpid()}{extension}")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path to write; renames it to `path` on success, deletes it on error."""
    makedirs(os.path.dirname(absolute(path)))
    tmp = temp_name(path)
    try:
        yield tmp
        rename(tmp, path)
    finally:
        if exists(tmp):
            remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """`open_file(path, mode)` that only replaces `path` once the `with` block ends without error."""
    with atomic_path(path) as tmp:
        with open_file(tmp, mode, **kwargs) as f:
            yield f


def write_json(path: str, value) -> None:
    """Writes `value` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path: str):
    """Reads a JSON file."""
    with open_file(path, encoding="utf-8") as f:
        return json.load(f)
