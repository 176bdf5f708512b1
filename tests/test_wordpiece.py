"""The core-ops caption tokenizer of the SavedModel (`serving/wordpiece.py`) against the training one
(keras-hub's WordPiece, `text.py`), and in a process where TensorFlow Text cannot be imported."""

import json

import numpy as np
import pytest
import tensorflow as tf

from videofusion import text
from videofusion.serving import wordpiece
from fresh_python import run_with_tensorflow_only

# Accents, case folding beyond ASCII (ß, final sigma, dotted İ, titlecase ǅ), compatibility forms
# (fullwidth, ligature, circled and fraction digits), CJK and Hangul, emoji, control and format
# characters, punctuation runs, a word over 100 bytes, empty and blank captions.
CAPTIONS = [
    "a cat purring", "A DOG barking!", "Ünïcödé façade, naïve café", "ＦＵＬＬ width ﬁne", "Straße ΣΊΣΥΦΟΣ",
    "中文字符测试 日本語のテキスト", "한국어 문장입니다", "emoji 🐱 cats", "tab\tnew\nline\u200bzero\u00adsoft",
    "x" * 120, "(1) ⑴ ½ №", "", "   ", "don't stop-believing...", "İstanbul ǅemal", "cats catsx scat",
]
# Whole words, continuation pieces and punctuation, so that longest-match and [UNK] words are exercised.
VOCABULARY = ["[PAD]", "[UNK]", "a", "c", "cat", "cats", "##s", "##x", "##at", "dog", "s", "t", "!", ".", "'",
              "##n", "don", "caf", "##e", "中", "文", "한국어", "ss", "stra", "##ss", "1", "(", ")"]


@pytest.fixture(scope="module")
def tables():
    return wordpiece.normalization_tables()


def test_equals_the_training_tokenizer_on_a_given_vocabulary(tables):
    core = wordpiece.CoreWordPiece(VOCABULARY, sequence_length=12, tables=tables)
    expected = wordpiece.tokenize_like_training(VOCABULARY, 12, CAPTIONS)
    got = core(tf.constant(CAPTIONS)).numpy()
    assert got.dtype == np.int32 and got.shape == (len(CAPTIONS), 12)
    np.testing.assert_array_equal(got, expected)
    # Longest match first: cats | cats ##x | s, then no "##c…" piece, so the whole word is [UNK].
    assert got[CAPTIONS.index("cats catsx scat")][:5].tolist() == [5, 5, 7, 1, 0]
    assert (got[CAPTIONS.index("")] == 0).all() and (got[CAPTIONS.index("x" * 120)][:2] == [1, 0]).all()
    # Batches in which no word needs a WordPiece step at all.
    assert core(tf.constant([""])).numpy().tolist() == [[0] * 12]
    assert core(tf.constant(["x" * 120])).numpy().tolist() == [[1] + [0] * 11]
    assert core(tf.constant([], tf.string)).numpy().shape == (0, 12)


def test_equals_the_training_tokenizer_on_a_learnt_vocabulary(tables):
    vocabulary = text.build_vocabulary_from(CAPTIONS * 10, size=400)
    core = wordpiece.CoreWordPiece(vocabulary, sequence_length=24, tables=tables)
    np.testing.assert_array_equal(core(tf.constant(CAPTIONS)).numpy(),
                                  wordpiece.tokenize_like_training(vocabulary, 24, CAPTIONS))


def test_runs_from_a_savedmodel_without_tensorflow_text(tables, tmp_path):
    core = wordpiece.CoreWordPiece(VOCABULARY, sequence_length=12, tables=tables)
    tf.saved_model.save(core, str(tmp_path / "tokenizer"))
    script = """
        import json
        import tensorflow as tf
        tokenizer = tf.saved_model.load(sys.argv[1])
        print(json.dumps(tokenizer(tf.constant(json.loads(sys.argv[2]))).numpy().tolist()))
    """
    result = run_with_tensorflow_only(script, str(tmp_path / "tokenizer"), json.dumps(CAPTIONS), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.array(json.loads(result.stdout.splitlines()[-1])),
                                  core(tf.constant(CAPTIONS)).numpy())
