"""Evaluation: a trained run on a split → `metrics.json` (accuracy, top-5, confusion matrix).

Example:

>>> metrics = evaluate("runs/demo", split="test")  # doctest: +SKIP
>>> sorted(metrics)[:3]  # doctest: +SKIP
['accuracy', 'confusion_matrix', 'labels']
"""

import os

import numpy as np
from absl import logging

from videofusion import fileio, pipeline, workdir as workdir_lib
from videofusion.transforms import ClipSpec

METRICS_FILE = "metrics.json"


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, top_k: int = 5) -> dict:
    """Accuracy, top-k accuracy and the confusion matrix (rows: true class, columns: predicted).

    >>> m = classification_metrics(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]))
    >>> m["accuracy"], m["top5_accuracy"], m["confusion_matrix"]
    (0.5, 1.0, [[1, 0], [1, 0]])
    """
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    k = min(top_k, num_classes)
    top = np.argsort(-probabilities, axis=1)[:, :k]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    count = len(labels)
    return {
        "accuracy": float((predicted == labels).mean()) if count else 0.0,
        "top5_accuracy": float((top == labels[:, None]).any(axis=1).mean()) if count else 0.0,
        "num_examples": int(count),
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(workdir: str, split: str = "test") -> dict:
    """Evaluates the run in `workdir` on `split`; writes and returns `workdir/metrics.json`."""
    config, labels, model = workdir_lib.load_run(workdir)
    spec = ClipSpec.from_config(config.data)
    dataset = pipeline.make_dataset(
        config.data.dir, split, spec, config.eval.batch_size, training=False
    )
    probabilities, targets = [], []
    for features, batch_labels in fileio.progress(dataset, desc=f"evaluate {split}", unit="batch"):
        probabilities.append(np.asarray(model.predict_on_batch(features)))
        targets.append(batch_labels.numpy())
    metrics = classification_metrics(np.concatenate(probabilities), np.concatenate(targets))
    metrics.update(split=split, labels=labels)
    fileio.write_json(os.path.join(workdir, METRICS_FILE), metrics)
    logging.info(
        "%s on %s: accuracy %.3f, top-5 %.3f over %d clips (chance %.3f)",
        workdir, split, metrics["accuracy"], metrics["top5_accuracy"], metrics["num_examples"],
        1.0 / len(labels),
    )
    return metrics
