"""The SequenceExample schema round trip."""

import numpy as np

from videofusion.contract import record_schema


def test_round_trip_keeps_every_field():
    waveform = np.linspace(-1, 1, 1234).astype(np.float32)
    clip = record_schema.Clip(
        label_index=3, label_text="right-high", filename="vids/ünï code.mp4", start_us=5,
        end_us=2_000_000, frame_rate=10.0, jpeg_frames=[b"jpeg-0", b"jpeg-1", b"jpeg-2"],
        waveform=waveform, sample_rate=16000, has_audio=False, caption="a square moves",
    )
    parsed = record_schema.parse_clip(record_schema.encode_clip(clip))
    assert int(parsed[record_schema.LABEL_INDEX]) == 3
    assert parsed[record_schema.LABEL_TEXT].numpy().decode() == "right-high"
    assert parsed[record_schema.FILENAME].numpy().decode() == "vids/ünï code.mp4"
    assert int(parsed[record_schema.START_US]) == 5 and int(parsed[record_schema.END_US]) == 2_000_000
    assert float(parsed[record_schema.FRAME_RATE]) == 10.0
    assert int(parsed[record_schema.SAMPLE_RATE]) == 16000
    assert int(parsed[record_schema.HAS_AUDIO]) == 0
    assert parsed[record_schema.CAPTION].numpy().decode() == "a square moves"
    assert parsed[record_schema.IMAGES].numpy().tolist() == [b"jpeg-0", b"jpeg-1", b"jpeg-2"]
    np.testing.assert_array_equal(parsed[record_schema.WAVEFORM].numpy(), waveform)


def test_caption_is_optional():
    clip = record_schema.Clip(0, "a", "a.mp4", 0, 1, 10.0, [b"x"], np.zeros(3, np.float32), 16000, True)
    parsed = record_schema.parse_clip(record_schema.encode_clip(clip))
    assert parsed[record_schema.CAPTION].numpy() == b""
    assert int(parsed[record_schema.HAS_AUDIO]) == 1


def test_parts_are_the_record_with_the_jpegs_not_copied():
    """`encode_clip_parts` (what `prepare` writes) joins into `encode_clip`'s bytes, for JPEGs whose
    lengths take one, two and three bytes of varint, and holds the JPEGs themselves."""
    jpegs = [b"", b"a" * 127, b"b" * 128, b"c" * 16383, b"d" * 16384]
    clip = record_schema.Clip(1, "a", "a.mp4", 0, 10**7, 10.0, jpegs, np.arange(5, dtype=np.float32), 16000, True)
    parts = record_schema.encode_clip_parts(clip)
    assert all(any(part is jpeg for part in parts) for jpeg in jpegs[1:])
    serialized = b"".join(parts)
    assert serialized == record_schema.encode_clip(clip)
    parsed = record_schema.parse_clip(serialized)
    assert parsed[record_schema.IMAGES].numpy().tolist() == jpegs
    np.testing.assert_array_equal(parsed[record_schema.WAVEFORM].numpy(), np.arange(5, dtype=np.float32))
