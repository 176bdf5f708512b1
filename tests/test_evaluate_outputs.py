"""`evaluate`'s report in `WORKDIR/eval/<split>/`: per-class precision / recall / F1 against values
worked out by hand, the files it writes, and (slow) the whole thing on a run trained for real."""

import json
import pathlib

import cv2
import numpy as np
import pytest

from videofusion.evaluation import evaluate

LABELS = ["a", "b", "c", "d", "e"]
# a: 3 videos, 2 right. b: 2 videos, never predicted. c: 2 videos, 1 right. d: no video, predicted once.
# e: no video, never predicted.
TRUE = np.array([0, 0, 0, 1, 1, 2, 2])
PREDICTED = np.array([0, 0, 2, 0, 2, 2, 3])
TOP_LEVEL_KEYS = {"accuracy", "top_k", "top_k_accuracy", "num_examples", "confusion_matrix", "split", "labels",
                  "views_per_video", "num_parameters", "silenced_audio"}


def _one_hot_scores(predicted, num_classes):
    """Softmax-like rows whose argmax is `predicted`, the other classes ranked by index."""
    scores = np.tile(np.linspace(0.1, 0.05, num_classes), (len(predicted), 1))
    scores[np.arange(len(predicted)), predicted] = 0.8
    return scores


def test_per_class_metrics_match_hand_computed_values():
    matrix = np.array(evaluate.classification_metrics(_one_hot_scores(PREDICTED, 5), TRUE, 5)["confusion_matrix"])
    assert matrix.tolist() == [[2, 0, 1, 0, 0], [1, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0] * 5, [0] * 5]
    report = evaluate.per_class_metrics(matrix, LABELS)
    expected = {  # (precision, recall, f1, support)
        "a": (2 / 3, 2 / 3, 2 / 3, 3),
        "b": (0.0, 0.0, 0.0, 2),  # never predicted: precision 0, not NaN
        "c": (1 / 3, 1 / 2, 2 / 5, 2),  # F1 = 2 · (1/3 · 1/2) / (1/3 + 1/2)
        "d": (0.0, 0.0, 0.0, 0),  # no video: recall 0; its one prediction is wrong: precision 0
        "e": (0.0, 0.0, 0.0, 0),
    }
    for label, (precision, recall, f1, support) in expected.items():
        got = report["per_class"][label]
        assert got["precision"] == pytest.approx(precision) and got["recall"] == pytest.approx(recall)
        assert got["f1"] == pytest.approx(f1) and got["support"] == support
    # Macro over a, b, c, d (in the labels or the predictions); e, in neither, does not count.
    assert report["macro_precision"] == pytest.approx((2 / 3 + 1 / 3) / 4)
    assert report["macro_recall"] == pytest.approx((2 / 3 + 1 / 2) / 4)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 5) / 4)
    json.dumps(report, allow_nan=False)  # no NaN anywhere


def test_empty_split_gives_zeros_not_nan():
    report = evaluate.per_class_metrics(np.zeros((2, 2), np.int64), ["a", "b"])
    assert report["macro_f1"] == 0.0 and report["per_class"]["a"] == dict(precision=0.0, recall=0.0, f1=0.0, support=0)
    assert evaluate.top_k_accuracy(np.zeros((0, 2)), np.zeros(0, np.int64), 1) == 0.0


def test_top_level_metrics_keep_their_keys():
    metrics = evaluate.classification_metrics(_one_hot_scores(PREDICTED, 5), TRUE, top_k=3)
    assert set(metrics) == {"accuracy", "top_k", "top_k_accuracy", "num_examples", "confusion_matrix"}
    assert metrics["accuracy"] == pytest.approx(3 / 7) and metrics["num_examples"] == 7


def _check_report_files(directory, metrics):
    """The three files of `directory` agree with the top-level `metrics`; returns the report."""
    report = json.load(open(directory / evaluate.CLASS_METRICS_FILE))
    assert report["top_1_accuracy"] == metrics["accuracy"] and report["top_k"] == metrics["top_k"]
    assert report["top_k_accuracy"] == metrics["top_k_accuracy"] and report["split"] == metrics["split"]
    assert report["num_examples"] == metrics["num_examples"] and report["views_per_video"] == metrics["views_per_video"]
    assert report["top_1_accuracy"] <= report["top_5_accuracy"] <= 1.0
    assert set(report["per_class"]) == set(metrics["labels"])
    assert sum(c["support"] for c in report["per_class"].values()) == metrics["num_examples"]
    matrix = json.load(open(directory / evaluate.CONFUSION_JSON_FILE))
    assert matrix == {"labels": list(metrics["labels"]), "matrix": metrics["confusion_matrix"]}
    assert np.sum(matrix["matrix"]) == metrics["num_examples"]
    image = cv2.imread(str(directory / evaluate.CONFUSION_PNG_FILE))
    assert image is not None and image.ndim == 3 and image.shape[2] == 3
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temporary file left
    return report


def test_write_report_writes_consistent_files(tmp_path):
    scores = _one_hot_scores(PREDICTED, 5)
    metrics = evaluate.classification_metrics(scores, TRUE, top_k=3)
    metrics.update(split="test", labels=LABELS, views_per_video=6, silenced_audio=False)
    returned = evaluate.write_report(str(tmp_path / "eval" / "test"), metrics, scores, TRUE)
    report = _check_report_files(tmp_path / "eval" / "test", metrics)
    assert report == returned and report["num_classes"] == 5
    # top-5 of 5 classes is certain; top-3 misses only the c video predicted d (ranked d, a, b).
    assert report["top_5_accuracy"] == 1.0 and report["top_k_accuracy"] == pytest.approx(6 / 7)


@pytest.mark.slow
def test_evaluate_writes_the_report_of_a_trained_run(smoke_run):
    workdir = pathlib.Path(smoke_run)
    returned = evaluate.evaluate(str(workdir), split="test")
    metrics = json.load(open(workdir / evaluate.METRICS_FILE))
    assert set(metrics) == TOP_LEVEL_KEYS and metrics == json.loads(json.dumps(returned))
    assert metrics["num_examples"] == 12 and metrics["split"] == "test"
    report = _check_report_files(workdir / "eval" / "test", metrics)
    assert report["silenced_audio"] is False

    silent = evaluate.evaluate(str(workdir), split="test", silence_audio=True)
    assert set(json.load(open(workdir / evaluate.SILENT_METRICS_FILE))) == TOP_LEVEL_KEYS
    assert _check_report_files(workdir / "eval" / "test_silent", silent)["silenced_audio"] is True
    assert json.load(open(workdir / evaluate.METRICS_FILE)) == metrics  # the normal metrics stay as they were
