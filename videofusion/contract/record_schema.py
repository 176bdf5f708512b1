"""The record schema: one `tf.train.SequenceExample` per clip, every key in one place.

The keys are those DMVR and TF Model Garden read, so their readers can read our shards:

- context: label index and text, caption, source filename, clip start/end (microseconds), frame rate,
  audio sample rate and whether the source had an audio stream; an unlabeled clip (for pretraining)
  has label index `UNLABELED_INDEX` (-1) and an empty label text, which DMVR's reader reads as any other;
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
import functools
from typing import List, Optional, Sequence

import numpy as np

SCHEMA_VERSION = 1
UNLABELED_INDEX = -1  # the label index of a clip without a label

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


# --- Encoding, without TensorFlow: `prepare`'s worker processes stay light. The bytes are the protobuf
# wire format of tf.train.SequenceExample (example.proto / feature.proto); the round-trip test parses them
# with TensorFlow.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _header(number: int, length: int) -> bytes:
    """The tag and length of a length-delimited protobuf field of `length` bytes."""
    return _varint(number << 3 | 2) + _varint(length)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _header(number, len(payload)) + payload


def _bytes_feature(*values: bytes) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))  # Feature.bytes_list


def _float_feature(values: np.ndarray) -> bytes:
    packed = np.asarray(values, dtype="<f4").tobytes()
    return _field(2, _field(1, packed))  # Feature.float_list, packed


def _int_feature(value: int) -> bytes:
    return _field(3, _field(1, _varint(int(value))))  # Feature.int64_list, packed


def _map_entry(key: str, value: bytes) -> bytes:
    return _field(1, key.encode("utf-8")) + _field(2, value)


class _Parts:
    """A message as a list of byte strings and their total length, nested without copying the large
    ones (JPEGs, the waveform): each level adds a header in front. Joined once, at the end."""

    def __init__(self):
        self.parts, self.length = [], 0

    def add(self, data: bytes) -> "_Parts":
        self.parts.append(data)
        self.length += len(data)
        return self

    def add_field(self, number: int, inner: "_Parts") -> "_Parts":
        """`inner` as field `number` of this message."""
        self.add(_header(number, inner.length))
        self.parts += inner.parts
        self.length += inner.length
        return self


def _image_list(jpegs: Sequence[bytes]) -> _Parts:
    """FeatureList of one Feature{bytes_list{value: jpeg}} per frame."""
    images = _Parts()
    for jpeg in jpegs:
        length = len(jpeg)
        value = _header(1, length)  # BytesList.value
        length += len(value)
        bytes_list = _header(1, length)  # Feature.bytes_list
        length += len(bytes_list)
        images.add(_header(1, length) + bytes_list + value).add(jpeg)  # FeatureList.feature
    return images


def _feature_map(number: int, entries: dict) -> _Parts:
    """Features/FeatureLists (field `number` of the SequenceExample): a map of key → `_Parts` value."""
    features = _Parts()
    for key, value in entries.items():
        entry = _Parts().add(_field(1, key.encode("utf-8"))).add_field(2, value)
        features.add_field(1, entry)
    return _Parts().add_field(number, features)


def encode_clip_parts(clip: Clip) -> List[bytes]:
    """The bytes of `encode_clip` as consecutive parts (the JPEGs among them, not copied): what
    `prepare` writes without joining them."""
    context = {
        LABEL_INDEX: _int_feature(clip.label_index),
        LABEL_TEXT: _bytes_feature(clip.label_text.encode("utf-8")),
        FILENAME: _bytes_feature(clip.filename.encode("utf-8")),
        START_US: _int_feature(clip.start_us),
        END_US: _int_feature(clip.end_us),
        FRAME_RATE: _float_feature(np.array([clip.frame_rate])),
        SAMPLE_RATE: _int_feature(clip.sample_rate),
        HAS_AUDIO: _int_feature(1 if clip.has_audio else 0),
    }
    if clip.caption is not None:
        context[CAPTION] = _bytes_feature(clip.caption.encode("utf-8"))
    samples = _Parts().add(np.asarray(clip.waveform, dtype="<f4").tobytes())  # FloatList.value, packed
    float_list = _Parts().add_field(1, samples)
    waveform = _Parts().add_field(1, _Parts().add_field(2, float_list))  # FeatureList.feature(float_list)
    lists = {IMAGES: _image_list(clip.jpeg_frames), WAVEFORM: waveform}
    message = _feature_map(1, {key: _Parts().add(value) for key, value in context.items()})
    second = _feature_map(2, lists)
    return message.parts + second.parts


def encode_clip(clip: Clip) -> bytes:
    """Serializes `clip` as a SequenceExample (the bytes of one TFRecord)."""
    return b"".join(encode_clip_parts(clip))


# --- Parsing, with TensorFlow (imported here only: see above).


@functools.cache
def _parse_specs():
    import tensorflow as tf

    context = {
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
    sequence = {
        IMAGES: tf.io.FixedLenSequenceFeature([], tf.string),
        # Ragged, not VarLen: a sparse tensor's int64 indices cost 16 bytes per sample to build and
        # drop (parsing a 10-s clip of 100 frames: 0.6 ms of CPU instead of 1.2 ms).
        WAVEFORM: tf.io.RaggedFeature(tf.float32),
    }
    return context, sequence


def parse_identity(serialized) -> dict:
    """Parses only `LABEL_INDEX`, `FILENAME` and `START_US` of one serialized clip (no frames, no audio):
    what selecting clips needs."""
    import tensorflow as tf

    context_spec, _ = _parse_specs()
    context, _ = tf.io.parse_single_sequence_example(
        serialized, context_features={key: context_spec[key] for key in (LABEL_INDEX, FILENAME, START_US)}
    )
    return context


def clip_key(filename, start_us):
    """The clip's identity in its data folder, `filename@start_us` (strings or string tensors).

    >>> clip_key("videos/a.mp4", "30000000")
    'videos/a.mp4@30000000'
    """
    return filename + "@" + start_us


def parse_clip(serialized) -> dict:
    """Parses one serialized clip (a string tensor) into a flat dict of tensors keyed as above.

    `IMAGES` is a `[num_frames]` string tensor of JPEGs; `WAVEFORM` a `[num_samples]` float32 tensor.
    """
    import tensorflow as tf

    context_spec, sequence_spec = _parse_specs()
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    parsed = dict(context)
    parsed[IMAGES] = sequence[IMAGES]
    parsed[WAVEFORM] = sequence[WAVEFORM].flat_values
    return parsed
