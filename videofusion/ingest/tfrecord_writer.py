"""Writing TFRecord files without TensorFlow, so that `prepare` never imports it.

A TFRecord file is a sequence of records, each framed as: the data length (uint64, little-endian),
the masked CRC-32C of those 8 bytes (uint32), the data, the masked CRC-32C of the data (uint32) —
the format `tf.data.TFRecordDataset` reads (tensorflow/core/lib/io/record_writer.cc).

Example:

>>> framed = frame_record(b"hello")
>>> len(framed), framed[:8]
(21, b'\\x05\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
"""

import struct
from typing import List, Sequence

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`."""
    return _mask(google_crc32c.value(data))


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """`data` framed as one TFRecord record."""
    return b"".join(frame_parts([data]))


def frame_parts(parts: Sequence[bytes]) -> List[bytes]:
    """The record whose data is the concatenation of `parts`, framed, as parts: the data is neither
    joined nor copied (a clip's record holds megabytes of JPEGs), e.g. for `file.writelines`."""
    crc, size = 0, 0
    for part in parts:
        crc = google_crc32c.extend(crc, part)
        size += len(part)
    length = struct.pack("<Q", size)
    return [length + struct.pack("<I", masked_crc32c(length)), *parts, struct.pack("<I", _mask(crc))]
