"""`videofusion embed` and `search` on the smoke run and its export: one vector per video from shards and
from files alike, bad files reported, a killed run resumed, exact nearest neighbours, and the queries a
fused space can and cannot answer."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from media_factory import write_text_as_mp4, write_truncated

from videofusion.contract import prepared_folder, record_schema
from videofusion.ingest import prepare
from videofusion.serving import embed, embedders, embedding_folder, export, search

VF = [sys.executable, "-m", "videofusion.cli"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, smoke_run):
    """The smoke run and its export."""
    return smoke_run, export.export(smoke_run, str(tmp_path_factory.mktemp("export") / "exports"))


@pytest.fixture(scope="module")
def collection(run, demo_records, tmp_path_factory):
    """The export's embeddings of every split of the demo records."""
    folder = str(tmp_path_factory.mktemp("embeddings") / "demo")
    embed.embed(run[1], folder, embed.EmbedInputs(data_dir=demo_records))
    return embedding_folder.EmbeddingFolder(folder)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _demo_paths(demo_raw, count):
    with open(demo_raw) as f:
        return [row["path"] for row in csv.DictReader(f)][:count]


def test_embed_writes_one_vector_per_video_of_the_shards_and_a_run_equals_its_export(run, demo_records,
                                                                                    collection, tmp_path):
    info = prepared_folder.read_dataset_info(demo_records)
    assert len(collection.rows) == sum(info[prepared_folder.COUNTS].values()) == 36
    assert collection.spaces == {"fused": collection.vectors("fused").shape[1]}
    assert collection.summary["model"]["kind"] == embedders.EXPORT
    first = collection.rows[0]
    assert first["path"].startswith("videos/") and first["id"] == first["path"] and first["clips"] == 1
    assert {row["split"] for row in collection.rows} == set(prepared_folder.SPLITS)
    assert all(row["label"] for row in collection.rows)
    embed.embed(run[0], str(tmp_path / "from_run"), embed.EmbedInputs(data_dir=demo_records))
    from_run = embedding_folder.EmbeddingFolder(str(tmp_path / "from_run"))
    assert from_run.summary["model"]["kind"] == embedders.RUN
    assert [row["id"] for row in from_run.rows] == [row["id"] for row in collection.rows]
    np.testing.assert_allclose(from_run.vectors("fused"), collection.vectors("fused"), atol=1e-4)


def test_a_video_of_several_records_gets_the_mean_of_their_vectors(run, demo_raw, tmp_path):
    manifest = tmp_path / "manifest.csv"
    root = os.path.dirname(demo_raw)
    with open(manifest, "w") as f:
        f.write("path,label,split\n" + "".join(f"{os.path.join(root, p)},a,train\n" for p in _demo_paths(demo_raw, 3)))
    records = str(tmp_path / "records")
    prepare.prepare_dataset(prepare.PrepareOptions(manifest=str(manifest), output_dir=records, short_side=32,
                                                   num_shards=1, max_clip_seconds=0.5, workers=1))
    summary = embed.embed(run[1], str(tmp_path / "embeddings"), embed.EmbedInputs(data_dir=records))
    folder = embedding_folder.EmbeddingFolder(str(tmp_path / "embeddings"))
    assert summary["rows"] == 3 and [row["clips"] for row in folder.rows] == [2, 2, 2]
    embedder = embedders.load_embedder(run[1])
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(prepared_folder.shard_files(records, "train"))]
    starts = [int(record_schema.parse_clip(r)[record_schema.START_US]) for r in serialized]
    assert starts == [0, 500_000] * 3  # two half-second records per video
    per_record = embedder.embed_records(serialized)["fused"]
    np.testing.assert_allclose(folder.vectors("fused"), per_record.reshape(3, 2, -1).mean(axis=1), atol=1e-5)


def test_embed_from_files_skips_bad_ones_reports_them_and_agrees_with_the_shards(run, demo_raw, collection,
                                                                                 tmp_path):
    root = os.path.dirname(demo_raw)
    good = _demo_paths(demo_raw, 3)
    write_truncated(os.path.join(root, good[0]), tmp_path / "cut.mp4", fraction=0.3)
    write_text_as_mp4(tmp_path / "text.mp4")
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w") as f:
        f.write("path,label\n" + "".join(f"{os.path.join(root, p)},x\n" for p in good)
                + "cut.mp4,x\ntext.mp4,x\ngone.mp4,x\n")
    summary = embed.embed(run[1], str(tmp_path / "out"), embed.EmbedInputs(manifest=str(manifest)), workers=2)
    folder = embedding_folder.EmbeddingFolder(str(tmp_path / "out"))
    assert [row["path"] for row in folder.rows] == [os.path.join(root, p) for p in good]
    with open(tmp_path / "out" / embedding_folder.ERRORS_FILE) as f:
        errors = [json.loads(line) for line in f]
    assert summary["errors"] == 3 and sorted(e["path"] for e in errors) == ["cut.mp4", "gone.mp4", "text.mp4"]
    assert all(e["reason"] for e in errors)
    # The files are decoded as prepare decoded the shards: the same vectors (up to the JPEG round trip).
    by_path = {row["path"]: i for i, row in enumerate(collection.rows)}
    shards = collection.vectors("fused")[[by_path[p] for p in good]]
    cosines = (_unit(folder.vectors("fused")) * _unit(shards)).sum(axis=1)
    assert cosines.min() > 0.999, cosines


def test_a_manifest_of_unusable_rows_gives_an_empty_folder_and_its_errors(run, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,split\n,x,train\na.mp4,x,nosuchsplit\n")
    summary = embed.embed(run[1], str(tmp_path / "out"), embed.EmbedInputs(manifest=str(manifest)))
    assert summary["rows"] == 0 and summary["errors"] == 2 and summary["parts"] == []
    with pytest.raises(search.QueryError, match="no video of"):
        search.Searcher(str(tmp_path / "out")).search(search.Query(clip_id="a.mp4"))


def test_a_killed_embed_resumes_without_redoing_its_finished_parts(run, demo_raw, tmp_path):
    root = os.path.dirname(demo_raw)
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w") as f:
        f.write("path,label\n" + "".join(f"{os.path.join(root, p)},x\n" for p in _demo_paths(demo_raw, 24)))
    output = tmp_path / "out"
    command = VF + ["embed", "--model", run[1], "--manifest", str(manifest), "--output", str(output),
                    "--videos-per-part", "2", "--workers", "1"]
    first_part = output / embedding_folder.STATE_DIR / "part-00000.json"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not first_part.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(os.listdir(output / embedding_folder.STATE_DIR))
    assert first_part.exists() and done < 12, f"{done} of 12 parts were done when killed"
    assert not (output / embedding_folder.SUMMARY_FILE).exists()
    finished_at = first_part.stat().st_mtime_ns
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["rows"] == 24 and printed["errors"] == 0 and list(printed["spaces"]) == ["fused"]
    assert first_part.stat().st_mtime_ns == finished_at  # not redone
    resumed = embedding_folder.EmbeddingFolder(str(output))
    embed.embed(run[1], str(tmp_path / "whole"), embed.EmbedInputs(manifest=str(manifest)), videos_per_part=2)
    whole = embedding_folder.EmbeddingFolder(str(tmp_path / "whole"))
    assert resumed.rows == whole.rows and len(resumed.rows) == 24
    np.testing.assert_allclose(resumed.vectors("fused"), whole.vectors("fused"), atol=1e-5)


def test_embed_refuses_a_folder_of_another_model(run, collection, demo_records):
    with pytest.raises(FileExistsError, match="holds embeddings of"):
        embed.embed(run[0], collection.folder, embed.EmbedInputs(data_dir=demo_records))


def test_search_by_a_video_file_ranks_itself_first_then_by_exact_cosine(collection, demo_raw):
    searcher = search.Searcher(collection.folder)
    path = _demo_paths(demo_raw, 1)[0]
    results = searcher.search(search.Query(video=os.path.join(os.path.dirname(demo_raw), path)), top_k=5)
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0]["path"] == path and results[0]["score"] > 0.999
    vectors = _unit(np.asarray(collection.vectors("fused"), np.float64))
    own = collection.find(path)
    expected = np.argsort(-(vectors @ vectors[own]), kind="stable")[:5]
    assert [r["id"] for r in results[1:]] == [collection.rows[i]["id"] for i in expected[1:]]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    by_id = searcher.search(search.Query(clip_id=os.path.basename(path)), top_k=4)
    assert [r["id"] for r in by_id] == [r["id"] for r in results[1:]]  # the video itself left out


def test_the_fused_space_answers_frames_only_queries_but_not_sound_or_captions(collection, demo_raw):
    searcher = search.Searcher(collection.folder)
    video = os.path.join(os.path.dirname(demo_raw), _demo_paths(demo_raw, 1)[0])
    whole, _ = searcher.query_vector(search.Query(video=video))
    frames_only, _ = searcher.query_vector(search.Query(video=video, modality="video"))
    assert not np.allclose(whole, frames_only, atol=1e-3)
    with pytest.raises(search.QueryError, match="no audio space"):
        searcher.search(search.Query(video=video, modality="audio"))
    with pytest.raises(search.QueryError, match="no text space"):
        searcher.search(search.Query(caption="a red disk"))
    with pytest.raises(search.QueryError, match="no video of"):
        searcher.search(search.Query(clip_id="nothing.mp4"))
    with pytest.raises(search.QueryError, match="not a video|could not|no video stream|Invalid"):
        searcher.search(search.Query(video=__file__))


def test_the_search_command_prints_json_lines_and_says_what_is_wrong(collection, demo_raw):
    video = os.path.join(os.path.dirname(demo_raw), _demo_paths(demo_raw, 1)[0])
    result = subprocess.run(VF + ["search", "--index", collection.folder, "--top-k", "3", video],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["rank"] for line in lines] == [1, 2, 3] and lines[0]["path"] == _demo_paths(demo_raw, 1)[0]
    bad = subprocess.run(VF + ["search", "--index", collection.folder, "--query-modality", "audio", video],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no audio space" in bad.stderr
    wrong = subprocess.run(VF + ["search", "--index", collection.folder, "--query-modality", "sound", video],
                           capture_output=True, text=True)
    assert wrong.returncode == 1 and "--query-modality must be one of all, audio, video" in wrong.stderr


def test_the_approximate_index_agrees_with_exact_search_and_is_kept_in_the_folder(collection):
    pytest.importorskip("faiss", reason="the faiss extra: make install-search")
    exact = search.Searcher(collection.folder, index_kind="exact")
    approximate = search.Searcher(collection.folder, index_kind="ann")
    kept = os.path.join(collection.folder, search.INDEX_DIR, "fused.faiss")
    assert os.path.isfile(kept)
    built_at = os.stat(kept).st_mtime_ns
    again = search.Searcher(collection.folder, index_kind="ann")  # loads the kept index
    assert os.stat(kept).st_mtime_ns == built_at
    for row in collection.rows[:6]:
        query = search.Query(clip_id=row["id"])
        expected = [r["id"] for r in exact.search(query, top_k=5)]
        assert [r["id"] for r in approximate.search(query, top_k=5)] == expected
        assert [r["id"] for r in again.search(query, top_k=5)] == expected
