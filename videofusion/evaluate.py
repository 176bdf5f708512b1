"""Evaluation: a trained run on a split → `metrics.json` (accuracy, top-5, confusion matrix).

Example:

>>> metrics = evaluate("runs/demo", split="test")  # doctest: +SKIP
>>> sorted(metrics)[:3]  # doctest: +SKIP
['accuracy', 'confusion_matrix', 'labels']
"""

import dataclasses
import os
from typing import Optional

import numpy as np
from absl import logging

import tensorflow as tf

from videofusion import fileio, names, pipeline, text, workdir as workdir_lib

METRICS_FILE = "metrics.json"
SILENT_METRICS_FILE = "metrics_silent.json"


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, top_k: int) -> dict:
    """Accuracy, top-k accuracy (k = `top_k`, at most the number of classes) and the confusion matrix
    (rows: true class, columns: predicted).

    >>> m = classification_metrics(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), top_k=5)
    >>> m["accuracy"], m["top_k"], m["top_k_accuracy"], m["confusion_matrix"]
    (0.5, 2, 1.0, [[1, 0], [1, 0]])
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
        "top_k": k,
        "top_k_accuracy": float((top == labels[:, None]).any(axis=1).mean()) if count else 0.0,
        "num_examples": int(count),
        "confusion_matrix": confusion.tolist(),
    }


def average_views(probabilities: np.ndarray, labels: np.ndarray, video_ids: np.ndarray) -> tuple:
    """Per-view softmax → per-video softmax (the mean over its views) and per-video labels.

    >>> probs, labels = average_views(np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]]), np.array([0, 0, 1]),
    ...                               np.array([0, 0, 1]))
    >>> probs.tolist(), labels.tolist()
    ([[0.5, 0.5], [0.2, 0.8]], [0, 1])
    """
    ids, index = np.unique(video_ids, return_inverse=True)
    sums = np.zeros((len(ids), probabilities.shape[1]))
    np.add.at(sums, index, probabilities)
    per_video_labels = np.zeros(len(ids), labels.dtype)
    per_video_labels[index] = labels
    return sums / np.bincount(index)[:, None], per_video_labels


def _predict_views(model, dataset) -> tuple:
    inputs = list(model.input)
    probabilities, labels, video_ids = [], [], []
    for features, batch_labels in fileio.progress(dataset, desc="evaluate", unit="batch"):
        outputs = model.predict_on_batch({k: features[k] for k in inputs})
        probabilities.append(np.asarray(outputs[names.CLASSES]))
        labels.append(batch_labels.numpy())
        video_ids.append(features[names.VIDEO_ID].numpy())
    return np.concatenate(probabilities), np.concatenate(labels), np.concatenate(video_ids)


def evaluate(workdir: str, split: Optional[str] = None, silence_audio: bool = False) -> dict:
    """Evaluates the run in `workdir` on `split` (default: the run's `eval.split`); writes and returns
    `workdir/metrics.json`, with top-k accuracy for the run's `eval.top_k`.

    Every video is scored by the mean softmax of its `eval.num_clips * eval.num_crops` views. With
    `silence_audio`, every video is evaluated as if it had no sound (and the metrics go to
    `metrics_silent.json`): how much the model still knows without its audio.
    """
    config, labels, model = workdir_lib.load_run(workdir)
    split = split or config.eval.split
    options = dataclasses.replace(
        pipeline.PipelineOptions.from_config(config, text.tokenizer_for_run(config, workdir)),
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
    logging.info(
        "%s on %s: accuracy %.3f, top-%d %.3f over %d videos (chance %.3f)",
        workdir, split, metrics["accuracy"], metrics["top_k"], metrics["top_k_accuracy"], metrics["num_examples"],
        1.0 / len(labels),
    )
    return metrics
