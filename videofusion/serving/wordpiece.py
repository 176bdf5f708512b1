"""Captions → token ids with TensorFlow's core ops only, equal to the training tokenizer (`caption_tokenizer.py`).

The run's tokenizer is keras-hub's `WordPieceTokenizer`, whose graph needs TensorFlow Text's ops
(`NormalizeUTF8`, `RegexSplitWithOffsets`, `CaseFoldUTF8`, `FastWordpieceTokenizeWithOffsets`); stock TF
Serving has none of them. `CoreWordPiece` does the same steps with core ops, in the same order:

1. CJK characters get a space on either side (the same RE2 pattern, `tf.strings.regex_replace`);
2. accents are stripped: each character becomes its NFD decomposition (a lookup table), then marks
   (`\\p{Mn}`) are removed;
3. the text is split on whitespace and control characters, and punctuation and CJK characters become
   words of their own (the same patterns);
4. each word is case-folded (NFKC_Casefold, a lookup table per character);
5. WordPiece: greedy longest-match-first pieces from a hash table of the vocabulary, continuation
   pieces prefixed by `##`; a word with an unmatched rest, or longer than 100 bytes, is `[UNK]`;
6. ids are cut or zero-padded to `sequence_length`.

The two character tables are computed when the model is exported, by running TensorFlow Text's own
`normalize_utf8` and `case_fold_utf8` (what the training tokenizer runs) over every Unicode code point
and keeping the ones they change, so the exported graph maps characters exactly as training did. Hangul
syllables keep their own form in step 2: NFD splits them into jamo and step 4's NFKC puts them back
together, which per-character tables cannot do. What remains different: NFKC composing across
characters that the input sent already decomposed (e.g. jamo typed one by one); the tests compare the
two tokenizers on the training captions and on a multilingual set.

Example:

>>> tokenizer = CoreWordPiece(["[PAD]", "[UNK]", "a", "cat", "##s", "!"], sequence_length=5)
>>> tokenizer(tf.constant(["A Cats!", "dog"])).numpy().tolist()
[[2, 3, 4, 5, 0], [1, 0, 0, 0, 0]]
"""

from typing import List, Sequence

import numpy as np
import tensorflow as tf

UNKNOWN = "[UNK]"
SUFFIX = "##"
MAX_BYTES_PER_WORD = 100  # TensorFlow Text's FastWordpieceTokenizer, as keras-hub uses it

# keras-hub's WordPieceTokenizer patterns (keras_hub/src/tokenizers/word_piece_tokenizer.py), RE2 syntax.
WHITESPACE = r"\s|\p{Cc}|\p{Cf}"
PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
CJK = "|".join(
    rf"[\x{{{low}}}-\x{{{high}}}]" for low, high in (
        ("4E00", "9FFF"), ("3400", "4DBF"), ("20000", "2A6DF"), ("2A700", "2B73F"), ("2B740", "2B81F"),
        ("2B820", "2CEAF"), ("F900", "FAFF"), ("2F800", "2FA1F"),
    )
)
_HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)
_SURROGATES = range(0xD800, 0xE000)


def _changed_characters(normalize) -> tuple:
    """`(characters, results)`: every code point whose one-character string `normalize` changes."""
    points = [p for p in range(0x110000) if p not in _SURROGATES]
    characters = tf.strings.unicode_encode(tf.constant(points, tf.int32)[:, tf.newaxis], "UTF-8")
    results = normalize(characters)
    changed = tf.not_equal(characters, results)
    return tf.boolean_mask(characters, changed), tf.boolean_mask(results, changed)


def normalization_tables() -> dict:
    """`{"nfd": (chars, results), "case_fold": (chars, results)}` from TensorFlow Text (export time only)."""
    import tensorflow_text as tf_text  # the training tokenizer's library; not needed by the SavedModel

    characters, decomposed = _changed_characters(lambda c: tf_text.normalize_utf8(c, "NFD"))
    hangul = tf.strings.unicode_decode(characters, "UTF-8").flat_values
    keep = tf.logical_not((hangul >= _HANGUL_SYLLABLES.start) & (hangul < _HANGUL_SYLLABLES.stop))
    return {
        "nfd": (tf.boolean_mask(characters, keep), tf.boolean_mask(decomposed, keep)),
        "case_fold": _changed_characters(tf_text.case_fold_utf8),
    }


def _character_table(keys: tf.Tensor, values: tf.Tensor) -> tf.lookup.StaticHashTable:
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value="")


def _map_characters(text: tf.Tensor, table: tf.lookup.StaticHashTable) -> tf.Tensor:
    """Replaces each character of each string found in `table` by its value."""
    characters = tf.strings.unicode_split(text, "UTF-8")
    mapped = tf.ragged.map_flat_values(table.lookup, characters)
    replaced = tf.ragged.map_flat_values(lambda m, c: tf.where(m == "", c, m), mapped, characters)
    return tf.strings.reduce_join(replaced, axis=-1)


class CoreWordPiece(tf.Module):
    """String captions `[batch]` → int32 ids `[batch, sequence_length]` (0: padding, 1: `[UNK]`)."""

    def __init__(self, vocabulary: Sequence[str], sequence_length: int, tables: dict = None):
        super().__init__()
        vocabulary = list(vocabulary)
        self.sequence_length = sequence_length
        self.unknown_id = vocabulary.index(UNKNOWN)
        self._longest = max(len(t[len(SUFFIX):] if t.startswith(SUFFIX) else t) for t in vocabulary)
        self._vocabulary = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(vocabulary, tf.range(len(vocabulary), dtype=tf.int32)),
            default_value=-1,
        )
        tables = tables or normalization_tables()
        self._nfd = _character_table(*tables["nfd"])
        self._case_fold = _character_table(*tables["case_fold"])

    def words(self, captions: tf.Tensor) -> tf.RaggedTensor:
        """Steps 1–4: `[batch]` captions → ragged `[batch, words]` normalised words."""
        text = tf.strings.regex_replace(captions, CJK, r" \0 ")
        text = tf.strings.regex_replace(_map_characters(text, self._nfd), r"\p{Mn}", "")
        text = tf.strings.regex_replace(text, f"{PUNCTUATION}|{CJK}", r" \0 ")
        text = tf.strings.regex_replace(text, WHITESPACE, " ")
        words = tf.strings.split(text, sep=" ")
        words = tf.ragged.boolean_mask(words, tf.strings.length(words) > 0)
        return tf.ragged.map_flat_values(lambda w: _map_characters(w, self._case_fold), words)

    def _pieces(self, words: tf.Tensor) -> tf.RaggedTensor:
        """Step 5: `[n]` words → ragged `[n, pieces]` ids."""
        lengths = tf.strings.length(words, unit="UTF8_CHAR")
        sizes = tf.range(1, self._longest + 1)
        count = tf.shape(words)[0]

        def step(start, failed, pieces):
            active = (start < lengths) & ~failed
            candidates = tf.strings.substr(
                tf.repeat(words[:, tf.newaxis], self._longest, axis=1),
                tf.repeat(start[:, tf.newaxis], self._longest, axis=1),
                tf.tile(sizes[tf.newaxis], [count, 1]),
                unit="UTF8_CHAR",
            )
            candidates = tf.where((start > 0)[:, tf.newaxis], SUFFIX + candidates, candidates)
            ids = self._vocabulary.lookup(candidates)
            fits = (ids >= 0) & (start[:, tf.newaxis] + sizes[tf.newaxis] <= lengths[:, tf.newaxis])
            longest = tf.reduce_max(tf.where(fits, sizes[tf.newaxis], 0), axis=1)
            matched = active & (longest > 0)
            piece = tf.gather(ids, tf.maximum(longest - 1, 0), batch_dims=1)
            return (
                tf.where(matched, start + longest, start),
                failed | (active & ~matched),
                tf.concat([pieces, tf.where(matched, piece, -1)[:, tf.newaxis]], axis=1),
            )

        def any_active(start, failed, _):
            return tf.reduce_any((start < lengths) & ~failed)

        # pieces: [n, steps], the piece each word took at each step, -1 where it took none.
        _, failed, pieces = tf.while_loop(
            any_active, step,
            (tf.zeros_like(lengths), tf.strings.length(words) > MAX_BYTES_PER_WORD, tf.zeros([count, 0], tf.int32)),
            shape_invariants=(lengths.shape, lengths.shape, tf.TensorShape([None, None])),
        )
        # One more column gives a word that failed at once a place for its [UNK].
        by_word = tf.concat([pieces, tf.fill([count, 1], -1)], axis=1)
        first = tf.range(tf.shape(by_word)[1])[tf.newaxis] == 0
        by_word = tf.where(failed[:, tf.newaxis], tf.where(first, self.unknown_id, -1), by_word)
        return tf.ragged.boolean_mask(by_word, by_word >= 0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, captions: tf.Tensor) -> tf.Tensor:
        words = self.words(captions)
        pieces = self._pieces(words.flat_values)
        ids = words.with_flat_values(pieces).merge_dims(1, 2)
        return ids.to_tensor(default_value=0, shape=[None, self.sequence_length])


def tokenize_like_training(vocabulary: List[str], sequence_length: int, captions: List[str]) -> np.ndarray:
    """The training tokenizer's ids for `captions` (`caption_tokenizer.make_tokenizer`), run inside tf.data as the
    training pipeline runs it (keras-hub takes another code path eagerly), for comparisons."""
    from videofusion.data import caption_tokenizer

    tokenizer = caption_tokenizer.make_tokenizer(vocabulary, sequence_length)
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(captions, tf.string)).map(tokenizer)
    return np.stack(list(dataset.as_numpy_iterator()))
