"""Dashboards: a real smoke run's logs (conftest.py's `smoke_run`, of `SMOKE_RUN_EPOCHS` epochs), read back
through a real TensorBoard server's HTTP data API."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import wave

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMOKE_RUN_EPOCHS as EPOCHS

from videofusion.config import demo_config, load_run_config
from videofusion.data import pipeline
from videofusion.evaluation import confusion, evaluate
from videofusion.models import load_run
from videofusion.run_folder import RunPaths, load_labels
from videofusion.training import dashboards
from videofusion.training.callbacks import validation_accuracy_key

ROOT = "."  # the run TensorBoard names the logdir itself: where `Dashboards` writes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, url: str):
        self.url = url

    def get(self, path: str, **params) -> bytes:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=30) as response:
            return response.read()

    def json(self, path: str, **params):
        return json.loads(self.get(path, **params))

    def post(self, path: str, body: dict):
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def server(smoke_run, tmp_path_factory):
    """A real `tensorboard` over the run's `tensorboard/` folder, once it has loaded every run."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("tensorboard") / "tensorboard.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", RunPaths(smoke_run).tensorboard,
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        client = _Server(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                tags = client.json("/data/plugin/scalars/tags")
                if "epoch_clips_per_second" in tags.get("train", {}) and "hparams/val_loss" in tags.get(ROOT, {}):
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"tensorboard did not serve the run's scalars: {log.read()[-3000:]}")
            time.sleep(0.5)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_scalars_have_keras_metrics_and_clips_per_second(server):
    tags = server.json("/data/plugin/scalars/tags")
    assert {"epoch_loss", "epoch_learning_rate", "epoch_clips_per_second"} <= set(tags["train"])
    assert "epoch_loss" in tags["validation"]
    points = server.json("/data/plugin/scalars/scalars", run="train", tag="epoch_clips_per_second")
    assert [step for _, step, _ in points] == list(range(EPOCHS))
    assert all(value > 0 for _, _, value in points)
    hparam_metrics = server.json("/data/plugin/scalars/scalars", run=ROOT, tag="hparams/val_accuracy")
    assert len(hparam_metrics) == EPOCHS and all(0 <= value <= 1 for _, _, value in hparam_metrics)


def _png(server, plugin: str, tag: str) -> np.ndarray:
    """The last step's image of `tag`, fetched and decoded."""
    entries = server.json(f"/data/plugin/{plugin}/images", run=ROOT, tag=tag)
    assert [entry["step"] for entry in entries] == list(range(EPOCHS)), tag
    data = server.get(f"/data/plugin/{plugin}/individualImage?{entries[-1]['query']}")
    assert data.startswith(b"\x89PNG"), tag
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _validation_pass_confusion_matrix(workdir: str) -> tuple:
    """(confusion matrix, labels) of the run's final model on the views of the val split that `fit`'s
    validation pass scores, each view on its own."""
    config, labels, model = load_run(workdir)
    options = pipeline.PipelineOptions.from_config(config)
    dataset = pipeline.make_dataset(config.data.dir, "val", options, config.train.batch_size, training=False)
    probabilities, targets, _ = evaluate._predict_views(model, dataset)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    assert (top_two[:, 1] - top_two[:, 0] > 1e-5).all(), "a near tie: the dashboard's argmax may differ"
    return confusion.confusion_matrix(targets, probabilities.argmax(axis=1), len(labels)), labels


@pytest.mark.slow
def test_images_show_the_confusion_matrix_and_sample_clips(server, smoke_run):
    tags = server.json("/data/plugin/images/tags")[ROOT]
    clips = sorted(tag for tag in tags if tag.startswith("validation/clip_"))
    assert "validation/confusion_matrix" in tags and clips == [f"validation/clip_{i}" for i in range(3)]
    # The last validation's picture is the confusion matrix of the final model's validation pass (every
    # view of the val split on its own), pixel for pixel: the cells' shades and counts are that matrix's
    # (tests/test_confusion.py reads a matrix back from the shades).
    matrix, labels = _validation_pass_confusion_matrix(smoke_run)
    run_eval = load_run_config(smoke_run).eval
    assert matrix.sum() == 12 * run_eval.num_clips * run_eval.num_crops  # every view of every val video
    picture = _png(server, "images", "validation/confusion_matrix")[..., ::-1]  # BGR → RGB
    np.testing.assert_array_equal(picture, confusion.render(matrix, labels))
    num_frames = demo_config("smoke").data.num_frames  # squares of 32 pixels (the fixture's short side)
    strip = _png(server, "images", "validation/clip_0")
    frames = np.zeros((num_frames, 32, 32, 3), np.uint8)
    assert strip.shape == dashboards.clip_strip(frames, ["true", "predicted"]).shape
    assert strip.shape[1] == num_frames * 96  # enlarged to 96 pixels
    assert "true label" in tags["validation/clip_0"]["description"]


@pytest.mark.slow
def test_audio_plays_each_sample_clips_sound(server, tmp_path):
    tags = server.json("/data/plugin/audio/tags")[ROOT]
    assert sorted(tags) == [f"validation/clip_{i}_audio" for i in range(3)]
    entries = server.json("/data/plugin/audio/audio", run=ROOT, tag="validation/clip_0_audio")
    assert [entry["step"] for entry in entries] == list(range(EPOCHS))
    path = tmp_path / "clip.wav"
    path.write_bytes(server.get(f"/data/plugin/audio/individualAudio?{entries[-1]['query']}"))
    with wave.open(str(path)) as wav:  # the 4 frames, 2 apart at 10 fps: 0.8 s at 16 kHz
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (16000, 1, 12800)


@pytest.mark.slow
def test_text_has_the_config_and_the_predictions(server, smoke_run):
    assert {"config", "validation/predictions"} <= set(server.json("/data/plugin/text/tags")[ROOT])
    config_text = server.json("/data/plugin/text/text", run=ROOT, tag="config")[0]["text"]
    assert "frame_avg" in config_text and "learning_rate" in config_text
    predictions = server.json("/data/plugin/text/text", run=ROOT, tag="validation/predictions")
    assert len(predictions) == EPOCHS
    assert any(label in predictions[-1]["text"] for label in load_labels(smoke_run))


@pytest.mark.slow
def test_hparams_table_has_the_config_fields_and_final_metrics(server):
    experiment = server.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {info["name"] for info in experiment["hparamInfos"]} == set(dashboards.HPARAM_FIELDS)
    assert {info["name"]["tag"] for info in experiment["metricInfos"]} == set(dashboards.METRICS)
    groups = server.post("/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 10,
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    })["sessionGroups"]
    assert [group["name"] for group in groups] == ["run"]  # the workdir's name
    hparams = groups[0]["hparams"]
    assert hparams["model.fusion"] == "concat" and hparams["train.precision"] == "float32"
    assert hparams["data.image_size"] == demo_config("smoke").data.image_size
    metrics = {value["name"]["tag"]: value for value in groups[0]["metricValues"]}
    assert set(metrics) == set(dashboards.METRICS)
    assert 0 <= metrics["hparams/val_accuracy"]["value"] <= 1
    assert metrics["hparams/val_loss"]["value"] > 0 and metrics["hparams/clips_per_second"]["value"] > 0
    assert metrics["hparams/val_loss"]["trainingStep"] == EPOCHS - 1


@pytest.mark.parametrize("per_validation", [True, False])
def test_validation_dashboards_switch_leaves_out_the_confusion_matrix_and_clips(smoke_run, tmp_path, per_validation):
    config, _, model = load_run(smoke_run)
    config.train.validation_dashboards = per_validation
    workdir = tmp_path / "run"  # the smoke run's labels, its own TensorBoard folder
    workdir.mkdir()
    shutil.copy(RunPaths(smoke_run).labels, RunPaths(str(workdir)).labels)
    callback = dashboards.Dashboards(config, str(workdir), accuracy_key=validation_accuracy_key(model))
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    options = pipeline.PipelineOptions.from_config(config)
    val = pipeline.make_dataset(config.data.dir, "val", options, config.train.batch_size, training=False)
    logs = model.evaluate(pipeline.model_inputs(val, model), return_dict=True, verbose=0)  # the validation pass
    assert dashboards.balanced_accuracy_metric(model).confusion_matrix().sum() > 0
    callback.on_epoch_end(0, {f"val_{key}": value for key, value in logs.items()})
    callback.on_train_end()
    tags = {value.tag for path in (workdir / "tensorboard").glob("events.out*")
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"hparams/val_accuracy", "hparams/val_loss", "config"} <= tags
    assert ("validation/confusion_matrix" in tags) is per_validation
    assert ("validation/clip_0" in tags) is per_validation
