"""Captions → token ids with a keras-hub WordPiece tokenizer whose vocabulary comes from the training data.

`train` builds the vocabulary from the training split's `caption/string` values
(`build_vocabulary`) and saves it with the run (`vocabulary.txt`, one token per line); the pipeline,
evaluation and the SavedModel tokenize with `make_tokenizer` over that file, so all of them map a
caption to the same ids. Id 0 is padding, id 1 stands for unknown pieces. The learner (TensorFlow
Text's) keeps pieces seen at least 10 times, so a small caption set gives a vocabulary of letters and
short pieces rather than whole words.

Example:

>>> vocabulary = build_vocabulary_from(["a cat purring", "a dog barking", "a cat and a dog"], size=100)
>>> vocabulary[:4]
['[PAD]', '[UNK]', 'a', 'b']
>>> tokenizer = make_tokenizer(vocabulary, sequence_length=6)
>>> tokenizer(tf.constant("A cat, purring!")).tolist(), tokenizer(tf.constant("zebra")).tolist()
([2, 4, 15, 26, 1, 11], [1, 0, 0, 0, 0, 0])
"""

import os
from typing import Iterable, List

import keras_hub
import tensorflow as tf

from videofusion import fileio
from videofusion.contract import modalities, prepared_folder, record_schema

PAD, UNKNOWN = "[PAD]", "[UNK]"
VOCABULARY_FILE = "vocabulary.txt"


def build_vocabulary_from(captions: Iterable[str], size: int) -> List[str]:
    """A WordPiece vocabulary of at most `size` tokens (lower-cased) learnt from `captions`."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(captions) or [""], tf.string))
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset, vocabulary_size=size, lowercase=True, strip_accents=True, reserved_tokens=[PAD, UNKNOWN]
    )


def training_captions(data_dir: str) -> List[str]:
    """The non-empty captions of the training split's clips."""
    dataset = tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train"))
    captions = dataset.map(lambda r: record_schema.parse_clip(r)[record_schema.CAPTION],
                           num_parallel_calls=tf.data.AUTOTUNE)
    return [c.decode("utf-8") for c in captions.as_numpy_iterator() if c]


def build_vocabulary(data_dir: str, size: int) -> List[str]:
    """The vocabulary of the training captions in `data_dir`; raises if there are none."""
    captions = training_captions(data_dir)
    if not captions:
        raise ValueError(
            f"model.modalities includes text but no training clip in {data_dir} has a caption: "
            "add a `text` column to the manifest and prepare again"
        )
    return build_vocabulary_from(captions, size)


def save_vocabulary(vocabulary: List[str], workdir: str) -> None:
    with fileio.atomic_open(os.path.join(workdir, VOCABULARY_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in vocabulary))


def load_vocabulary(workdir: str) -> List[str]:
    with open(os.path.join(workdir, VOCABULARY_FILE), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def tokenizer_for_run(config, workdir: str, build: bool = False):
    """The tokenizer of a run whose model reads text (None otherwise).

    With `build`, the vocabulary is learnt from `config.data.dir`'s training captions and saved in
    `workdir` first (training); otherwise the saved one is used (evaluation, export).
    """
    if modalities.TEXT not in modalities.parse(config.model.modalities):
        return None
    if build:
        save_vocabulary(build_vocabulary(config.data.dir, config.data.vocabulary_size), workdir)
    return make_tokenizer(load_vocabulary(workdir), config.data.text_length)


def make_tokenizer(vocabulary: List[str], sequence_length: int) -> keras_hub.tokenizers.WordPieceTokenizer:
    """Caption string(s) → int32 ids `[..., sequence_length]`, zero-padded, unknown pieces → 1."""
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, sequence_length=sequence_length, lowercase=True, strip_accents=True,
        oov_token=UNKNOWN,
    )
