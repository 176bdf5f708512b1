"""Learning from unlabeled clips: unlabeled manifest rows, `data.labeled_fraction`, `videofusion pretrain`
(learning, resume after kill -9) and `model.init_from` (loading, refusing, the linear probe).

The data: conftest's `agreeing_records`, a tiny set whose picture and sound agree (a colour and a tone,
colour k always with pitch k), half of its training clips unlabeled.
"""

import json
import os
import signal
import subprocess
import sys

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf

from videofusion.config import demo_config
from videofusion.contract import prepared_folder, record_schema
from videofusion.data import labeled_subset, pipeline
from videofusion.ingest import prepare
from videofusion.run_folder import RunPaths
from videofusion.training import pretrain, strategy, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_TRAIN, NUM_VAL = conftest.AGREEING_TRAIN, conftest.AGREEING_VAL


def _config(data_dir: str, pretrain_epochs: int = 12):
    config = demo_config("smoke")
    config.data.dir = data_dir
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    config.train.jit_compile = "false"  # XLA on CPU compiles slower than this tiny model trains
    config.pretrain.update(dict(epochs=pretrain_epochs, batch_size=16, learning_rate=3e-3, projection_dim=16))
    return config


@pytest.fixture(scope="module")
def pretrained(agreeing_records, tmp_path_factory):
    """(workdir, model) of a 12-epoch pretraining on the agreeing set's 48 training clips."""
    workdir = str(tmp_path_factory.mktemp("pretrained") / "run")
    return workdir, pretrain.pretrain(_config(agreeing_records), workdir)


def test_unlabeled_rows_are_prepared_counted_and_skipped_by_training(agreeing_records):
    info = prepared_folder.read_dataset_info(agreeing_records)
    assert info[prepared_folder.COUNTS] == {"train": NUM_TRAIN, "val": NUM_VAL, "test": 0}
    assert info[prepared_folder.UNLABELED_COUNTS] == {"train": NUM_TRAIN // 2, "val": 0, "test": 0}
    assert prepared_folder.labeled_counts(info) == {"train": NUM_TRAIN // 2, "val": NUM_VAL, "test": 0}
    assert info[prepared_folder.LABELS] == [f"level{k}" for k in range(8)]  # no "" class
    table = prepared_folder.format_info(agreeing_records)
    assert "\nunlabeled" in table and "\nlabeled" in table
    # The records: an unlabeled clip has label index -1 and an empty label text, as DMVR reads them.
    labels = {}
    for serialized in tf.data.TFRecordDataset(prepared_folder.shard_files(agreeing_records, "train")):
        clip = record_schema.parse_clip(serialized)
        labels[clip[record_schema.FILENAME].numpy().decode()] = (int(clip[record_schema.LABEL_INDEX]),
                                                                 clip[record_schema.LABEL_TEXT].numpy().decode())
    assert labels["videos/009.mp4"] == (record_schema.UNLABELED_INDEX, "")
    assert labels["videos/002.mp4"] == (2, "level2")
    # Training reads the labeled clips only; pretraining all of them.
    options = pipeline.PipelineOptions.from_config(train.resolve_data_config(_config(agreeing_records)))
    one_pass = pipeline.training_epochs(agreeing_records, options, batch_size=8, seed=0).take(3)
    labels_seen = np.concatenate([batch_labels.numpy() for _, batch_labels in one_pass])
    assert len(labels_seen) == NUM_TRAIN // 2 and (labels_seen >= 0).all()
    everything = pipeline.PipelineOptions(**{**options.__dict__, "clips": pipeline.ALL_CLIPS})
    one_pass = pipeline.training_epochs(agreeing_records, everything, batch_size=8, seed=0).take(6)
    assert sum(len(batch_labels) for _, batch_labels in one_pass) == NUM_TRAIN


def test_labeled_fraction_is_stratified_seeded_and_read_by_the_pipeline(agreeing_records):
    # 24 labeled training clips, 3 per class: a third keeps one per class.
    keys = labeled_subset.labeled_subset(agreeing_records, fraction=0.34, seed=0)
    assert keys == labeled_subset.labeled_subset(agreeing_records, fraction=0.34, seed=0)  # the same every run
    assert len(keys) == 8 and len({int(key.split("/")[1][:3]) % 8 for key in keys}) == 8  # one of each class
    assert keys != labeled_subset.labeled_subset(agreeing_records, fraction=0.34, seed=1)
    assert set(keys) <= set(labeled_subset.labeled_subset(agreeing_records, fraction=0.67, seed=0))  # nested
    options = pipeline.PipelineOptions.from_config(train.resolve_data_config(_config(agreeing_records)))
    options = pipeline.PipelineOptions(**{**options.__dict__, "labeled_keys": tuple(keys)})
    files = prepared_folder.shard_files(agreeing_records, "train")
    kept = tf.data.TFRecordDataset(files).filter(pipeline.clip_selection(agreeing_records, "train", options))
    assert sorted(record_schema.parse_identity(s)[record_schema.FILENAME].numpy().decode() + "@0"
                  for s in kept) == keys
    with pytest.raises(ValueError, match="data.labeled_fraction"):
        labeled_subset.stratified_subset({0: ["a@0"]}, fraction=0.0, seed=0)


def test_pretraining_lifts_cross_modal_retrieval_well_above_chance(pretrained):
    workdir, model = pretrained
    history = model.history.history
    chance = 1 / NUM_VAL  # the val clips' audio against their 24 videos; 3 of each colour: at best 1/3
    for direction in ("audio_to_video", "video_to_audio"):
        recalls = history[f"val_{direction}_recall_at_1"]
        assert max(recalls[-3:]) >= 6 * chance, recalls
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert 0.0 < history["temperature"][-1] < 1.0
    paths = RunPaths(workdir)
    assert os.path.isfile(paths.model) and not os.path.exists(paths.backup)
    tags = set()
    for folder in ("train", "validation"):
        for name in os.listdir(os.path.join(paths.tensorboard, folder)):
            for record in tf.data.TFRecordDataset(os.path.join(paths.tensorboard, folder, name)):
                tags |= {value.tag for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value}
    assert {"epoch_loss", "epoch_temperature", "epoch_audio_to_video_recall_at_1",
            "epoch_video_to_audio_recall_at_5"} <= tags


def test_init_from_loads_the_pretrained_encoders(pretrained, agreeing_records, tmp_path):
    workdir, pretrained_model = pretrained
    config = train.resolve_data_config(_config(agreeing_records))
    config.model.init_from = workdir
    run = train.start_run(config, str(tmp_path / "run"), strategy.make_distribution("default"))
    loaded = {layer.name for layer in run.pretrained_layers}
    assert {"audio_conv1", "audio_projection", "frame_cnn", "frame_projection"} <= loaded
    assert "fused_logits" not in loaded
    for name in loaded:
        for mine, theirs in zip(run.model.get_layer(name).weights, pretrained_model.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_init_from_modalities_loads_only_their_encoders(pretrained, agreeing_records, tmp_path):
    """`model.init_from_modalities=audio`: the pretrained audio encoder, the video encoder from scratch
    (with the pretrained run's image size free to differ: only the loaded modality's fields must match)."""
    workdir, pretrained_model = pretrained
    config = train.resolve_data_config(_config(agreeing_records))
    config.model.update(dict(init_from=workdir, init_from_modalities="audio"))
    config.data.image_size = 24
    run = train.start_run(config, str(tmp_path / "run"), strategy.make_distribution("default"))
    loaded = {layer.name for layer in run.pretrained_layers}
    assert {"audio_conv1", "audio_bn1", "audio_projection"} <= loaded
    assert not any(name.startswith(("frame", "motion", "lstm", "video")) for name in loaded), loaded
    for name in loaded:
        for mine, theirs in zip(run.model.get_layer(name).weights, pretrained_model.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


@pytest.mark.parametrize("change, named", [
    ({"model.init_from_modalities": "text"}, "model.init_from_modalities='text': this run has no text encoder"),
    ({"model.init_from_modalities": "smell"}, "model.init_from_modalities='smell': expected a comma-separated"),
    ({"model.embed_dim": 32}, "model.embed_dim=32 here but 16"),
    ({"data.image_size": 48}, "data.image_size=48 here but 32"),
    ({"model.modalities": "video,text"}, "no text encoder"),
    ({"model.init_from": "/nowhere/run"}, "no /nowhere/run/model.keras"),
])
def test_init_from_refuses_a_mismatch_naming_the_field(pretrained, agreeing_records, tmp_path, change, named):
    config = train.resolve_data_config(_config(agreeing_records))
    config.model.init_from = pretrained[0]
    for field, value in change.items():
        section, key = field.split(".")
        config[section][key] = value
    with pytest.raises(train.InitFromError, match=named):
        train.start_run(config, str(tmp_path / "run"), strategy.make_distribution("default"))


def test_linear_probe_trains_only_what_was_not_pretrained(pretrained, agreeing_records, tmp_path):
    config = train.resolve_data_config(_config(agreeing_records))
    config.model.init_from = pretrained[0]
    config.train.update(dict(linear_probe=True, epochs=1, validation_dashboards=False))
    run = train.start_run(config, str(tmp_path / "run"), strategy.make_distribution("default"))
    before = {layer.name: [w.numpy() for w in layer.weights] for layer in run.model.layers if layer.weights}
    train.fit(run)
    pretrained_names = {layer.name for layer in run.pretrained_layers}
    for name, values in before.items():
        after = [w.numpy() for w in run.model.get_layer(name).weights]
        unchanged = all(np.array_equal(a, b) for a, b in zip(values, after))
        assert unchanged == (name in pretrained_names), name


def test_cli_answers_a_bad_init_from_in_one_line(agreeing_records, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "videofusion.cli", "train", "--config", os.path.join(REPO, "experiments", "demo.py"),
         "--workdir", str(tmp_path / "run"), f"--config.data.dir={agreeing_records}",
         "--config.model.init_from=/nowhere/run"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 2  # a mistake of the user's, as the CLI's others
    assert result.stderr.strip() == ("videofusion train: model.init_from=/nowhere/run: no /nowhere/run/model.keras; "
                                     "run `videofusion pretrain --workdir /nowhere/run` first"), result.stderr[-2000:]


@pytest.mark.slow
def test_pretrain_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_run(agreeing_records, tmp_path):
    epochs = 3
    command = [sys.executable, "-m", "videofusion.cli", "pretrain",
               "--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke",
               f"--config.data.dir={agreeing_records}", f"--config.pretrain.epochs={epochs}",
               "--config.pretrain.batch_size=16", "--config.model.video_encoder=frame_avg",
               "--config.train.jit_compile=false"]
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    reference = subprocess.run([*command, "--workdir", "reference"], cwd=tmp_path, env=env, capture_output=True,
                               text=True)
    assert reference.returncode == 0, reference.stderr[-4000:]
    command += ["--workdir", "run"]
    with open(tmp_path / "first.log", "w") as log:  # killed when epoch 2 begins: epoch 1 is backed up
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        for line in first.stdout:
            if line.startswith(f"Epoch 2/{epochs}"):
                first.send_signal(signal.SIGKILL)
                break
        first.stdout.close()
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-4000:]
    backup = os.path.join(RunPaths(str(tmp_path / "run")).backup, "pretrain")
    assert os.listdir(backup) == ["epoch_1"]
    with open(os.path.join(backup, "epoch_1", "state.json")) as f:
        assert json.load(f)["epochs_done"] == 1
    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-4000:]
    assert [line for line in second.stdout.splitlines() if line.startswith("Epoch ")] == ["Epoch 2/3", "Epoch 3/3"]
    resumed = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    uninterrupted = keras.models.load_model(tmp_path / "reference" / "model.keras", compile=False)
    for mine, theirs in zip(resumed.weights, uninterrupted.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_unlabeled_folder_joins_the_class_folders_in_the_train_split(tmp_path):
    from conftest import write_video

    for relative in ("classes/cat/a.mp4", "classes/dog/b.mp4", "wild/cam1/c.mp4", "wild/d.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        write_video(tmp_path / relative, num_frames=10, audio_seconds=0.4)
    summary = prepare.prepare_dataset(prepare.PrepareOptions(
        input_dir=str(tmp_path / "classes"), unlabeled_dir=str(tmp_path / "wild"), output_dir=str(tmp_path / "out"),
        short_side=16, val_fraction=0.0, test_fraction=0.0))
    assert summary[prepared_folder.COUNTS]["train"] == 4
    assert summary[prepared_folder.UNLABELED_COUNTS]["train"] == 2
    assert prepared_folder.read_labels(str(tmp_path / "out" / prepared_folder.LABELS_FILE)) == ["cat", "dog"]
    names = {record_schema.parse_identity(s)[record_schema.FILENAME].numpy().decode(): int(
        record_schema.parse_identity(s)[record_schema.LABEL_INDEX])
        for s in tf.data.TFRecordDataset(prepared_folder.shard_files(str(tmp_path / "out"), "train"))}
    assert names == {"cat/a.mp4": 0, "dog/b.mp4": 1, "wild/cam1/c.mp4": -1, "wild/d.mp4": -1}


MIRRORED_LOSS_SCRIPT = """
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from videofusion.training.contrastive import CrossModalInfoNCE
embeddings = np.random.default_rng(0).normal(size=(8, 2, 4)).astype("float32")
loss = CrossModalInfoNCE()
whole = loss.call(None, tf.constant(embeddings)).numpy()  # one device: every clip against all 8
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
halves = strategy.experimental_distribute_values_from_function(
    lambda context: tf.constant(embeddings[4 * context.replica_id_in_sync_group:][:4]))
per_replica = strategy.run(lambda part: loss.call(None, part), args=(halves,))
split = np.concatenate([t.numpy() for t in strategy.experimental_local_results(per_replica)])
local = np.concatenate([loss.call(None, tf.constant(embeddings[i:i + 4])).numpy() for i in (0, 4)])
np.testing.assert_allclose(split, whole, rtol=1e-5)
assert not np.allclose(local, whole)  # without the gathering, each replica would see only its 4 clips
# Two views per clip, one of them on the other replica for clips 1 and 2: their ids are gathered too.
views = tf.constant([0, 1, 2, 3, 1, 2, 4, 5], tf.float32)
paired = CrossModalInfoNCE(within_modal_weight=1.0)
whole = paired.call(views, tf.constant(embeddings)).numpy()
id_halves = strategy.experimental_distribute_values_from_function(
    lambda context: views[4 * context.replica_id_in_sync_group:][:4])
per_replica = strategy.run(paired.call, args=(id_halves, halves))
split = np.concatenate([t.numpy() for t in strategy.experimental_local_results(per_replica)])
np.testing.assert_allclose(split, whole, rtol=1e-5)
assert not np.allclose(whole, loss.call(None, tf.constant(embeddings)).numpy())
print("ok")
"""


def test_contrastive_loss_under_mirrored_strategy_scores_each_clip_against_the_global_batch():
    result = subprocess.run([sys.executable, "-c", MIRRORED_LOSS_SCRIPT], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-4000:]


@pytest.mark.slow
def test_pretrain_runs_under_the_jax_backend(agreeing_records, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "videofusion.cli", "pretrain", "--config",
         os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", str(tmp_path / "run"),
         f"--config.data.dir={agreeing_records}", "--config.pretrain.epochs=1", "--config.pretrain.batch_size=16",
         "--config.model.video_encoder=frame_avg"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="jax"), timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "val_audio_to_video_recall_at_1" in result.stdout
    model = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert model.output["embeddings"].shape == (None, 2, 64)


def test_embed_writes_the_modality_spaces_and_search_crosses_them(pretrained, agreeing_records, tmp_path):
    """A pretrained run's `embed`: one space per modality, each video's unit vectors of the model's own
    `embeddings` (read here through the evaluation pipeline), and sound → picture search in them."""
    from videofusion import config as config_lib
    from videofusion.evaluation import retrieval
    from videofusion.serving import embed, embedding_folder, search

    workdir, model = pretrained
    folder = str(tmp_path / "embeddings")
    embed.embed(workdir, folder, embed.EmbedInputs(data_dir=agreeing_records, splits=("val",)))
    collection = embedding_folder.EmbeddingFolder(folder)
    assert collection.spaces == {"audio": 16, "video": 16}
    config = config_lib.load_run_config(workdir)
    options = pipeline.PipelineOptions.from_config(config, model=model)
    videos = []
    for serialized in tf.data.TFRecordDataset(prepared_folder.shard_files(agreeing_records, "val")):  # embed's order
        views, _ = pipeline.eval_examples(serialized, tf.constant(0, tf.int64), options)
        scaled = model.predict_on_batch({k: views[k] for k in model.input})["embeddings"]  # [views, 2, 16]
        videos.append((scaled / np.linalg.norm(scaled, axis=-1, keepdims=True)).mean(axis=0))
    videos = np.stack(videos)
    np.testing.assert_allclose(collection.vectors("audio"), videos[:, 0], atol=1e-4)  # modalities sorted
    np.testing.assert_allclose(collection.vectors("video"), videos[:, 1], atol=1e-4)
    labels = [row["label"] for row in collection.rows]
    figures = retrieval.class_retrieval(collection.vectors("audio"), labels, collection.vectors("video"), labels)
    assert figures["recall_at_1"] >= 3 * figures["chance_recall_at_1"], figures
    searcher = search.Searcher(folder, space="video")
    query = collection.rows[0]["id"]
    results = searcher.search(search.Query(clip_id=query, modality="audio"), top_k=3)
    cosines = np.asarray(collection.vectors("video"), np.float64) @ collection.vectors("audio")[0]
    cosines /= np.linalg.norm(collection.vectors("video"), axis=1) * np.linalg.norm(collection.vectors("audio")[0])
    cosines[0] = -np.inf  # the query's own video is left out
    assert results[0]["id"] == collection.rows[int(np.argmax(cosines))]["id"]
    assert abs(results[0]["score"] - cosines.max()) < 1e-4
