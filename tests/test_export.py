"""The exported SavedModel as TF Serving uses it: both signatures in a process with TensorFlow only,
parity with `evaluate`'s Keras path, batches of unequal videos, `saved_model_cli`, a real
`PredictRequest`, `videofusion predict` against `evaluate`, and bad input."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from fresh_python import run_with_tensorflow_only

from videofusion import models, run_folder
from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import pipeline
from videofusion.evaluation import evaluate
from videofusion.serving import export, predict, signatures

TOP_K = 3  # the smoke run's eval.top_k (conftest.py)
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


@pytest.fixture(scope="module")
def run(tmp_path_factory, smoke_run):
    """The smoke run (2 clips × 3 crops per video in evaluation, top-3) and its export."""
    return smoke_run, export.export(smoke_run, str(tmp_path_factory.mktemp("export") / "exports"))


@pytest.fixture(scope="module")
def clips(run, demo_records):
    """Three test records cut to different lengths (10, 6 and 3 frames; audio cut to match), each with
    the decoded frames and waveform a client sends, and its probabilities on `evaluate`'s Keras path."""
    workdir, _ = run
    config, _, model = models.load_run(workdir)
    options = pipeline.PipelineOptions.from_config(config)
    serialized = list(tf.data.TFRecordDataset(prepared_folder.shard_files(demo_records, "test")).take(3))
    result = []
    for length, record in zip((10, 6, 3), serialized):
        parsed = record_schema.parse_clip(record)
        jpegs = parsed[record_schema.IMAGES][:length]
        waveform = parsed[record_schema.WAVEFORM][: length * 1600].numpy()
        shortened = _shortened(parsed, jpegs.numpy().tolist(), waveform)
        views, _ = pipeline.eval_examples(tf.constant(shortened), tf.constant(0, tf.int64), options)
        per_view = np.asarray(model.predict_on_batch({k: views[k] for k in model.input})[tensors.CLASSES])
        result.append({"frames": pipeline.decode_frames(jpegs).numpy(), "waveform": waveform, "record": shortened,
                       "keras": per_view.mean(axis=0)})
    return result


def _shortened(parsed: dict, jpegs: list, waveform: np.ndarray) -> bytes:
    """The record of `parsed` cut to its first `len(jpegs)` frames and `waveform`."""
    return record_schema.encode_clip(record_schema.Clip(
        label_index=int(parsed[record_schema.LABEL_INDEX]),
        label_text=parsed[record_schema.LABEL_TEXT].numpy().decode(),
        filename=parsed[record_schema.FILENAME].numpy().decode(), start_us=0, end_us=len(jpegs) * 100_000,
        frame_rate=10.0, jpeg_frames=jpegs, waveform=waveform, sample_rate=16000, has_audio=True,
    ))


def _padded_batch(clips) -> dict:
    longest, most = max(len(c["frames"]) for c in clips), max(len(c["waveform"]) for c in clips)
    frames = np.zeros((len(clips), longest, *clips[0]["frames"].shape[1:]), np.uint8)
    waveform = np.zeros((len(clips), most), np.float32)
    for i, c in enumerate(clips):
        frames[i, : len(c["frames"])] = c["frames"]
        waveform[i, : len(c["waveform"])] = c["waveform"]
    return {"frames": frames, "waveform": waveform,
            "num_frames": np.array([len(c["frames"]) for c in clips], np.int32),
            "num_samples": np.array([len(c["waveform"]) for c in clips], np.int32)}


SERVE_SCRIPT = """
    import json
    import numpy as np
    import tensorflow as tf

    export_dir, inputs, examples = sys.argv[1:4]
    loaded = tf.saved_model.load(export_dir)
    serve, serve_examples = loaded.signatures["serving_default"], loaded.signatures["serve_examples"]
    batch = dict(np.load(inputs))
    def plain(outputs):
        return {k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()).tolist() for k, v in outputs.items()}
    result = {"batched": plain(serve(**{k: tf.constant(v) for k, v in batch.items()})), "alone": []}
    for i, (frames, samples) in enumerate(zip(batch["num_frames"], batch["num_samples"])):
        alone = {"frames": batch["frames"][i:i + 1, :frames], "waveform": batch["waveform"][i:i + 1, :samples],
                 "num_frames": np.array([-1], np.int32), "num_samples": np.array([-1], np.int32)}
        result["alone"].append(plain(serve(**{k: tf.constant(v) for k, v in alone.items()})))
    result["loaded_serve"] = plain(loaded.serve(frames=batch["frames"][:1, :batch["num_frames"][0]],
                                                waveform=batch["waveform"][:1, :batch["num_samples"][0]]))
    with open(examples) as f:
        serialized = [bytes.fromhex(h) for h in json.load(f)["hex"]]
    result["examples"] = plain(serve_examples(examples=tf.constant(serialized)))
    print(json.dumps(result))
"""


def test_signatures_serve_with_tensorflow_only_and_agree_with_evaluate(run, clips, tmp_path):
    _, export_dir = run
    np.savez(tmp_path / "batch.npz", **_padded_batch(clips))
    (tmp_path / "examples.json").write_text(json.dumps({"hex": [c["record"].hex() for c in clips]}))
    served = run_with_tensorflow_only(SERVE_SCRIPT, os.path.abspath(export_dir), str(tmp_path / "batch.npz"),
                                      str(tmp_path / "examples.json"), cwd=str(tmp_path))
    assert served.returncode == 0, served.stderr[-4000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])
    keras_probabilities = np.stack([c["keras"] for c in clips])
    batched, examples = result["batched"], result["examples"]
    for outputs in (batched, examples, *result["alone"]):
        assert set(outputs) == {tensors.PROBABILITIES, tensors.TOP_K_LABELS, tensors.TOP_K_SCORES, signatures.EMBEDDING}
    alone = {k: np.concatenate([np.array(a[k]) for a in result["alone"]]) for k in batched}
    np.testing.assert_allclose(batched[tensors.PROBABILITIES], keras_probabilities, atol=1e-5)
    np.testing.assert_allclose(examples[tensors.PROBABILITIES], keras_probabilities, atol=1e-5)
    np.testing.assert_allclose(alone[tensors.PROBABILITIES], batched[tensors.PROBABILITIES], atol=1e-5)
    np.testing.assert_allclose(alone[signatures.EMBEDDING], batched[signatures.EMBEDDING], atol=1e-5)
    np.testing.assert_allclose(result["loaded_serve"][tensors.PROBABILITIES], alone[tensors.PROBABILITIES][:1],
                               atol=1e-5)  # `loaded.serve` applies the defaults in Python too
    labels = run_folder.load_labels(run[0])
    # The top-k labels are the most probable ones: compared by their Keras probabilities, not by rank, so
    # that two classes within rounding of each other may come in either order on another CPU.
    chosen = np.array([[labels.index(label) for label in row] for row in batched[tensors.TOP_K_LABELS]])
    np.testing.assert_allclose(np.take_along_axis(keras_probabilities, chosen, axis=1),
                               -np.sort(-keras_probabilities, axis=1)[:, :TOP_K], atol=1e-5)
    assert np.array(batched[signatures.EMBEDDING]).shape == (3, 16)  # the smoke model's embed_dim
    assert np.array(examples[tensors.TOP_K_SCORES]).shape == (3, TOP_K)


def test_export_layout_labels_asset_and_core_ops(run):
    workdir, export_dir = run
    assert os.path.basename(export_dir) == "1"
    with open(os.path.join(export_dir, "assets", "labels.txt")) as f:
        assert f.read().splitlines() == run_folder.load_labels(workdir)
    metadata = json.load(open(os.path.join(export_dir, export.METADATA_FILE)))
    assert {k: metadata[k] for k in ("fps", "short_side", "sample_rate", "jpeg_quality", "max_clip_seconds")} == {
        "fps": 10.0, "short_side": 32, "sample_rate": 16000, "jpeg_quality": 90, "max_clip_seconds": 30.0}
    assert export.next_version(os.path.dirname(export_dir)) == 2
    with pytest.raises(FileExistsError, match="exists"):
        export.export(workdir, os.path.dirname(export_dir), version=1)
    assert sorted(os.listdir(os.path.dirname(export_dir))) == ["1"]  # nothing half-written
    ops = export.graph_ops(export_dir)
    assert {"DecodeJpeg", "ParseSequenceExampleV2", "InitializeTableFromTextFileV2", "TopKV2"} <= ops
    # No TF Text op: checked on a model that reads captions (test_wordpiece.py), which this one does not.


def test_saved_model_cli_shows_and_runs_the_default_signature(run, clips, tmp_path):
    _, export_dir = run
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", export_dir, "--all"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-3000:]
    for line in ("signature_def['serving_default']", "signature_def['serve_examples']", "inputs['frames']",
                 "inputs['num_frames']", "inputs['waveform']", "inputs['examples']", "outputs['embedding']",
                 "outputs['top_k_labels']"):
        assert line in shown.stdout
    clip = clips[1]
    np.savez(tmp_path / "clip.npz", frames=clip["frames"][np.newaxis], waveform=clip["waveform"][np.newaxis])
    ran = subprocess.run(
        [SAVED_MODEL_CLI, "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"frames={tmp_path / 'clip.npz'}[frames];waveform={tmp_path / 'clip.npz'}[waveform]",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # num_frames and num_samples left out: the SignatureDef's defaults
    assert ran.returncode == 0, ran.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "probabilities.npy")[0], clip["keras"], atol=1e-5)


def test_a_predict_request_of_a_real_clip_runs_through_the_signature(run, clips):
    from tensorflow_serving.apis import predict_pb2

    _, export_dir = run
    clip = clips[0]
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "videofusion", "serving_default"
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(clip["frames"][np.newaxis]))
    request.inputs["waveform"].CopyFrom(tf.make_tensor_proto(clip["waveform"][np.newaxis]))
    request.inputs["num_frames"].CopyFrom(tf.make_tensor_proto(np.array([len(clip["frames"])], np.int32)))
    request.inputs["num_samples"].CopyFrom(tf.make_tensor_proto(np.array([len(clip["waveform"])], np.int32)))
    received = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire and back
    serve = tf.saved_model.load(export_dir).signatures[received.model_spec.signature_name]
    outputs = serve(**{k: tf.constant(tf.make_ndarray(v)) for k, v in received.inputs.items()})
    np.testing.assert_allclose(outputs[tensors.PROBABILITIES].numpy()[0], clip["keras"], atol=1e-5)


def test_bad_input_gets_a_clear_error(run, clips):
    _, export_dir = run
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    clip = clips[0]
    good = {"frames": clip["frames"][np.newaxis], "waveform": clip["waveform"][np.newaxis],
            "num_frames": np.array([-1], np.int32), "num_samples": np.array([-1], np.int32)}

    def error_of(**changes):
        with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)) as raised:
            serve(**{k: tf.constant(v) for k, v in {**good, **changes}.items()})
        return str(raised.value)

    assert "frames has zero frames" in error_of(frames=np.zeros((1, 0, 32, 32, 3), np.uint8))
    assert "waveform is empty" in error_of(waveform=np.zeros((1, 0), np.float32))
    assert "same batch size" in error_of(waveform=np.zeros((2, 1600), np.float32))
    assert "num_frames must be -1 (all) or between 1" in error_of(num_frames=np.array([0], np.int32))
    assert "num_frames must be -1 (all) or between 1" in error_of(num_frames=np.array([99], np.int32))
    assert "one entry per video" in error_of(num_samples=np.array([100, 200], np.int32))
    # Dtypes are checked before the graph runs (TF Serving too): input #0 is `frames`.
    assert "input #0(zero-based) was expected to be a uint8 tensor but is a float" in error_of(
        frames=clip["frames"][np.newaxis].astype(np.float32))
    assert "is not compatible with expected shape [?,?,?,?,3]" in error_of(frames=clip["frames"])  # rank 4
    assert "caption" in error_of(caption=np.array(["a caption"]))  # this model reads no text
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serve_examples"](examples=tf.constant([b"not a record"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="examples is empty"):
        loaded.signatures["serve_examples"](examples=tf.constant([], tf.string))


def test_predict_on_a_video_file_equals_evaluate_on_its_record(run, demo_raw, demo_records):
    workdir, export_dir = run
    config, _, model = models.load_run(workdir)
    options = pipeline.PipelineOptions.from_config(config)
    root = os.path.dirname(demo_raw)
    with open(demo_raw) as f:
        test_videos = [row["path"] for row in csv.DictReader(f) if row["split"] == "test"][:2]
    by_path = {}
    for record in tf.data.TFRecordDataset(prepared_folder.shard_files(demo_records, "test")):
        path = record_schema.parse_clip(record)[record_schema.FILENAME].numpy().decode()
        if path in test_videos:
            views, _ = pipeline.eval_examples(record, tf.constant(0, tf.int64), options)
            by_path[path] = evaluate.average_views(
                np.asarray(model.predict_on_batch({k: views[k] for k in model.input})[tensors.CLASSES]),
                np.zeros(len(views[tensors.FRAMES]), int), np.zeros(len(views[tensors.FRAMES]), int))[0][0]
    predictor = predict.Predictor(export_dir)
    for path in test_videos:
        np.testing.assert_allclose(predictor.probabilities(os.path.join(root, path)), by_path[path], atol=1e-3)
    with pytest.raises(ValueError, match="does not read text"):
        predictor.probabilities(os.path.join(root, test_videos[0]), caption="a caption")
