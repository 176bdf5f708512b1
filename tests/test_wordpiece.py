"""The core-ops caption tokenizer of the SavedModel (`serving/wordpiece.py`) against the training one
(keras-hub's WordPiece, `caption_tokenizer.py`), and in a process where TensorFlow Text cannot be imported."""

import json

import numpy as np
import pytest
import tensorflow as tf
from fresh_python import run_with_tensorflow_only

from videofusion.data import caption_tokenizer
from videofusion.serving import wordpiece

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
    vocabulary = caption_tokenizer.build_vocabulary_from(CAPTIONS * 10, size=400)
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


def _untrained_text_run(workdir) -> str:
    """A run folder (config, labels, vocabulary, model.keras) of the smoke model with the text modality,
    as training leaves it, without the training: the export's graph does not depend on the weights."""
    from videofusion import config as config_lib
    from videofusion.data.transforms import ClipSpec
    from videofusion.models import build_model
    from videofusion.run_folder import RunPaths
    from videofusion.training import train

    config = config_lib.demo_config("smoke")
    config.model.update(dict(modalities="video,audio,text", video_encoder="frame_avg", fusion="concat"))
    # What `train` fills in from a prepared folder's dataset.json (the export's metadata takes defaults
    # for what is left: the folder does not exist).
    config.data.update(dict(dir=str(workdir) + "_data", fps=10.0, sample_rate=16000, short_side=32,
                            text_length=8, vocabulary_size=len(VOCABULARY)))
    model = build_model(config.model, train.input_shapes(config, ClipSpec.from_config(config.data)), num_classes=3)
    workdir.mkdir()
    config_lib.save_run_config(config, str(workdir))
    (workdir / "labels.txt").write_text("cat\ndog\nbird\n")
    caption_tokenizer.save_vocabulary(VOCABULARY, str(workdir))
    model.save(RunPaths(str(workdir)).model)
    return str(workdir)


def test_text_model_exports_a_graph_of_core_ops_only(tables, tmp_path, monkeypatch):
    """The SavedModel of a model that reads captions (its tokenizer in the graph) has no op that TensorFlow
    alone lacks, such as TF Text's (`NormalizeUTF8`, `FastWordpieceTokenizeWithOffsets`, ...): every op
    type is registered in a process where only TensorFlow can be imported, as in TF Serving."""
    from tensorflow.core.protobuf import saved_model_pb2

    from videofusion.serving import export

    monkeypatch.setattr(wordpiece, "normalization_tables", lambda: tables)  # computed once for the module
    export_dir = export.export(_untrained_text_run(tmp_path / "run"), str(tmp_path / "exports"))
    saved_model = saved_model_pb2.SavedModel.FromString((tmp_path / "exports" / "1" / "saved_model.pb").read_bytes())
    assert "caption" in saved_model.meta_graphs[0].signature_def["serving_default"].inputs  # a text model
    ops = export.graph_ops(export_dir)
    assert not {op for op in ops if "UTF8" in op or "Wordpiece" in op or "RegexSplit" in op}
    script = """
        import json
        import tensorflow as tf
        from tensorflow.python.framework import op_def_registry
        print(json.dumps(sorted(op for op in json.loads(sys.argv[1]) if op_def_registry.get(op) is None)))
    """
    result = run_with_tensorflow_only(script, json.dumps(sorted(ops)), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []  # op types TensorFlow alone does not know
