"""The SequenceExample schema round trip."""

import numpy as np

from videofusion import records


def test_round_trip_keeps_every_field():
    waveform = np.linspace(-1, 1, 1234).astype(np.float32)
    clip = records.Clip(
        label_index=3, label_text="right-high", filename="vids/ünï code.mp4", start_us=5,
        end_us=2_000_000, frame_rate=10.0, jpeg_frames=[b"jpeg-0", b"jpeg-1", b"jpeg-2"],
        waveform=waveform, sample_rate=16000, has_audio=False, caption="a square moves",
    )
    parsed = records.parse_clip(records.encode_clip(clip))
    assert int(parsed[records.LABEL_INDEX]) == 3
    assert parsed[records.LABEL_TEXT].numpy().decode() == "right-high"
    assert parsed[records.FILENAME].numpy().decode() == "vids/ünï code.mp4"
    assert int(parsed[records.START_US]) == 5 and int(parsed[records.END_US]) == 2_000_000
    assert float(parsed[records.FRAME_RATE]) == 10.0
    assert int(parsed[records.SAMPLE_RATE]) == 16000
    assert int(parsed[records.HAS_AUDIO]) == 0
    assert parsed[records.CAPTION].numpy().decode() == "a square moves"
    assert parsed[records.IMAGES].numpy().tolist() == [b"jpeg-0", b"jpeg-1", b"jpeg-2"]
    np.testing.assert_array_equal(parsed[records.WAVEFORM].numpy(), waveform)


def test_caption_is_optional():
    clip = records.Clip(0, "a", "a.mp4", 0, 1, 10.0, [b"x"], np.zeros(3, np.float32), 16000, True)
    parsed = records.parse_clip(records.encode_clip(clip))
    assert parsed[records.CAPTION].numpy() == b""
    assert int(parsed[records.HAS_AUDIO]) == 1
