"""The LiteRT export: three variants of the smoke run, parity with the SavedModel, the NumPy views equal to
`transforms.eval_views`, `videofusion predict` through LiteRT in a process without TensorFlow, bad input."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from videofusion import models
from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import pipeline, transforms
from videofusion.serving import edge_views, export, litert_export, litert_model, litert_predict, predict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, smoke_run, demo_records):
    """(run, SavedModel, LiteRT folder) of the smoke run (2 clips × 3 crops per video)."""
    root = tmp_path_factory.mktemp("litert")
    lite = litert_export.export_litert(smoke_run, str(root / "litert"), calibration_clips=8, data_dir=demo_records)
    return smoke_run, export.export(smoke_run, str(root / "savedmodel")), lite


@pytest.fixture(scope="module")
def test_records(demo_records):
    return [record.numpy() for record in tf.data.TFRecordDataset(prepared_folder.shard_files(demo_records, "test"))]


def test_three_variants_of_builtin_operators_and_the_sidecar(exported):
    _, _, lite = exported
    sidecar = litert_model.read_sidecar(lite)
    assert sorted(sidecar["variants"]) == sorted(litert_model.VARIANTS)
    for entry in sidecar["variants"].values():
        assert os.path.getsize(os.path.join(lite, entry["file"])) == entry["bytes"]
        assert not [op for op in entry["operators"] if op.startswith("Flex") or op in ("CUSTOM", "WHILE")]
        assert "RFFT2D" in entry["operators"]  # the log-mel is inside, in LiteRT's builtin FFT
    sizes = {name: entry["bytes"] for name, entry in sidecar["variants"].items()}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    assert sidecar["views"]["num_clips"] == 2 and sidecar["views"]["num_crops"] == 3
    assert sidecar["calibration"]["float_tensors"]  # the log-mel stays float32 in the int8 model


def test_variants_agree_with_the_saved_model(exported, test_records):
    _, saved, lite = exported
    serve = tf.saved_model.load(saved).signatures["serve_examples"]
    reference = serve(examples=tf.constant(test_records))[tensors.PROBABILITIES].numpy()
    config, _, model = models.load_run(exported[0])
    options = pipeline.PipelineOptions.from_config(config, model=model)
    views = [pipeline.eval_examples(record, tf.constant(0, tf.int64), options)[0] for record in test_records]
    probabilities = {}
    for variant in litert_model.VARIANTS:
        lite_model = litert_model.LiteRTModel(lite, variant)
        probabilities[variant] = np.stack([lite_model.probabilities({k: v[k].numpy() for k in litert_model.INPUTS})
                                           for v in views])
    np.testing.assert_allclose(probabilities["float32"], reference, atol=1e-5)
    np.testing.assert_allclose(probabilities["float16"], reference, atol=2e-2)
    agreement = (probabilities["int8"].argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.75, agreement


@pytest.mark.parametrize("length", [10, 6, 3, 1])
def test_numpy_views_equal_eval_views(exported, test_records, length):
    config, _, model = models.load_run(exported[0])
    options = pipeline.PipelineOptions.from_config(config, model=model)
    parsed = record_schema.parse_clip(test_records[0])
    jpegs = parsed[record_schema.IMAGES].numpy()[:length]
    frames_tf = pipeline.decode_frames(tf.constant(jpegs)).numpy()
    frames_cv = np.stack([litert_predict.decode_jpeg(jpeg) for jpeg in jpegs])
    # OpenCV's JPEG decoder is not TensorFlow's: pixels differ by a few levels (measured: up to 5, most by 1).
    assert np.abs(frames_cv.astype(int) - frames_tf).max() <= 8
    waveform = parsed[record_schema.WAVEFORM].numpy()[: length * 1600]
    for pad in (False, True):
        spec = transforms.ClipSpec.from_config(config.data)
        spec = transforms.ClipSpec(**{**spec.__dict__, "pad_short_videos": pad})
        expected = transforms.eval_views(tf.constant(length), lambda i: tf.gather(frames_tf, i), tf.constant(waveform),
                                         spec, options.num_clips, options.num_crops)
        view_spec = edge_views.ViewSpec(spec.num_frames, spec.stride, spec.fps, spec.sample_rate, spec.frame_size,
                                        options.num_clips, options.num_crops, pad)
        got = edge_views.eval_views(length, frames_tf.__getitem__, waveform, view_spec)
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value.numpy(), err_msg=f"{key}, pad_short_videos={pad}")


def _test_videos(demo_raw):
    with open(demo_raw) as f:
        paths = [row["path"] for row in csv.DictReader(f) if row["split"] == "test"][:2]
    return [os.path.join(os.path.dirname(demo_raw), path) for path in paths]


def test_predict_through_litert_without_tensorflow(exported, demo_raw, tmp_path):
    _, saved, lite = exported
    videos = _test_videos(demo_raw)
    saved_predictor = predict.Predictor(saved)
    lite_predictor = litert_predict.LiteRTPredictor(lite)
    for video in videos:  # decoding and views as predict's; only the JPEG decoder differs (OpenCV's)
        on_device, on_server = lite_predictor.probabilities(video), saved_predictor.probabilities(video)
        np.testing.assert_allclose(on_device, on_server, atol=5e-2)
        assert on_device.argmax() == on_server.argmax()
    blocked = tmp_path / "no_tensorflow" / "tensorflow"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text('raise ImportError("no TensorFlow on this device")\n')
    env = {**os.environ, "PYTHONPATH": f"{blocked.parent}{os.pathsep}{REPO}"}
    result = subprocess.run([sys.executable, "-m", "videofusion.cli", "predict", "--model",
                             os.path.join(lite, litert_model.file_name("int8")), "--top-k", "2", *videos],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == videos and all(len(line["top_k"]) == 2 for line in lines)


def test_bad_input_gets_a_clear_error(exported, tmp_path):
    _, _, lite = exported
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(os.path.join(lite, litert_model.file_name("float32")), alone / "model.tflite")
    with pytest.raises(FileNotFoundError, match="model.json not found"):
        litert_model.LiteRTModel(str(alone / "model.tflite"))
    foreign = tmp_path / "foreign"
    shutil.copytree(lite, foreign)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([1, 3])]).get_concrete_function()])
    (foreign / litert_model.file_name("float32")).write_bytes(converter.convert())
    with pytest.raises(ValueError, match="does not take a video's views"):
        litert_model.LiteRTModel(str(foreign / litert_model.file_name("float32")))
    with pytest.raises(ValueError, match="is not one of the models"):
        litert_model.LiteRTModel(str(foreign / "other.tflite"))
    (foreign / litert_model.SIDECAR).write_text("{}")
    with pytest.raises(ValueError, match="not a videofusion LiteRT sidecar"):
        litert_model.LiteRTModel(str(foreign))


def test_a_stream_runs_the_litert_model_as_it_runs_the_saved_model(exported, demo_raw):
    from videofusion.ingest import media
    from videofusion.serving import stream

    _, saved, lite = exported
    video = os.path.join(os.path.dirname(demo_raw), "videos", sorted(os.listdir(
        os.path.join(os.path.dirname(demo_raw), "videos")))[0])
    reference, on_device = stream.load_model(saved), stream.load_model(lite, variant="float32")
    assert on_device.window_frames == reference.window_frames and on_device.labels == reference.labels
    decoded = media.read_media(video, fps=reference.fps, short_side=reference.short_side)
    frames = np.stack(decoded.frames)[: reference.window_frames]
    waveform = decoded.waveform[: int(round(len(frames) / reference.fps * reference.sample_rate))]
    np.testing.assert_allclose(on_device.classify(frames, waveform), reference.classify(frames, waveform), atol=1e-4)
    options = stream.StreamOptions(hop_s=0.1, top_k=2, source=stream.SourceOptions(realtime=False))
    live = stream.Stream(video, on_device, options)
    results = list(live.results())
    live.close()
    assert results and live.summary.ended == "end of file"
    assert all(result["top_k"][0]["label"] in on_device.labels for result in results)
