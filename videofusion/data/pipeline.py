"""The tf.data input pipeline: TFRecord shards → batches of (features dict, label).

Phases, top-down, in the order DMVR runs them:

1. read: the split's shards, interleaved (in training, the files and blocks of records shuffled), and
   only the clips `PipelineOptions.clips` selects: by default the labeled ones (unlabeled clips, for
   pretraining, are skipped, and only `PipelineOptions.labeled_keys` when a label-scarce run keeps a
   subset: `labeled_subset.py`), or all of them (`ALL_CLIPS`, pretraining), selected from each record's
   context before anything is decoded, and only when the split holds clips to leave out;
2. parse: one SequenceExample → tensors (`record_schema.parse_clip`);
3. sample: the clip's frame indices — in training a random stride (frame-rate jitter) and a random
   start, drawn once and shared by video and audio; in evaluation `num_clips` evenly spaced clips — and
   only those JPEG strings are gathered;
4. decode: just the gathered JPEGs;
5. preprocess: the frames are cut to uint8 squares of the data's short side (at a random place along
   the long side in training) and stay uint8 — resizing to the model's size, scaling to [0, 1] and
   the image augmentation (random resized crop, flip, colour jitter) are the model's first layer
   (`models/frame_preprocessing.py` says why); the audio: the window of waveform samples that plays
   with the frames (with frame-rate jitter, the clip's duration at its nominal stride, from its first
   frame: `_train_audio`), whose log-mel and SpecAugment are also the model's first layer
   (`models/audio_preprocessing.py`; runs from before 0.4.0 take the log-mel itself:
   `PipelineOptions.audio_input`); the caption → `tokens` when `PipelineOptions.tokenizer` is set
   (`caption_tokenizer.py`). Evaluation uses `transforms.eval_views`, the code the SavedModel runs;
6. batch and prefetch. Evaluation views are unbatched first: a batch holds views, each carrying the
   `video_id` of its video so that evaluation can average their softmax.

Training randomness is stateless: a pass over the split is fixed by a key, (seed, epoch) in `train`'s
`training_epochs`, so that a run resumed at epoch k gets epoch k's files, order and draws; a
`make_dataset` pass draws its key from `seed` at every iteration. Evaluation is deterministic.

Example:

>>> spec = ClipSpec(num_frames=8, stride=1, image_size=48, fps=10.0, sample_rate=16000, frame_size=64)
>>> options = PipelineOptions(spec)
>>> ds = make_dataset("datasets/demo/records", "train", options, batch_size=8, training=True)  # doctest: +SKIP
>>> features, labels = next(iter(ds))  # doctest: +SKIP
>>> features["frames"].shape, features["frames"].dtype, features["waveform"].shape  # doctest: +SKIP
(TensorShape([8, 8, 64, 64, 3]), tf.uint8, TensorShape([8, 12800]))
"""

import dataclasses
import functools
import os
from typing import Any, Callable, List, Optional, Tuple

import tensorflow as tf
from absl import logging

from videofusion import fileio
from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import augment, service, transforms
from videofusion.data.augment import Augmentation
from videofusion.data.transforms import ClipSpec

_SHUFFLE_BUFFER = 256
_CYCLE_LENGTH = 8
LABELED_CLIPS, ALL_CLIPS = "labeled", "all"  # `PipelineOptions.clips`


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """Everything the pipeline needs besides the data folder (built from a config)."""

    spec: ClipSpec
    augmentation: Augmentation = Augmentation()
    num_clips: int = 1
    num_crops: int = 1
    ignore_errors: bool = False
    silence_audio: bool = False  # evaluation as if no video had sound (a robustness check)
    tokenizer: Optional[Any] = None  # a `text.make_tokenizer` layer when the model reads captions
    clips: str = LABELED_CLIPS  # or ALL_CLIPS: unlabeled clips too (pretraining)
    labeled_keys: Optional[Tuple[str, ...]] = None  # the train clips that keep their label (`labeled_subset`)
    audio_input: str = tensors.WAVEFORM  # or tensors.MEL: the log-mel, for a run from before 0.4.0
    # Training examples per clip and pass: each view draws its own stride, start and square (pretraining's
    # within-clip views); a clip's views follow each other in the batches (and share its `clip_id`).
    views_per_clip: int = 1
    clip_ids: bool = False  # training examples carry `tensors.CLIP_ID` (pretraining pairs views by it)
    # The train clips to train on, each with the label to train it with (self-training: the labeled clips
    # and those a teacher labelled, `training/pseudo_labels.py`); the others are left out. Supersedes
    # `labeled_keys` and the records' labels in the train split.
    clip_labels: Optional[Tuple[Tuple[str, int], ...]] = None

    @classmethod
    def from_config(cls, config, tokenizer=None, model=None) -> "PipelineOptions":
        """The options of a run's `config`; with its `model`, the audio input that model takes."""
        return cls(
            spec=ClipSpec.from_config(config.data),
            augmentation=Augmentation.from_config(config.augment),
            num_clips=config.eval.num_clips,
            num_crops=config.eval.num_crops,
            ignore_errors=config.data.ignore_errors,
            tokenizer=tokenizer,
            audio_input=audio_input_of(model),
        )


def audio_input_of(model) -> str:
    """The audio input `model` takes: `tensors.MEL` for a run trained before 0.4.0 (its model takes the
    log-mel), else `tensors.WAVEFORM` (the model computes the log-mel; also for None, a model to build)."""
    return tensors.MEL if model is not None and tensors.MEL in model.input else tensors.WAVEFORM


class CorruptShardError(Exception):
    """A shard that TensorFlow cannot read; the message names it."""


def find_corrupt_shards(files: List[str]) -> List[str]:
    """`"path: reason"` for each shard that does not read to its end."""
    found = []
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            found.append(f"{path}: {error.message.split('[Op:')[0].strip()}")
    return found


def corrupt_shard_error(data_dir: str, error: Exception) -> Exception:
    """The error to raise when reading `data_dir` failed with `error`: one that names the bad shards."""
    bad = find_corrupt_shards(sorted(fileio.glob(os.path.join(data_dir, "*-of-*.tfrecord"))))
    if not bad:
        return error
    return CorruptShardError(
        "corrupted TFRecord shard(s): " + "; ".join(bad)
        + " — prepare the data again, or set data.ignore_errors=True to skip bad records"
    )


def decode_frames(jpegs: tf.Tensor) -> tf.Tensor:
    """`[n]` JPEG strings (all the same size) → uint8 `[n, height, width, 3]`.

    Unrolled when n is static (a clip: the decodes then run in parallel, without `map_fn`'s loop),
    else with `map_fn`.
    """
    if jpegs.shape[0] is not None:
        return tf.stack([tf.io.decode_jpeg(jpegs[i], channels=3) for i in range(jpegs.shape[0])])
    return tf.map_fn(
        functools.partial(tf.io.decode_jpeg, channels=3), jpegs,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )


def _train_frames(jpegs, indices, mask, u, spec: ClipSpec) -> tf.Tensor:
    """The clip's frames as uint8 squares of the short side, at a random place along the long side.

    Whole frames are decoded and then cut, as in evaluation: `decode_and_crop_jpeg` was no faster on
    128-pixel frames and its pixels differ from the full decode's near the crop's edges. Resizing,
    scaling and the image augmentation are the model's first layer, on the accelerator
    (`models/frame_preprocessing.py`).
    """
    squares = transforms.square_crop(decode_frames(tf.gather(jpegs, indices)), spec.frame_size, u, u)
    return transforms.zero_padding_frames(squares, mask) if spec.pad_short_videos else squares


def _train_audio(waveform, start, num_available, spec: ClipSpec) -> tuple:
    """(audio window `[spec.audio_samples]`, presence flag) of the sound from the clip's first frame on.

    The window lasts the clip's duration at the spec's stride, whatever stride frame-rate jitter drew
    for the frames: the sound keeps its natural speed and pitch (as DMVR samples audio). Stretching it to
    a jittered clip's duration would shift its pitch (speed perturbation), by up to an octave for a
    stride of 1 ± 1, and pitch can be what tells classes apart (the demo's tones).
    """
    window = transforms.audio_window(waveform, start, spec, num_available=num_available)
    return window, transforms.audio_present(window)


def train_example(serialized: tf.Tensor, seed: tf.Tensor, options: PipelineOptions,
                  labels: Optional[Callable] = None):
    """One serialized clip → (features, label) for training; `seed` (`[2]` int64) fixes every draw.
    `labels` (`clip_label_lookup`): the label comes from it, not from the record."""
    return _example_of(record_schema.parse_clip(serialized), seed, options, labels)


def train_views(serialized: tf.Tensor, seed: tf.Tensor, options: PipelineOptions,
                labels: Optional[Callable] = None):
    """One serialized clip → `options.views_per_clip` training examples (features, labels), leading axis
    views: view 0 is `train_example`'s with `seed`, view v draws from `seed` folded with v."""
    parsed = record_schema.parse_clip(serialized)
    views = [_example_of(parsed, seed if v == 0 else tf.random.experimental.stateless_fold_in(seed, v), options,
                         labels)
             for v in range(options.views_per_clip)]
    return tf.nest.map_structure(lambda *parts: tf.stack(parts), *views)


def clip_key_of(parsed: dict) -> tf.Tensor:
    """`record_schema.clip_key` of a parsed clip (or of its `record_schema.parse_identity`), a string tensor."""
    return record_schema.clip_key(parsed[record_schema.FILENAME], tf.strings.as_string(parsed[record_schema.START_US]))


def clip_id(parsed: dict) -> tf.Tensor:
    """`tensors.CLIP_ID` of a parsed clip: a hash of its `record_schema.clip_key` in [0, 2**24)."""
    return tf.strings.to_hash_bucket_fast(clip_key_of(parsed), 2 ** 24)


def clip_label_lookup(options: PipelineOptions) -> Optional[Callable]:
    """`options.clip_labels` as a function, clip key tensor → its label (-1 for a clip left out), or None
    without them.

    The keys are matched by a 62-bit hash in a sorted constant (no lookup-table resource: TensorFlow 2.21's
    map-and-batch fusion fails with "batch_size must be greater than zero" on a map that captures one
    inside `flat_map`).
    """
    if options.clip_labels is None:
        return None
    keys, labels = zip(*options.clip_labels) if options.clip_labels else (("",), (record_schema.UNLABELED_INDEX,))
    hashes = tf.strings.to_hash_bucket_fast(tf.constant(keys, tf.string), 2 ** 62).numpy()
    order = hashes.argsort()
    sorted_hashes = tf.constant(hashes[order], tf.int64)
    sorted_labels = tf.constant([labels[i] for i in order], tf.int64)

    def lookup(key: tf.Tensor) -> tf.Tensor:
        wanted = tf.strings.to_hash_bucket_fast(key, 2 ** 62)
        index = tf.minimum(tf.searchsorted(sorted_hashes, wanted[tf.newaxis])[0], tf.size(sorted_hashes) - 1)
        found = tf.gather(sorted_hashes, index) == wanted
        return tf.where(found, tf.gather(sorted_labels, index), tf.constant(record_schema.UNLABELED_INDEX, tf.int64))

    return lookup


def _example_of(parsed: dict, seed: tf.Tensor, options: PipelineOptions,
                labels: Optional[Callable]):
    spec, aug = options.spec, options.augmentation
    if options.audio_input != tensors.WAVEFORM:
        raise ValueError(f"training takes the audio window ({tensors.WAVEFORM}); audio_input="
                         f"{options.audio_input!r} is for evaluating runs from before 0.4.0")
    u = augment.draw_uniforms(seed, aug)  # [stride, start, square's place]
    jpegs = parsed[record_schema.IMAGES]
    num_available = tf.shape(jpegs)[0]
    stride = augment.random_stride(u[0], spec.stride, aug.stride_jitter)
    start = augment.random_int(u[1], 0, transforms.max_start(num_available, spec.num_frames, stride))
    indices, mask = transforms.clip_indices(num_available, spec, start, stride)
    window, present = _train_audio(parsed[record_schema.WAVEFORM], start, num_available, spec)
    features = {
        tensors.FRAMES: _train_frames(jpegs, indices, mask, u[2], spec),
        tensors.FRAME_MASK: mask,
        tensors.WAVEFORM: window,
        tensors.AUDIO_PRESENT: present,
    }
    if options.clip_ids:
        features[tensors.CLIP_ID] = clip_id(parsed)
    if options.tokenizer is not None:
        features[tensors.TOKENS] = options.tokenizer(parsed[record_schema.CAPTION])
    label = parsed[record_schema.LABEL_INDEX] if labels is None else labels(clip_key_of(parsed))
    return features, label


def eval_examples(serialized: tf.Tensor, video_id: tf.Tensor, options: PipelineOptions):
    """One serialized clip → its `num_clips * num_crops` views: (features, labels), leading axis views."""
    parsed = record_schema.parse_clip(serialized)
    jpegs = parsed[record_schema.IMAGES]
    waveform = parsed[record_schema.WAVEFORM]
    features = transforms.eval_views(
        tf.shape(jpegs)[0],
        lambda indices: decode_frames(tf.gather(jpegs, indices)),
        tf.zeros_like(waveform) if options.silence_audio else waveform,
        options.spec,
        options.num_clips,
        options.num_crops,
        options.audio_input,
    )
    views = options.num_clips * options.num_crops
    features[tensors.VIDEO_ID] = tf.fill([views], video_id)
    if options.tokenizer is not None:
        features[tensors.TOKENS] = tf.tile(options.tokenizer(parsed[record_schema.CAPTION])[tf.newaxis], [views, 1])
    return features, tf.fill([views], parsed[record_schema.LABEL_INDEX])


def _shard_files(data_dir: str, split: str, options: PipelineOptions) -> List[str]:
    if options.ignore_errors:
        logging.warning("data.ignore_errors is set: corrupted records in %s are skipped", data_dir)
    return prepared_folder.shard_files(data_dir, split)


def _read_file(path, ignore_errors: bool) -> tf.data.Dataset:
    """The records of the shard at `path` (its bad records skipped with `ignore_errors`)."""
    shard = tf.data.TFRecordDataset(path)
    return shard.ignore_errors(log_warning=True) if ignore_errors else shard


def _read(files, num_files: int, ignore_errors: bool) -> tf.data.Dataset:
    """The records of `files` (a list, or a string tensor of `num_files`), interleaved."""
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: _read_file(path, ignore_errors), cycle_length=min(num_files, _CYCLE_LENGTH),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def clip_selection(data_dir: str, split: str, options: PipelineOptions,
                   labels: Optional[Callable] = None) -> Optional[Callable]:
    """`serialized clip -> bool tensor`: whether the pipeline reads the clip, or None to read them all
    (nothing to leave out: no record's context is parsed). With `labels` (`clip_label_lookup`), in the train
    split: the clips it has a label for."""
    if options.clips == ALL_CLIPS:
        return None
    if options.clips != LABELED_CLIPS:
        raise ValueError(f"PipelineOptions.clips={options.clips!r} is not one of {LABELED_CLIPS}, {ALL_CLIPS}")
    if labels is not None and split == "train":
        return lambda serialized: labels(clip_key_of(record_schema.parse_identity(serialized))) >= 0
    if options.labeled_keys is not None and split == "train":
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(options.labeled_keys, tf.string),
                                                tf.ones([len(options.labeled_keys)], tf.int32)),
            default_value=0)

        def kept(serialized):
            return table.lookup(clip_key_of(record_schema.parse_identity(serialized))) > 0

        return kept
    if not fileio.isfile(os.path.join(data_dir, prepared_folder.DATASET_FILE)):  # bare shards: all labeled
        return None
    unlabeled = prepared_folder.read_dataset_info(data_dir).get(prepared_folder.UNLABELED_COUNTS, {})
    if not unlabeled.get(split, 0):
        return None
    return lambda serialized: (record_schema.parse_identity(serialized)[record_schema.LABEL_INDEX]
                               != record_schema.UNLABELED_INDEX)


def _selected(records: tf.data.Dataset, selection: Optional[Callable]) -> tf.data.Dataset:
    return records if selection is None else records.filter(selection)


def _shuffled_blocks(records: tf.data.Dataset, key: tf.Tensor) -> tf.data.Dataset:
    """`records` in blocks of `_SHUFFLE_BUFFER`, each block's records taken out in an order fixed by `key`
    and the block's index."""

    def shuffled_block(index, block):
        # The records taken out one by one in a shuffled order: each string copied once, where
        # shuffling the block and `unbatch` copied each twice (0.25 ms of a core per clip of 360 KB).
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(block)[0]), tf.random.experimental.stateless_fold_in(key, index))
        return tf.data.Dataset.from_tensor_slices(order).map(lambda position: block[position])

    return records.batch(_SHUFFLE_BUFFER).enumerate().flat_map(shuffled_block)


def _examples(records: tf.data.Dataset, seed_of: Callable, options: PipelineOptions, batch_size: int,
              labels: Optional[Callable]) -> tf.data.Dataset:
    """Training batches of `records`, pairs (tag, serialized clip) whose draws come from `seed_of(tag,
    serialized)` (`[2]` int64)."""
    example = train_example if options.views_per_clip == 1 else train_views
    examples = records.map(
        lambda tag, serialized: example(serialized, seed_of(tag, serialized), options, labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return (examples if options.views_per_clip == 1 else examples.unbatch()).batch(batch_size)


def _train_pass(files: List[str], options: PipelineOptions, batch_size: int, key: tf.Tensor,
                selection: Optional[Callable] = None,
                labels: Optional[Callable] = None) -> tf.data.Dataset:
    """One pass of training batches over `files`, in an order and with draws fixed by `key` (`[2]` int).

    The files are shuffled, their records interleaved, and blocks of `_SHUFFLE_BUFFER` records shuffled;
    every clip's draws come from the key and its place in the pass. Stateless ops throughout, since
    the key is a tensor (`Dataset.shuffle` and `Dataset.random` take no seed computed in the graph).
    """
    files_key, blocks_key, clips_key = tf.unstack(tf.random.experimental.stateless_split(key, 3))
    records = _selected(_read(tf.random.experimental.stateless_shuffle(tf.constant(files), files_key), len(files),
                              options.ignore_errors), selection)
    return _examples(_shuffled_blocks(records, blocks_key).enumerate(),
                     lambda index, _: tf.random.experimental.stateless_fold_in(clips_key, index),
                     options, batch_size, labels)


def _pass_key(seed: Optional[int], epoch: tf.Tensor) -> tf.Tensor:
    return tf.stack([tf.constant(seed or 0, tf.int64), tf.cast(epoch, tf.int64)])


def _train_split(data_dir: str, options: PipelineOptions):
    """(shard files, `clip_selection`, `clip_label_lookup`) of the train split."""
    files = _shard_files(data_dir, "train", options)
    labels = clip_label_lookup(options)
    return files, clip_selection(data_dir, "train", options, labels), labels


def training_epochs(data_dir: str, options: PipelineOptions, batch_size: int, seed: int,
                    first_epoch: int = 0, data_service: str = "") -> tf.data.Dataset:
    """Endless training batches: one pass over the train split for epoch `first_epoch`, then for the next
    epoch, and so on, each pass fixed by (`seed`, its epoch): a run resumed at epoch k gets the batches
    that epoch k of an uninterrupted run got. An epoch's last batch may be smaller.

    With `data_service` (a dispatcher's `grpc://HOST:PORT`), `worker_passes` run on that tf.data
    service's workers, and the batches are all of `batch_size` (`service.distributed`).
    """
    if data_service:
        return _without_autotune_thread(service.distributed(
            worker_passes(data_dir, options, batch_size, seed, first_epoch), data_service, batch_size
        ).prefetch(tf.data.AUTOTUNE))
    files, selection, labels = _train_split(data_dir, options)
    return _without_autotune_thread(tf.data.Dataset.counter(first_epoch).flat_map(
        lambda epoch: _train_pass(files, options, batch_size, _pass_key(seed, epoch), selection, labels)
    ).prefetch(tf.data.AUTOTUNE))


def worker_passes(data_dir: str, options: PipelineOptions, batch_size: int, seed: int, first_epoch: int = 0,
                  num_epochs: Optional[int] = None) -> tf.data.Dataset:
    """Training batches of the passes for epochs `first_epoch`, `first_epoch + 1`, ... (`num_epochs` of
    them; None: endless), as tf.data service workers make them under dynamic sharding.

    The first dataset (what the dispatcher splits) counts (epoch, file) pairs, the files of each epoch in
    the order (`seed`, epoch) shuffles them: the dispatcher hands them out in that order, one to each
    worker that asks, a pass after the other. A worker reads one file at a time, shuffles its records in
    blocks of `_SHUFFLE_BUFFER`, and batches the examples it makes from whichever files it got (a batch
    can hold clips of two files, of two epochs). Each clip's draws come from (`seed`, epoch, its
    `record_schema.clip_key`): whichever worker reads it, a clip gets the same frames and sound.
    Without the service, these are what one worker would make.
    """
    files, selection, labels = _train_split(data_dir, options)
    count, first = len(files), first_epoch * len(files)
    splits = (tf.data.Dataset.counter(first) if num_epochs is None
              else tf.data.Dataset.range(first, first + num_epochs * count))

    def read(split):
        epoch = split // count
        files_key, blocks_key, _ = tf.unstack(tf.random.experimental.stateless_split(_pass_key(seed, epoch), 3))
        path = tf.random.experimental.stateless_shuffle(tf.constant(files), files_key)[split % count]
        records = _selected(_read_file(path, options.ignore_errors), selection)
        block_key = tf.random.experimental.stateless_fold_in(blocks_key, split % count)
        return _shuffled_blocks(records, block_key).map(lambda serialized: (epoch, serialized))

    def clip_seed(epoch, serialized):
        clips_key = tf.random.experimental.stateless_split(_pass_key(seed, epoch), 3)[2]
        clip = tf.strings.to_hash_bucket_fast(clip_key_of(record_schema.parse_identity(serialized)), 2 ** 62)
        return tf.random.experimental.stateless_fold_in(clips_key, clip)

    return _examples(splits.flat_map(read), clip_seed, options, batch_size, labels)


def make_dataset(
    data_dir: str,
    split: str,
    options: PipelineOptions,
    batch_size: int,
    training: bool,
    seed: Optional[int] = None,
) -> tf.data.Dataset:
    """Batches of `(features, labels)` from the shards of `split` in `data_dir`.

    `features`: `frames` (uint8 squares of the data's short side), `frame_mask`, `waveform` (the audio
    window; `mel` with `options.audio_input`), `audio_present`,
    `tokens` when `options.tokenizer` is set, and in evaluation `video_id`. Training yields one random
    clip per video, a new pass at every iteration (its key drawn from `seed`); evaluation yields every
    view of every video, in a fixed order (the last batch may be smaller).
    """
    files = _shard_files(data_dir, split, options)
    labels = clip_label_lookup(options) if training else None
    selection = clip_selection(data_dir, split, options, labels)
    if training:
        dataset = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).flat_map(
            lambda draw: _train_pass(files, options, batch_size, _pass_key(seed, draw), selection, labels)
        )
    else:
        dataset = _selected(_read(files, len(files), options.ignore_errors), selection).enumerate().map(
            lambda video_id, serialized: eval_examples(serialized, video_id, options),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).unbatch().batch(batch_size)
    return _without_autotune_thread(dataset.prefetch(tf.data.AUTOTUNE))


def _without_autotune_thread(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` without tf.data's autotuning thread, which makes deleting an iterator slow.

    The thread sleeps between two tunings for a period that doubles up to 60 s, and deleting the
    iterator waits, the process idle, until that sleep ends (TensorFlow 2.21; up to 19 s measured per
    deletion, where Keras deletes the validation iterator at every epoch and the training one at the
    end of every fit; `bench_pipeline`'s iterators, deleted after 6-8 s of use: up to 2-4 s with it,
    under 0.25 s without). Without it the `AUTOTUNE` parallelism of `map` and `interleave` keeps
    TensorFlow's starting value, the number of cores (all a CPU-bound map can use), and
    `prefetch(AUTOTUNE)` still sizes its buffer by itself (the op's own tuner, which needs no thread).
    It costs nothing: `training_epochs` ran at 260 clips/s without it and 254 with it (7.4 and 7.5 CPU
    ms per clip; 2 cores, nothing else running, interleaved runs), and at the same CPU time per clip at
    load 4-5.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def model_inputs(dataset: tf.data.Dataset, model, class_weights: Optional[List[float]] = None) -> tf.data.Dataset:
    """Keeps only the features `model` takes, and gives the labels to each of its outputs.

    With `class_weights` (one per class), each example also gets its class's weight as its sample weight.
    """
    inputs, outputs = tuple(model.input), tuple(model.output)

    def select(features, labels):
        return {k: features[k] for k in inputs}, {k: labels for k in outputs}

    if class_weights is None:
        return dataset.map(select)
    weights = tf.constant(class_weights, tf.float32)

    def select_weighted(features, labels):
        x, y = select(features, labels)
        sample_weight = tf.gather(weights, tf.cast(labels, tf.int32))
        return x, y, {k: sample_weight for k in outputs}

    return dataset.map(select_weighted)
