"""The record schema: one `tf.train.SequenceExample` per clip, every key in one place.

The keys are those DMVR and TF Model Garden read (see ../shared/GUIDE.md §2), so their readers can read
our shards:

- context: label index and text, caption, source filename, clip start/end (microseconds), frame rate,
  audio sample rate and whether the source had an audio stream;
- feature lists: `image/encoded` holds one JPEG per frame step; `WAVEFORM/feature/floats` holds the
  whole mono waveform as a single float list.

Example:

>>> clip = Clip(label_index=1, label_text="left-high", filename="a.mp4", start_us=0,
...             end_us=1_000_000, frame_rate=10.0, jpeg_frames=[b"..."],
...             waveform=np.zeros(16000, np.float32), sample_rate=16000, has_audio=True)
>>> parsed = parse_clip(encode_clip(clip))
>>> int(parsed[LABEL_INDEX]), parsed[IMAGES].shape.as_list(), parsed[WAVEFORM].shape.as_list()
(1, [1], [16000])
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1

# Context keys.
LABEL_INDEX = "clip/label/index"
LABEL_TEXT = "clip/label/text"
CAPTION = "caption/string"
FILENAME = "video/filename"
START_US = "clip/start/timestamp"
END_US = "clip/end/timestamp"
FRAME_RATE = "video/frame_rate"
SAMPLE_RATE = "audio/sample_rate"
HAS_AUDIO = "audio/has_audio"

# Feature-list keys.
IMAGES = "image/encoded"
WAVEFORM = "WAVEFORM/feature/floats"


@dataclasses.dataclass
class Clip:
    """One clip as it is stored: JPEG frames at `frame_rate` and a mono float32 waveform."""

    label_index: int
    label_text: str
    filename: str
    start_us: int
    end_us: int
    frame_rate: float
    jpeg_frames: Sequence[bytes]
    waveform: np.ndarray
    sample_rate: int
    has_audio: bool
    caption: Optional[str] = None


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))


def encode_clip(clip: Clip) -> bytes:
    """Serializes `clip` as a SequenceExample (the bytes of one TFRecord)."""
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[LABEL_INDEX].CopyFrom(_int(clip.label_index))
    context[LABEL_TEXT].CopyFrom(_bytes(clip.label_text.encode("utf-8")))
    context[FILENAME].CopyFrom(_bytes(clip.filename.encode("utf-8")))
    context[START_US].CopyFrom(_int(clip.start_us))
    context[END_US].CopyFrom(_int(clip.end_us))
    context[FRAME_RATE].CopyFrom(_float(clip.frame_rate))
    context[SAMPLE_RATE].CopyFrom(_int(clip.sample_rate))
    context[HAS_AUDIO].CopyFrom(_int(1 if clip.has_audio else 0))
    if clip.caption is not None:
        context[CAPTION].CopyFrom(_bytes(clip.caption.encode("utf-8")))
    images = example.feature_lists.feature_list[IMAGES]
    for jpeg in clip.jpeg_frames:
        images.feature.add().bytes_list.value.append(jpeg)
    waveform = np.asarray(clip.waveform, dtype=np.float32)
    example.feature_lists.feature_list[WAVEFORM].feature.add().float_list.value.extend(waveform)
    return example.SerializeToString()


_CONTEXT_SPEC = {
    LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64),
    LABEL_TEXT: tf.io.FixedLenFeature([], tf.string),
    CAPTION: tf.io.FixedLenFeature([], tf.string, default_value=""),
    FILENAME: tf.io.FixedLenFeature([], tf.string),
    START_US: tf.io.FixedLenFeature([], tf.int64),
    END_US: tf.io.FixedLenFeature([], tf.int64),
    FRAME_RATE: tf.io.FixedLenFeature([], tf.float32),
    SAMPLE_RATE: tf.io.FixedLenFeature([], tf.int64),
    HAS_AUDIO: tf.io.FixedLenFeature([], tf.int64, default_value=1),
}
_SEQUENCE_SPEC = {
    IMAGES: tf.io.FixedLenSequenceFeature([], tf.string),
    WAVEFORM: tf.io.VarLenFeature(tf.float32),
}


def parse_clip(serialized: tf.Tensor) -> dict:
    """Parses one serialized clip into a flat dict of tensors keyed by the constants above.

    `IMAGES` is a `[num_frames]` string tensor of JPEGs; `WAVEFORM` a `[num_samples]` float32 tensor.
    """
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=_CONTEXT_SPEC, sequence_features=_SEQUENCE_SPEC
    )
    parsed = dict(context)
    parsed[IMAGES] = sequence[IMAGES]
    parsed[WAVEFORM] = tf.reshape(tf.sparse.to_dense(sequence[WAVEFORM]), [-1])
    return parsed
