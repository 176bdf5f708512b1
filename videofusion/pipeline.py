"""The tf.data input pipeline: TFRecord shards → batches of (features dict, label).

Phases, top-down, in the order DMVR runs them:

1. read: the split's shards, interleaved (shuffled file order and records in training);
2. parse: one SequenceExample → tensors (`records.parse_clip`);
3. sample: pick the clip's frame indices (random start in training, centred in evaluation) and gather
   only those JPEG strings;
4. decode: decode just the gathered JPEGs;
5. preprocess: crop/resize/scale the frames, cut the audio window that plays with them (same start) and
   take its log-mel (`transforms.clip_features`, the code the SavedModel also runs);
6. batch and prefetch.

Example:

>>> spec = ClipSpec(num_frames=8, stride=1, image_size=64, fps=10.0, sample_rate=16000)
>>> ds = make_dataset("datasets/demo/records", "train", spec, batch_size=8, training=True)  # doctest: +SKIP
>>> features, labels = next(iter(ds))  # doctest: +SKIP
>>> features["frames"].shape, features["mel"].shape  # doctest: +SKIP
(TensorShape([8, 8, 64, 64, 3]), TensorShape([8, 78, 64]))
"""

import glob
import os
from typing import List, Optional

import tensorflow as tf

from videofusion import records, transforms
from videofusion.transforms import ClipSpec

_SHUFFLE_BUFFER = 256


def shard_files(data_dir: str, split: str) -> List[str]:
    """The sorted shard paths of `split` in `data_dir`; raises if there are none."""
    files = sorted(glob.glob(os.path.join(data_dir, f"{split}-*-of-*.tfrecord")))
    if not files:
        raise FileNotFoundError(
            f"no {split} shards ({split}-*-of-*.tfrecord) in {data_dir}: run `videofusion prepare`"
        )
    return files


def decode_frames(jpegs: tf.Tensor) -> tf.Tensor:
    """`[n]` JPEG strings (all the same size) → uint8 `[n, height, width, 3]`."""
    return tf.map_fn(
        lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )


def example_to_features(serialized: tf.Tensor, spec: ClipSpec, training: bool, seed=None):
    """One serialized clip → (features dict, label): parse, sample, decode, preprocess."""
    parsed = records.parse_clip(serialized)
    jpegs = parsed[records.IMAGES]
    num_available = tf.shape(jpegs)[0]
    start = transforms.clip_start(num_available, spec, training, seed=seed)
    indices = transforms.clip_indices(num_available, spec.num_frames, spec.stride, start)
    frames = decode_frames(tf.gather(jpegs, indices))
    crop_offset = tf.random.uniform([2], seed=seed) if training else (0.5, 0.5)
    features = transforms.clip_features(
        frames, parsed[records.WAVEFORM], start, spec, crop_offset=(crop_offset[0], crop_offset[1])
    )
    return features, parsed[records.LABEL_INDEX]


def make_dataset(
    data_dir: str,
    split: str,
    spec: ClipSpec,
    batch_size: int,
    training: bool,
    seed: Optional[int] = None,
) -> tf.data.Dataset:
    """Batches of `({"frames": [b, n, s, s, 3], "mel": [b, t, mels]}, label [b])` from `split`.

    In training the file and record order are shuffled every epoch; in evaluation the order is fixed.
    Either way every clip is seen once per pass (the last batch may be smaller).
    """
    files = shard_files(data_dir, split)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    if training:
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda serialized: example_to_features(serialized, spec, training, seed),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)
