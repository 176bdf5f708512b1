"""The `videofusion` command line: usage and help, exit statuses of `prepare`, `info`, a mistake answered
in one line, and TensorFlow's start-up lines left out."""

import json
import os
import subprocess
import sys

import pytest
from conftest import write_video

from videofusion import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_EXPERIMENT = os.path.join(REPO, "experiments", "demo.py")
# What TensorFlow writes as it starts on a machine without CUDA (oneDNN's notice where it is on).
TF_START_UP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard",
                     "Could not find cuda drivers", "failed call to cuInit")


def videofusion(*args, cwd=None, **env):
    """Runs the command line; `env` adds variables, and a None value removes one."""
    environment = dict(os.environ, PYTHONPATH=REPO, **env)
    return subprocess.run([sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={k: v for k, v in environment.items() if v is not None})


def one_line_mistake(result) -> str:
    """The last line of stderr of a command that failed without a traceback."""
    assert result.returncode != 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


def test_usage_lists_the_verbs():
    result = videofusion()
    assert result.returncode == 2
    for verb in ("demo-data", "prepare", "info", "train", "evaluate", "export", "predict"):
        assert verb in result.stderr


def test_train_help_lists_its_flags_defaults_and_an_example():
    train = videofusion("train", "--help")
    assert train.returncode == 0, train.stderr[-3000:]
    assert "usage: videofusion train [flags] [--config.FIELD=VALUE ...]" in train.stdout
    assert "  --config: Experiment file, e.g. experiments/demo.py.\n    (required)" in train.stdout
    assert "  --workdir: Folder for checkpoints, logs and the model.\n    (required)" in train.stdout
    assert "example:\n  videofusion train --config experiments/demo.py --workdir runs/demo" in train.stdout
    assert f"{cli.DEBUG_VARIABLE}=1" in train.stdout and "--helpfull" not in train.stdout
    evaluate = videofusion("evaluate", "--help")
    assert "  --[no]silence-audio: Evaluate as if no video had sound" in evaluate.stdout
    assert "    (default: 'false')" in evaluate.stdout


def test_an_unknown_config_field_names_it_and_the_field_meant(tmp_path):
    result = videofusion("train", "--config", DEMO_EXPERIMENT, "--workdir", str(tmp_path / "run"),
                         "--config.train.epoch=3")
    assert result.returncode == 1
    assert result.stderr.strip() == ("videofusion train: --config.train.epoch: config.train has no field 'epoch'; "
                                     'did you mean "epochs" instead of "epoch"?')
    debugged = videofusion("train", "--config", DEMO_EXPERIMENT, "--workdir", str(tmp_path / "run"),
                           "--config.train.epoch=3", **{cli.DEBUG_VARIABLE: "1"})
    assert debugged.returncode == 1 and "Traceback" in debugged.stderr and "epochs" in debugged.stderr


def test_a_missing_experiment_file_is_named(tmp_path):
    missing = os.path.join(REPO, "experiments", "nosuch.py")
    result = videofusion("train", "--config", missing, "--workdir", str(tmp_path / "run"))
    assert result.stderr.strip() == (f"videofusion train: --config: No such file or directory: '{missing}'; "
                                     "give an experiment file, e.g. experiments/demo.py")
    assert result.returncode == 2


def test_a_missing_data_folder_says_to_prepare_it(tmp_path):
    nowhere = str(tmp_path / "nowhere")
    result = videofusion("train", "--config", DEMO_EXPERIMENT, "--workdir", str(tmp_path / "run"),
                         f"--config.data.dir={nowhere}")
    assert one_line_mistake(result) == (f"videofusion train: {nowhere}/dataset.json not found: "
                                        f"run `videofusion prepare --output {nowhere}` first")


@pytest.fixture(scope="module")
def evaluate_without_a_run(tmp_path_factory):
    """`evaluate` on a folder without a run, with the defaults of TensorFlow's logging and oneDNN on."""
    workdir = str(tmp_path_factory.mktemp("cli") / "nothing")
    return workdir, videofusion("evaluate", "--workdir", workdir, TF_CPP_MIN_LOG_LEVEL=None,
                                TF_ENABLE_ONEDNN_OPTS="1")


def test_evaluate_without_a_run_says_to_train_first(evaluate_without_a_run):
    workdir, result = evaluate_without_a_run
    assert one_line_mistake(result) == (f"videofusion evaluate: {workdir}/model.keras not found: train first "
                                        f"(`videofusion train --workdir {workdir}`)")


def test_tensorflow_start_up_lines_are_left_out(evaluate_without_a_run):
    _, result = evaluate_without_a_run
    assert not [line for line in TF_START_UP_LINES if line in result.stderr], result.stderr[-3000:]


def test_the_start_up_lines_filter_keeps_every_other_line(capfd):
    with cli._stderr_without(cli._TF_START_UP_LINE):
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1.2 1 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n")
        print("a line of ours", file=sys.stderr)
    assert capfd.readouterr().err == "a line of ours\n"


@pytest.fixture
def export_dir(tmp_path):
    """A SavedModel with the metadata `predict` reads, and a `serve_examples` that a video that does not
    decode never reaches."""
    import tensorflow as tf

    from videofusion.serving import export

    class Unreached(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_examples(self, examples):
            return {"probabilities": tf.fill([tf.size(examples), 2], 0.5)}

    model = Unreached()
    path = str(tmp_path / "exports" / "1")
    tf.saved_model.save(model, path, signatures={"serve_examples": model.serve_examples})
    metadata = {"labels": ["a", "b"], "modalities": "video,audio", "fps": 10.0, "short_side": 32,
                "sample_rate": 16000, "jpeg_quality": 90, "max_clip_seconds": 30.0}
    os.makedirs(os.path.dirname(os.path.join(path, export.METADATA_FILE)))
    with open(os.path.join(path, export.METADATA_FILE), "w") as f:
        json.dump(metadata, f)
    return path


def test_predict_answers_a_missing_or_non_video_file_in_json(export_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    paths = [str(tmp_path / "missing.mp4"), str(tmp_path / "notes.txt")]
    result = videofusion("predict", "--model", export_dir, *paths)
    assert result.returncode == 1
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == paths
    assert all("error" in json.loads(line) for line in result.stdout.splitlines())
    assert one_line_mistake(result).endswith("2 of 2 videos could not be decoded")


def test_prepare_without_its_manifest_names_it(tmp_path):
    result = videofusion("prepare", "--manifest", "nosuch.csv", "--output", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "videofusion prepare: nosuch.csv: manifest not found"


def test_prepare_exit_status_and_strict(tmp_path):
    write_video(tmp_path / "good.mp4", num_frames=5, audio_seconds=0.2)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "some.csv").write_text("path,label\ngood.mp4,a\nbad.mp4,b\n")
    (tmp_path / "none.csv").write_text("path,label\nbad.mp4,b\n")
    common = ["--short-side", "16", "--workers", "1"]
    lenient = videofusion("prepare", "--manifest", "some.csv", "--output", "out1", *common, cwd=tmp_path)
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    strict = videofusion("prepare", "--manifest", "some.csv", "--output", "out2", "--strict", *common, cwd=tmp_path)
    assert strict.returncode == 1 and "--strict: 1 inputs were skipped" in strict.stderr
    nothing = videofusion("prepare", "--manifest", "none.csv", "--output", "out3", *common, cwd=tmp_path)
    assert nothing.returncode == 1 and "No record was written" in nothing.stderr
    no_header = videofusion("prepare", "--manifest", "good.mp4", "--output", "out4", *common, cwd=tmp_path)
    assert no_header.returncode == 2 and "good.mp4" in no_header.stderr


def test_info_prints_totals_and_a_per_label_table(demo_records):
    result = videofusion("info", demo_records)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{demo_records}: 36 clips from 36 videos, 36.0 s; 0 inputs skipped"
    table = {line.split()[0]: line.split()[1:] for line in lines[4:]}
    assert table["disk-left-low"] == ["1", "1", "1", "3"]
    assert table["total"] == ["12", "12", "12", "36"]
