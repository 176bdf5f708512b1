"""Test accuracy on the appearance set (`appearance_set.py`): video, audio and fused models, per clip type.

The set's class is a digit that some clips show as a glyph (`visual`), some only "speak" (`audio`) and
some do both (`both`). Half of the test clips are new instances of the training styles (`seen`), half
have glyph faces and voices that training never saw (`held_out`). Each row trains
`experiments/fusion_bottleneck.py` on it with the product's command line and evaluates on the test split:

- `video`: `--config.model.modalities=video`; can reach about 0.64 (1 on `visual` and `both` clips, chance
  on `audio` clips);
- `audio`: `--config.model.modalities=audio`; likewise about 0.64 (reported: ~0.61, ~0.63 for a model
  that uses audio well);
- `fused`: the experiment's own modalities (video and audio); can reach 1.

These ceilings are those of the `seen` half; on the `held_out` half, per-frame CNNs trained on the
training glyphs recognise 0.65–0.78 of the glyph clips (`appearance_set.py`).

Steps, under `--work_dir`: `raw/` (the set, generated at full size unless its manifest is there),
`records/` (`videofusion prepare --fps 10 --short-side 64`, unless its dataset.json is there) and
`runs/<row>/` (emptied, then `videofusion train` with `--config.data.image_size=64`, the row's and the
`--override` values, and `videofusion evaluate --split test`). The test accuracy is the run's
metrics.json; the accuracy per half and per clip type of each half comes from the run's model.keras on
the evaluation pipeline (the same views, averaged the same way), each video matched to its clip type
and half by its `video/filename`.

    .venv/bin/python benchmarks/bench_appearance.py                        # 3 rows × 15 epochs (long)
    .venv/bin/python benchmarks/bench_appearance.py --rows video --epochs 3 \\
        --override config.model.video_encoder=transformer

The last line of output is one JSON object with the figures (`<row>_test_accuracy`,
`<row>_<half>_accuracy`, `<row>_<half>_<clip type>_clips_accuracy`, `<row>_train_s`, ...).
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import appearance_set  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import models  # noqa: E402
from videofusion.contract import prepared_folder, record_schema, tensors  # noqa: E402
from videofusion.data import caption_tokenizer, pipeline  # noqa: E402
from videofusion.evaluation import evaluate  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(REPO, "experiments", "fusion_bottleneck.py")
ROWS = {
    "video": ("--config.model.modalities=video",),
    "audio": ("--config.model.modalities=audio",),
    "fused": (),
}
IMAGE_SIZE = 64
FPS = 10

_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/vf_appearance", "Folder for the set, the records and the runs.")
_EPOCHS = flags.DEFINE_integer("epochs", 15, "Training epochs of every row.")
_ROWS = flags.DEFINE_list("rows", list(ROWS), f"Rows to train, of {', '.join(ROWS)}.")
_OVERRIDES = flags.DEFINE_multi_string(
    "override", [], "A config override for every train command, e.g. config.train.batch_size=32 (repeatable).")


def cli(*args: str) -> str:
    """Runs `videofusion <args>` (its stderr shows here); returns its stdout, raises if it failed."""
    command = [sys.executable, "-m", "videofusion.cli", *args]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`videofusion {' '.join(args)}` exited with status {result.returncode}")
    return result.stdout


def data_dirs(work_dir: str) -> tuple:
    """(raw folder, records folder) under `work_dir`."""
    return os.path.join(work_dir, "raw"), os.path.join(work_dir, "records")


def ensure_data(work_dir: str) -> tuple:
    """`data_dirs(work_dir)`, after generating the set and preparing it where that was not done yet."""
    raw, prepared = data_dirs(work_dir)
    manifest = os.path.join(raw, appearance_set.MANIFEST_FILE)
    if not os.path.isfile(manifest):
        start = time.perf_counter()
        appearance_set.write_appearance_set(raw)
        logging.info("Generated the appearance set in %.0f s", time.perf_counter() - start)
    if not os.path.isfile(os.path.join(prepared, prepared_folder.DATASET_FILE)):
        cli("prepare", "--manifest", manifest, "--output", prepared, "--fps", str(FPS),
            "--short-side", str(IMAGE_SIZE))
    return raw, prepared


def override_flags(overrides: Sequence[str]) -> List[str]:
    """`config.KEY=VALUE` (or `--config.KEY=VALUE`) → `--config.KEY=VALUE`.

    >>> override_flags(["config.train.batch_size=32", "--config.model.fusion=concat"])
    ['--config.train.batch_size=32', '--config.model.fusion=concat']
    """
    return ["--" + value.lstrip("-") for value in overrides]


def train_and_evaluate(row: str, prepared: str, run_dir: str, epochs: int, overrides: Sequence[str]) -> tuple:
    """Trains row `row` in `run_dir` (emptied first), evaluates it on test; (metrics, training seconds)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    cli("train", "--config", EXPERIMENT, "--workdir", run_dir, f"--config.data.dir={prepared}",
        f"--config.data.image_size={IMAGE_SIZE}", f"--config.train.epochs={epochs}", *ROWS[row],
        *override_flags(overrides))
    seconds = time.perf_counter() - start
    cli("evaluate", "--workdir", run_dir, "--split", "test")
    with open(os.path.join(run_dir, evaluate.METRICS_FILE), encoding="utf-8") as f:
        return json.load(f), seconds


def _filenames(serialized: tf.data.Dataset) -> List[str]:
    context = {record_schema.FILENAME: tf.io.FixedLenFeature([], tf.string)}
    return [tf.io.parse_single_sequence_example(s, context_features=context)[0][record_schema.FILENAME].numpy().decode()
            for s in serialized]


def video_predictions(run_dir: str, split: str = "test") -> tuple:
    """(filenames, predicted class, true class) of every video of `split`, scored as `evaluate` scores
    them: the mean softmax of each video's views, from the run's model.keras."""
    config, _, model = models.load_run(run_dir)
    options = pipeline.PipelineOptions.from_config(config, caption_tokenizer.tokenizer_for_run(config, run_dir))
    serialized = tf.data.TFRecordDataset(prepared_folder.shard_files(config.data.dir, split))
    views = serialized.enumerate().map(lambda video_id, s: pipeline.eval_examples(s, video_id, options))
    probabilities, labels, video_ids = [], [], []
    for features, batch_labels in views.unbatch().batch(config.eval.batch_size):
        outputs = model.predict_on_batch({key: features[key] for key in model.input})
        probabilities.append(np.asarray(outputs[tensors.CLASSES]))
        labels.append(batch_labels.numpy())
        video_ids.append(features[tensors.VIDEO_ID].numpy())
    per_video, targets = evaluate.average_views(
        np.concatenate(probabilities), np.concatenate(labels), np.concatenate(video_ids))
    return _filenames(serialized), per_video.argmax(axis=1), targets


def accuracy_by_group(filenames: Sequence[str], predicted: np.ndarray, targets: np.ndarray,
                      clip_types: Dict[str, tuple]) -> Dict[str, float]:
    """Accuracy over the videos of each half (`<styles>`) and of each clip type in it
    (`<styles>_<clip type>_clips`); `clip_types` maps a filename to (clip type, styles).

    >>> accuracy_by_group(["a", "b", "c"], np.array([1, 0, 2]), np.array([1, 1, 2]),
    ...                   {"a": ("visual", "seen"), "b": ("visual", "seen"), "c": ("audio", "seen")})
    {'seen': 0.667, 'seen_audio_clips': 1.0, 'seen_visual_clips': 0.5}
    """
    correct = collections.defaultdict(list)
    for filename, guess, target in zip(filenames, predicted, targets):
        clip_type, styles = clip_types[filename]
        correct[styles].append(guess == target)
        correct[f"{styles}_{clip_type}_clips"].append(guess == target)
    return {group: round(float(np.mean(hits)), 3) for group, hits in sorted(correct.items())}


def bench_row(row: str, work_dir: str, epochs: int, overrides: Sequence[str]) -> dict:
    """The figures of one row: test accuracy and top-k, accuracy per clip type, training time."""
    raw, prepared = data_dirs(work_dir)
    run_dir = os.path.join(work_dir, "runs", row)
    metrics, seconds = train_and_evaluate(row, prepared, run_dir, epochs, overrides)
    filenames, predicted, targets = video_predictions(run_dir)
    recomputed = float(np.mean(predicted == targets))
    if abs(recomputed - metrics["accuracy"]) > 1e-6:
        logging.warning("%s: accuracy %.4f from the model here, %.4f in metrics.json", row, recomputed,
                        metrics["accuracy"])
    by_group = accuracy_by_group(filenames, predicted, targets, appearance_set.read_clip_types(raw))
    logging.info("%s: test accuracy %.3f; by half and clip type %s; trained in %.0f s", row, metrics["accuracy"],
                 by_group, seconds)
    figures = {f"{row}_test_accuracy": round(metrics["accuracy"], 4),
               f"{row}_test_top{metrics['top_k']}_accuracy": round(metrics["top_k_accuracy"], 4)}
    figures.update({f"{row}_{group}_accuracy": value for group, value in by_group.items()})
    figures[f"{row}_train_s"] = round(seconds, 1)
    return figures


def main(_):
    unknown = sorted(set(_ROWS.value) - set(ROWS))
    if unknown:
        raise app.UsageError(f"unknown rows {unknown}: choose from {', '.join(ROWS)}")
    _, prepared = ensure_data(_WORK_DIR.value)
    counts = prepared_folder.read_dataset_info(prepared)[prepared_folder.COUNTS]
    figures = {}
    for row in _ROWS.value:
        figures.update(bench_row(row, _WORK_DIR.value, _EPOCHS.value, _OVERRIDES.value))
    figures.update({
        "epochs": _EPOCHS.value,
        "overrides": override_flags(_OVERRIDES.value),
        "experiment": os.path.relpath(EXPERIMENT, REPO),
        "clips_per_split": counts,
        "cpu_cores": os.cpu_count(),
    })
    print(json.dumps(figures))


if __name__ == "__main__":
    app.run(main)
