"""`predict` and `embed` on Apache Beam (beam_inference.py), on the DirectRunner in multi-processing mode:
the local runners' results on good videos and bad media, and Dataflow refusing local paths.

The corpus is that of prepare's Beam tests (tiny 1 s videos, a text file named .mp4, a missing file)
with the bad media of test_media_formats.py added (an empty file, a truncated mp4, an audio-only file), a
video without sound, and a 2 s video that becomes 4 records; the model is a smoke run trained on the
good videos for one epoch, and its export."""

import csv
import json
import os
import subprocess
import sys

import media_factory
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_video

from videofusion.config import demo_config
from videofusion.contract import tensors
from videofusion.ingest import prepare
from videofusion.serving import embed, embedding_folder, export, predict
from videofusion.serving.results import read_results

pytest.importorskip("apache_beam", reason="the Beam runners need the beam extra: make install-beam")
pytest.importorskip("tensorflow_hub", reason="Beam's TensorFlow model handler needs the beam extra's tensorflow-hub")

from videofusion.ingest import beam_pipeline  # noqa: E402
from videofusion.serving import beam_inference, beam_model  # noqa: E402

_BEAM_ARGS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
_BAD = ["corrupt.mp4", "empty.mp4", "cut short.mp4", "audio only.m4a", "gone.mp4"]
_GOOD = ["v0.mp4", "long.mp4", "silent.mp4", "v4.mp4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, a manifest of the good and bad videos, their paths in that order)."""
    folder = tmp_path_factory.mktemp("beam_inference_inputs")
    for i in range(6):
        write_video(folder / f"v{i}.mp4", num_frames=10, fps=10, height=32, width=32, audio_seconds=1.0,
                    tone_hz=300 + 250 * i)
    write_video(folder / "long.mp4", num_frames=20, fps=10, height=32, width=32, audio_seconds=2.0)
    write_video(folder / "silent.mp4", num_frames=10, fps=10, height=32, width=32, audio_seconds=0)
    (folder / "corrupt.mp4").write_text("this is a text file, not a video")
    (folder / "empty.mp4").write_bytes(b"")
    media_factory.write_truncated(folder / "long.mp4", folder / "cut short.mp4")
    media_factory.write_audio_only(folder / "audio only.m4a")
    names = [name for pair in zip(_GOOD, _BAD) for name in pair] + _BAD[len(_GOOD):]
    with open(folder / "all.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "split"]] + [[name, "ab"[i % 2], "test"]
                                                                for i, name in enumerate(names)])
    return str(folder), str(folder / "all.csv"), [str(folder / name) for name in names]


@pytest.fixture(scope="module")
def model(corpus, tmp_path_factory):
    """(run folder, export) of a smoke run on v0..v5, clips of 0.5 s (so 2 records per 1 s video)."""
    folder, _, _ = corpus
    with open(os.path.join(folder, "train.csv"), "w") as f:
        f.write("path,label,split\n" + "".join(f"v{i}.mp4,{'ab'[i % 2]},{['train', 'val'][i // 4]}\n"
                                               for i in range(6)))
    records = str(tmp_path_factory.mktemp("beam_inference_records"))
    prepare.prepare_dataset(prepare.PrepareOptions(manifest=os.path.join(folder, "train.csv"), output_dir=records,
                                                   short_side=32, num_shards=1, max_clip_seconds=0.5, workers=1))
    from videofusion.training import train

    config = demo_config("smoke")
    config.data.dir = records
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    config.eval.update(dict(num_clips=2, num_crops=1, top_k=2))
    workdir = str(tmp_path_factory.mktemp("beam_inference_run") / "run")
    train.train(config, workdir)
    return workdir, export.export(workdir, os.path.join(workdir, "exports"))


def _assert_same_results(beam, local):
    assert [r["path"] for r in beam] == [r["path"] for r in local]
    assert [r.get("error") for r in beam] == [r.get("error") for r in local]
    for b, a in zip(beam, local):
        assert [e["label"] for e in b.get("top_k", [])] == [e["label"] for e in a.get("top_k", [])]
        np.testing.assert_allclose([e["score"] for e in b.get("top_k", [])],
                                   [e["score"] for e in a.get("top_k", [])], atol=1e-5)


def test_predict_on_beam_gives_the_local_results_in_input_order(corpus, model, tmp_path):
    _, _, paths = corpus
    _, export_dir = model
    local = list(predict.predict(export_dir, paths, top_k=2))
    output = tmp_path / "out" / "predictions.jsonl"
    beam = list(beam_inference.predict_beam(export_dir, paths, str(output), top_k=2, beam_args=_BEAM_ARGS,
                                            videos_per_part=3))
    _assert_same_results(beam, local)
    assert [("error" in r) for r in beam] == [os.path.basename(p) in _BAD for p in paths]
    scores = [r["top_k"][0]["score"] for r in local if "top_k" in r]
    assert len(set(scores)) == len(_GOOD)  # videos that a mix-up of their records would change
    assert os.listdir(output.parent) == ["predictions.jsonl"]  # the parts and the plan are gone
    assert list(read_results(str(output))) == beam

    # The command line: the local runner writes the file that Beam wrote.
    command = [sys.executable, "-m", "videofusion.cli", "predict", "--model", export_dir, "--top-k", "2",
               "--output", str(tmp_path / "local.jsonl"), *paths]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 1, finished.stderr[-3000:]  # some videos could not be decoded
    assert f"{len(_BAD)} of {len(paths)} videos could not be decoded" in finished.stderr
    assert finished.stdout == ""
    _assert_same_results(list(read_results(str(tmp_path / "local.jsonl"))), beam)


def _folder(path):
    """Every file of an embeddings folder: JSON parsed, NumPy loaded, the rest as text."""
    found = {}
    for directory, _, files in os.walk(path):
        for name in files:
            full = os.path.join(directory, name)
            key = os.path.relpath(full, path)
            if name.endswith(".npy"):
                found[key] = np.load(full)
            elif name.endswith(".json"):
                found[key] = json.load(open(full))
            else:
                found[key] = open(full).read()
    return found


def test_embed_on_beam_writes_the_local_folder(corpus, model, tmp_path):
    _, manifest, _ = corpus
    workdir, _ = model
    inputs = embed.EmbedInputs(manifest=manifest)
    local_summary = embed.embed(workdir, str(tmp_path / "local"), inputs, videos_per_part=3, workers=1)
    summary = beam_inference.embed_beam(workdir, str(tmp_path / "beam"), inputs, videos_per_part=3,
                                        beam_args=_BEAM_ARGS)
    assert summary == local_summary
    assert (summary["rows"], summary["errors"], len(summary["parts"])) == (len(_GOOD), len(_BAD), 3)
    local, beam = _folder(tmp_path / "local"), _folder(tmp_path / "beam")
    assert sorted(beam) == sorted(local)  # no plan or temporary file left
    for name, value in local.items():
        if name.endswith(".npy"):
            np.testing.assert_allclose(beam[name], value, atol=1e-5)
        else:
            assert beam[name] == value, name  # rows, errors.jsonl and the parts' states (fingerprints) alike
    errors = [json.loads(line) for line in beam[embedding_folder.ERRORS_FILE].splitlines()]
    assert [e["path"] for e in errors] == [name for name in _BAD]
    rows = [json.loads(line) for part in summary["parts"] for line in beam[f"{part['name']}.jsonl"].splitlines()]
    assert [(r["path"], r["clips"]) for r in rows] == [("v0.mp4", 2), ("long.mp4", 4), ("silent.mp4", 2),
                                                       ("v4.mp4", 2)]


def test_dataflow_refuses_local_paths_that_its_workers_cannot_open(corpus, model, tmp_path):
    """Before anything runs; the command line says so in one line."""
    _, manifest, paths = corpus
    workdir, export_dir = model
    dataflow = ["--runner=DataflowRunner"]
    with pytest.raises(beam_pipeline.BeamSetupError, match=f"{tmp_path}.*: Dataflow's .* so --output must be URLs"):
        beam_inference.predict_beam(export_dir, paths, str(tmp_path / "p.jsonl"), beam_args=dataflow)
    with pytest.raises(beam_pipeline.BeamSetupError, match=f"{workdir}: Dataflow's .* so --model must be URLs"):
        beam_inference.embed_beam(workdir, "ram://beam_inference/out", embed.EmbedInputs(manifest=manifest),
                                  beam_args=dataflow)
    command = [sys.executable, "-m", "videofusion.cli", "predict", "--model", "gs://b/exports/demo/1", "--runner",
               "beam", "--beam-options", "--runner=DataflowRunner --project=p", paths[0]]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stderr[-3000:]
    assert finished.stderr.strip().splitlines()[-1].startswith(
        "videofusion predict: /") and "so --output must be URLs such as gs://bucket/" in finished.stderr


def test_the_handler_batches_records_and_shares_one_model_per_worker_process(corpus, model):
    """Beam's TF handler, as RunInference gets it: batches of 1..BATCH_RECORDS records, and the model in
    a `shared.Shared` handle of each worker process (not `large_model`'s one per machine)."""
    _, export_dir = model
    handler = beam_model.model_handler(export_dir, beam_model.load_classifier, beam_inference.BATCH_RECORDS)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": beam_inference.BATCH_RECORDS}
    assert not handler.share_model_across_processes()
    predictor = predict.Predictor(export_dir)
    records = predictor.records(os.path.join(corpus[0], "long.mp4"))
    results = handler.run_inference([tf.constant(record) for record in records], handler.load_model())
    assert [result.example.numpy() for result in results] == records
    np.testing.assert_allclose([result.inference[tensors.PROBABILITIES] for result in results],
                               predictor.outputs(records)[tensors.PROBABILITIES], atol=1e-6)
