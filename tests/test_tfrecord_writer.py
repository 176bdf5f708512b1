"""TFRecord framing without TensorFlow: what `prepare`'s workers write, read back by `tf.data`."""

import pytest
import tensorflow as tf

from videofusion.ingest import tfrecord_writer

RECORDS = [b"hello", b"", bytes(range(256)) * 40]  # a short one, an empty one, one of 10 KiB


def write_records(path, records):
    with open(path, "wb") as f:
        for record in records:
            f.write(tfrecord_writer.frame_record(record))
    return str(path)


def test_framed_records_are_read_back_by_tf_data(tmp_path):
    path = write_records(tmp_path / "a.tfrecord", RECORDS)
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == RECORDS


def test_frames_are_byte_for_byte_tensorflows(tmp_path):
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"hello")
    theirs = path.read_bytes()
    assert tfrecord_writer.frame_record(b"hello") == theirs
    assert int.from_bytes(theirs[-4:], "little") == tfrecord_writer.masked_crc32c(b"hello")


@pytest.mark.parametrize("where", ["length", "data"])
def test_a_corrupted_record_is_detected_by_its_crc(tmp_path, where):
    data = bytearray(tfrecord_writer.frame_record(b"hello world"))
    data[2 if where == "length" else 14] ^= 0x01  # one bit of the length, or of the data
    path = tmp_path / "corrupt.tfrecord"
    path.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError, match="corrupted record"):
        list(tf.data.TFRecordDataset(str(path)))


def test_a_record_framed_from_parts_is_tensorflows_without_joining_them(tmp_path):
    """`frame_parts` frames data given in parts (a clip's headers and JPEGs) without joining them: its
    parts, written one after the other, are the bytes TensorFlow writes for the joined data."""
    parts = [b"head", bytes(range(256)) * 40, b"", b"tail"]
    jpeg = parts[1]
    framed = tfrecord_writer.frame_parts(parts)
    assert any(part is jpeg for part in framed)  # the large part itself, not a copy
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"".join(parts))
    assert b"".join(framed) == path.read_bytes() == tfrecord_writer.frame_record(b"".join(parts))
