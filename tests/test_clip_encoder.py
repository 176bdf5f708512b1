"""One video → its chunk of framed clip records, the work of `prepare`'s worker processes, on real files."""

import os

import numpy as np
import tensorflow as tf

from videofusion.contract import record_schema
from videofusion.ingest import clip_encoder

PARAMS = clip_encoder.EncodeParams(fps=5.0, short_side=16, sample_rate=16000, max_clip_seconds=1.0, jpeg_quality=90)


def task(video, chunk_path, **fields):
    values = dict(path="clips/tone.mp4", resolved=video, label="tone", label_index=2, caption="a tone",
                  start=None, end=None, params=PARAMS, chunk_path=str(chunk_path))
    return clip_encoder.EncodeTask(**{**values, **fields})


def test_a_video_becomes_a_chunk_of_one_record_per_clip(tone_video, tmp_path):
    result = clip_encoder.encode_video(task(tone_video, tmp_path / "tone.part"))
    assert (result.clips, result.error, result.chunk_path) == (2, None, str(tmp_path / "tone.part"))
    assert abs(result.duration_s - 2.0) < 0.05  # 2 s of video, in clips of at most 1 s
    clips = [record_schema.parse_clip(r) for r in tf.data.TFRecordDataset(result.chunk_path)]
    assert [int(c[record_schema.START_US]) for c in clips] == [0, 1_000_000]
    for clip in clips:
        assert int(clip[record_schema.LABEL_INDEX]) == 2 and clip[record_schema.LABEL_TEXT].numpy() == b"tone"
        assert clip[record_schema.FILENAME].numpy() == b"clips/tone.mp4"  # as given, not the resolved path
        assert clip[record_schema.CAPTION].numpy() == b"a tone" and int(clip[record_schema.HAS_AUDIO]) == 1
        assert clip[record_schema.IMAGES].shape[0] == 5  # 1 s at 5 fps
        first = tf.io.decode_jpeg(clip[record_schema.IMAGES][0]).numpy()
        assert first.shape[0] == 16 and first.shape[2] == 3  # 64×48 scaled to a short side of 16
        assert clip[record_schema.WAVEFORM].shape[0] == 16000


def test_a_span_is_stored_at_its_time_in_the_source(tone_video, tmp_path):
    result = clip_encoder.encode_video(task(tone_video, tmp_path / "span.part", start=0.6, end=1.4))
    (clip,) = [record_schema.parse_clip(r) for r in tf.data.TFRecordDataset(result.chunk_path)]
    assert int(clip[record_schema.START_US]) == 600_000 and clip[record_schema.IMAGES].shape[0] == 4


def test_a_file_that_is_no_video_leaves_no_chunk_and_says_why(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("this is a text file, not a video")
    result = clip_encoder.encode_video(task(str(notes), tmp_path / "notes.part"))
    assert (result.clips, result.chunk_path) == (0, None) and "cannot decode" in result.error
    assert not os.path.exists(tmp_path / "notes.part")


def test_jpeg_frames_decode_to_the_frame():
    frame = np.zeros((16, 24, 3), np.uint8)
    frame[..., 0] = 200  # red: a swapped RGB/BGR would show as blue
    decoded = tf.io.decode_jpeg(clip_encoder.encode_jpeg(frame, quality=95)).numpy()
    assert decoded.shape == (16, 24, 3)
    assert np.abs(decoded.astype(int) - frame).max() <= 3
