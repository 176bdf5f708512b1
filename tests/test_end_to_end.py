"""End to end through the real command line: demo data → prepare → train → evaluate → export → predict,
for an audio-visual model and for one that reads captions too (whose SavedModel serves in a Python
that can import TensorFlow only). Parity of the signatures with `evaluate` is tests/test_export.py's."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from fresh_python import run_with_tensorflow_only

from videofusion.contract import prepared_folder, record_schema
from videofusion.data import caption_tokenizer, pipeline
from videofusion.serving import wordpiece

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The frame-averaging encoder and concatenation: half the tracing time of the smoke model's LSTM and
# cross-attention; the path through prepare, train, export and predict is the same.
LIGHT_MODEL = ("--config.model.video_encoder=frame_avg", "--config.model.fusion=concat")


def run(*args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.mark.slow
def test_demo_to_served_prediction(tmp_path):
    run("demo-data", "--output", "raw", "--num-videos", "36", "--seed", "0", cwd=tmp_path)
    run("prepare", "--manifest", "raw/manifest.csv", "--output", "records", "--short-side", "32",
        "--num-shards", "2", cwd=tmp_path)
    run("train", "--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", "run",
        "--config.data.dir=records", "--config.eval.num_clips=2", "--config.eval.num_crops=3",
        "--config.eval.top_k=3", "--config.eval.split=val", *LIGHT_MODEL, cwd=tmp_path)
    assert os.path.isfile(tmp_path / "run" / "model.keras")
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["best.keras", "last.keras"]
    assert any(name.startswith("events.out") for _, _, files in os.walk(tmp_path / "run" / "tensorboard")
               for name in files)

    printed = json.loads(run("evaluate", "--workdir", "run", cwd=tmp_path))  # eval.split and eval.top_k
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert printed["num_examples"] == metrics["num_examples"] == 12 and metrics["split"] == "val"
    assert metrics["top_k"] == 3 and 0.0 <= metrics["accuracy"] <= metrics["top_k_accuracy"] <= 1.0

    exported = run("export", "--workdir", "run", "--output", "exports", cwd=tmp_path).strip()
    assert exported == os.path.join("exports", "1")
    assert os.path.isfile(tmp_path / "exports" / "1" / "saved_model.pb")

    videos = sorted(os.listdir(tmp_path / "raw" / "videos"))[:2]
    lines = run("predict", "--model", "exports/1", "--top-k", "2",
                *[os.path.join("raw", "videos", v) for v in videos], cwd=tmp_path).strip().splitlines()
    predictions = [json.loads(line) for line in lines]
    assert [p["path"] for p in predictions] == [os.path.join("raw", "videos", v) for v in videos]
    for p in predictions:
        assert len(p["top_k"]) == 2 and p["top_k"][0]["score"] >= p["top_k"][1]["score"]


@pytest.mark.slow
def test_text_model_serves_captions(tmp_path):
    run("demo-data", "--output", "raw", "--num-videos", "36", "--seed", "1", cwd=tmp_path)
    manifest = (tmp_path / "raw" / "manifest.csv").read_text().splitlines()
    captions = ["a square drifts", "a tone plays", "something moves"]
    lines = [manifest[0] + ",text"] + [f"{row},{captions[i % 3]}" for i, row in enumerate(manifest[1:])]
    (tmp_path / "raw" / "manifest.csv").write_text("\n".join(lines) + "\n")
    run("prepare", "--manifest", "raw/manifest.csv", "--output", "records", "--short-side", "32", cwd=tmp_path)
    run("train", "--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", "run",
        "--config.data.dir=records", "--config.model.modalities=video,audio,text", "--config.data.text_length=8",
        *LIGHT_MODEL, cwd=tmp_path)
    vocabulary = (tmp_path / "run" / "vocabulary.txt").read_text().split()
    # Pieces seen fewer than 10 times are left out by the WordPiece learner: letters, here.
    assert vocabulary[:2] == ["[PAD]", "[UNK]"] and {"s", "##q"} <= set(vocabulary)
    run("export", "--workdir", "run", "--output", "exports", cwd=tmp_path)
    video = os.path.join("raw", "videos", sorted(os.listdir(tmp_path / "raw" / "videos"))[0])
    with_caption = json.loads(run("predict", "--model", "exports/1", "--caption", "a square drifts", video,
                                  cwd=tmp_path))
    assert len(with_caption["top_k"]) == 5

    # The SavedModel's core-ops tokenizer equals the training one on the training captions ...
    training_captions = caption_tokenizer.training_captions(str(tmp_path / "records"))
    core = wordpiece.CoreWordPiece(vocabulary, sequence_length=8)
    np.testing.assert_array_equal(core(tf.constant(training_captions)).numpy(),
                                  wordpiece.tokenize_like_training(vocabulary, 8, training_captions))
    # ... and both signatures of the text model run where only TensorFlow is importable, and agree.
    record = next(iter(tf.data.TFRecordDataset(prepared_folder.shard_files(str(tmp_path / "records"), "test"))))
    parsed = record_schema.parse_clip(record)
    np.savez(tmp_path / "clip.npz", frames=pipeline.decode_frames(parsed[record_schema.IMAGES]).numpy()[np.newaxis],
             waveform=parsed[record_schema.WAVEFORM].numpy()[np.newaxis], record=np.array([record.numpy()], object))
    served = run_with_tensorflow_only(TEXT_SERVE_SCRIPT, "exports/1", "clip.npz",
                                      parsed[record_schema.CAPTION].numpy().decode(), cwd=str(tmp_path))
    assert served.returncode == 0, served.stderr[-4000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["media"], result["examples"], atol=1e-5)
    assert result["media"] != result["no_caption"]  # the caption counts


TEXT_SERVE_SCRIPT = """
    import json
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    clip = np.load(sys.argv[2], allow_pickle=True)
    media = {"frames": tf.constant(clip["frames"]), "waveform": tf.constant(clip["waveform"]),
             "num_frames": tf.constant([-1]), "num_samples": tf.constant([-1])}
    serve = loaded.signatures["serving_default"]
    probabilities = lambda outputs: outputs["probabilities"].numpy()[0].tolist()
    print(json.dumps({
        "media": probabilities(serve(**media, caption=tf.constant([sys.argv[3]]))),
        "no_caption": probabilities(serve(**media, caption=tf.constant([""]))),
        "examples": probabilities(loaded.signatures["serve_examples"](examples=tf.constant(list(clip["record"])))),
    }))
"""
