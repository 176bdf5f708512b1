"""Evaluation: a trained run on a split → `metrics.json` (accuracy, top-k, confusion matrix) and a report
per class in `eval/<split>/`.

Files written into the workdir (`--silence-audio`: `metrics_silent.json` and `eval/<split>_silent/`):

- `metrics.json`: accuracy, top-k accuracy for the run's `eval.top_k`, the confusion matrix, the labels
  (its keys are read by `report.py` and scripts: they stay as they are).
- `eval/<split>/metrics.json`: top-1, top-5 (k = min(5, classes)) and top-`eval.top_k` accuracy,
  precision / recall / F1 / support of each class (keyed by label), their macro averages,
  `num_examples`, `views_per_video`.
- `eval/<split>/confusion_matrix.json` (`{"labels": [...], "matrix": [[...]]}`, rows true, columns
  predicted) and `eval/<split>/confusion_matrix.png` (`confusion.render`).

Example:

>>> metrics = evaluate("runs/demo", split="test")  # doctest: +SKIP
>>> sorted(metrics)[:3]  # doctest: +SKIP
['accuracy', 'confusion_matrix', 'labels']
"""

import dataclasses
import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from videofusion import fileio, models, progress
from videofusion.contract import tensors
from videofusion.data import caption_tokenizer, pipeline
from videofusion.evaluation import confusion

METRICS_FILE = "metrics.json"
SILENT_METRICS_FILE = "metrics_silent.json"
EVAL_DIR = "eval"  # WORKDIR/eval/<split>/ holds the files below
CLASS_METRICS_FILE = "metrics.json"
CONFUSION_JSON_FILE = "confusion_matrix.json"
CONFUSION_PNG_FILE = "confusion_matrix.png"


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, top_k: int) -> dict:
    """Accuracy, top-k accuracy (k = `top_k`, at most the number of classes) and the confusion matrix
    (rows: true class, columns: predicted).

    >>> m = classification_metrics(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), top_k=5)
    >>> m["accuracy"], m["top_k"], m["top_k_accuracy"], m["confusion_matrix"]
    (0.5, 2, 1.0, [[1, 0], [1, 0]])
    """
    num_classes = probabilities.shape[1]
    k = min(top_k, num_classes)
    return {
        "accuracy": top_k_accuracy(probabilities, labels, 1),
        "top_k": k,
        "top_k_accuracy": top_k_accuracy(probabilities, labels, k),
        "num_examples": int(len(labels)),
        "confusion_matrix": confusion.confusion_matrix(labels, probabilities.argmax(axis=1), num_classes).tolist(),
    }


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """The share of rows whose true class is among their `k` highest scores (0.0 for no rows).

    >>> top_k_accuracy(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]), np.array([1, 2]), k=2)
    0.5
    """
    if not len(labels):
        return 0.0
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]  # ties: the lower index first, as argmax
    return float((top == labels[:, None]).any(axis=1).mean())


def per_class_metrics(matrix: np.ndarray, labels: Sequence[str]) -> dict:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows true, columns
    predicted), keyed by label, and their macro averages.

    A ratio whose denominator is 0 is 0, never NaN: a class that is never predicted has precision 0, a
    class with no examples has recall 0, and F1 is 0 when precision and recall are. The macro averages
    are over the classes that occur in the labels or the predictions (scikit-learn's `average="macro"`
    with `zero_division=0`), so that a class absent from the split and never predicted does not count.

    >>> m = per_class_metrics(np.array([[2, 0, 1], [1, 0, 0], [0, 0, 0]]), ["a", "b", "c"])
    >>> {key: round(value, 4) for key, value in m["per_class"]["a"].items()}
    {'precision': 0.6667, 'recall': 0.6667, 'f1': 0.6667, 'support': 3}
    >>> m["per_class"]["b"]["precision"], m["per_class"]["c"]["recall"], round(m["macro_f1"], 4)
    (0.0, 0.0, 0.2222)
    """
    matrix = np.asarray(matrix, np.int64)
    hits, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(len(hits)), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(len(hits)), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(len(hits)), where=both > 0)
    occurs = (support > 0) | (predicted > 0)
    macro = {name: float(values[occurs].mean()) if occurs.any() else 0.0
             for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
    return {
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, label in enumerate(labels)},
        **{f"macro_{name}": value for name, value in macro.items()},
    }


def per_class_table(report: dict) -> str:
    """`per_class_metrics`' result as a fixed-width text table, one row per class, then the macro row.

    >>> print(per_class_table(per_class_metrics(np.array([[1, 1], [0, 2]]), ["cat", "dog"])))
    class  precision  recall     f1  support
    cat        1.000   0.500  0.667        2
    dog        0.667   1.000  0.800        2
    macro      0.833   0.750  0.733        4
    """
    width = max([len("class"), len("macro")] + [len(label) for label in report["per_class"]])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    row = "{:<%d}  {:>9.3f}  {:>6.3f}  {:>5.3f}  {:>7d}" % width
    for label, m in report["per_class"].items():
        lines.append(row.format(label, m["precision"], m["recall"], m["f1"], m["support"]))
    total = sum(m["support"] for m in report["per_class"].values())
    lines.append(row.format("macro", report["macro_precision"], report["macro_recall"], report["macro_f1"], total))
    return "\n".join(lines)


def average_views(probabilities: np.ndarray, labels: np.ndarray, video_ids: np.ndarray) -> tuple:
    """Per-view softmax → per-video softmax (the mean over its views) and per-video labels; videos in
    the order of their ids. Any per-view array `[views, ...]` averages alike (embeddings too).

    >>> probs, labels = average_views(np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]]), np.array([0, 0, 1]),
    ...                               np.array([0, 0, 1]))
    >>> probs.tolist(), labels.tolist()
    ([[0.5, 0.5], [0.2, 0.8]], [0, 1])
    """
    ids, index = np.unique(video_ids, return_inverse=True)
    sums = np.zeros((len(ids),) + probabilities.shape[1:])
    np.add.at(sums, index, probabilities)
    per_video_labels = np.zeros(len(ids), labels.dtype)
    per_video_labels[index] = labels
    return sums / np.bincount(index).reshape((-1,) + (1,) * (probabilities.ndim - 1)), per_video_labels


def _predict_views(model, dataset) -> tuple:
    inputs = list(model.input)
    probabilities, labels, video_ids = [], [], []
    for features, batch_labels in progress.track(dataset, desc="evaluate", unit="batch"):
        outputs = model.predict_on_batch({k: features[k] for k in inputs})
        probabilities.append(np.asarray(outputs[tensors.CLASSES]))
        labels.append(batch_labels.numpy())
        video_ids.append(features[tensors.VIDEO_ID].numpy())
    return np.concatenate(probabilities), np.concatenate(labels), np.concatenate(video_ids)


def eval_dir(workdir: str, split: str, silence_audio: bool = False) -> str:
    """Where the report of `split` goes: `WORKDIR/eval/<split>/`, or `WORKDIR/eval/<split>_silent/` for
    an evaluation with the audio silenced.

    >>> eval_dir("runs/demo", "test"), eval_dir("runs/demo", "test", silence_audio=True)
    ('runs/demo/eval/test', 'runs/demo/eval/test_silent')
    """
    return os.path.join(workdir, EVAL_DIR, f"{split}_silent" if silence_audio else split)


def write_report(directory: str, metrics: dict, probabilities: np.ndarray, targets: np.ndarray) -> dict:
    """Writes `metrics.json` (top-1, top-5, top-k accuracy, per-class and macro precision / recall / F1),
    `confusion_matrix.json` and `confusion_matrix.png` into `directory`, each atomically; returns what
    went into `metrics.json`.

    Args:
      directory: the folder to write (created if missing), e.g. `eval_dir(workdir, split)`.
      metrics: what `evaluate` writes to `WORKDIR/metrics.json` (the report repeats its figures).
      probabilities: `[num_videos, num_classes]` per-video softmax (after `average_views`).
      targets: `[num_videos]` true class indices.

    >>> import tempfile
    >>> metrics = {"split": "test", "silenced_audio": False, "labels": ["cat", "dog"], "views_per_video": 1,
    ...            **classification_metrics(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), top_k=1)}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     report = write_report(folder, metrics, np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]))
    >>> report["top_1_accuracy"], report["top_5_accuracy"], report["per_class"]["dog"]["precision"]
    (0.5, 1.0, 0.0)
    """
    labels, matrix = list(metrics["labels"]), np.asarray(metrics["confusion_matrix"], np.int64)
    report = {key: metrics[key] for key in ("split", "silenced_audio", "num_examples", "views_per_video",
                                            "top_k", "top_k_accuracy")}
    report.update(
        top_1_accuracy=metrics["accuracy"],
        top_5_accuracy=top_k_accuracy(probabilities, targets, min(5, len(labels))),
        num_classes=len(labels),
        **per_class_metrics(matrix, labels),
    )
    fileio.write_json(os.path.join(directory, CLASS_METRICS_FILE), report)
    fileio.write_json(os.path.join(directory, CONFUSION_JSON_FILE), {"labels": labels, "matrix": matrix.tolist()})
    with fileio.atomic_path(os.path.join(directory, CONFUSION_PNG_FILE)) as tmp:
        confusion.write_png(tmp, confusion.render(matrix, labels))
    return report


def evaluate(workdir: str, split: Optional[str] = None, silence_audio: bool = False) -> dict:
    """Evaluates the run in `workdir` on `split` (default: the run's `eval.split`); writes and returns
    `workdir/metrics.json`, with top-k accuracy for the run's `eval.top_k`, and writes the report per
    class and the confusion matrix into `workdir/eval/<split>/` (`write_report`).

    Every video is scored by the mean softmax of its `eval.num_clips * eval.num_crops` views. With
    `silence_audio`, every video is evaluated as if it had no sound (and the metrics go to
    `metrics_silent.json` and `eval/<split>_silent/`): how much the model still knows without its audio.
    """
    config, labels, model = models.load_run(workdir)
    split = split or config.eval.split
    options = dataclasses.replace(
        pipeline.PipelineOptions.from_config(config, caption_tokenizer.tokenizer_for_run(config, workdir), model),
        silence_audio=silence_audio,
    )
    dataset = pipeline.make_dataset(config.data.dir, split, options, config.eval.batch_size, training=False)
    try:
        views = _predict_views(model, dataset)
    except tf.errors.DataLossError as error:
        raise pipeline.corrupt_shard_error(config.data.dir, error) from error
    probabilities, targets = average_views(*views)
    metrics = classification_metrics(probabilities, targets, config.eval.top_k)
    metrics.update(split=split, labels=labels, views_per_video=options.num_clips * options.num_crops,
                   num_parameters=int(model.count_params()))
    metrics["silenced_audio"] = silence_audio
    fileio.write_json(os.path.join(workdir, SILENT_METRICS_FILE if silence_audio else METRICS_FILE), metrics)
    directory = eval_dir(workdir, split, silence_audio)
    report = write_report(directory, metrics, probabilities, targets)
    logging.info(
        "%s on %s: accuracy %.3f, top-%d %.3f over %d videos (chance %.3f)",
        workdir, split, metrics["accuracy"], metrics["top_k"], metrics["top_k_accuracy"], metrics["num_examples"],
        1.0 / len(labels),
    )
    logging.info("per class on %s (report in %s):\n%s", split, directory, per_class_table(report))
    return metrics
