"""Prediction results: a video's top-k labels as a JSON object, and files of them as JSON lines —
shared by `predict` (SavedModel), `litert_predict` (LiteRT, no TensorFlow) and the Beam runner.

Example:

>>> top_k_result("a.mp4", np.array([0.2, 0.7, 0.1]), ["x", "y", "z"], 1)
{'path': 'a.mp4', 'top_k': [{'label': 'y', 'score': 0.7}]}
"""

import json
from typing import Iterable, Iterator, List

import numpy as np

from videofusion import fileio


def top_k_result(path: str, probabilities: np.ndarray, labels: List[str], top_k: int) -> dict:
    """`{"path", "top_k": [{"label", "score"}...]}`: the `top_k` best of a video's probabilities.

    >>> top_k_result("a.mp4", np.array([0.2, 0.7, 0.1]), ["x", "y", "z"], 2)
    {'path': 'a.mp4', 'top_k': [{'label': 'y', 'score': 0.7}, {'label': 'x', 'score': 0.2}]}
    """
    best = np.argsort(-probabilities, kind="stable")[:top_k]
    return {"path": path, "top_k": [{"label": labels[i], "score": round(float(probabilities[i]), 6)} for i in best]}


def write_results(results: Iterable[dict], output: str) -> None:
    """Writes `results` to `output` as JSON lines, one per video in order, under a temporary name until done.

    >>> write_results(predict.predict("exports/demo/1", ["a.mp4", "b.mp4"]), "predictions.jsonl")  # doctest: +SKIP
    """
    with fileio.atomic_open(output, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(result, ensure_ascii=False) + "\n" for result in results)


def read_results(path: str) -> Iterator[dict]:
    """The results of a file that `write_results` wrote, in order."""
    with fileio.open_file(path, encoding="utf-8") as f:
        yield from (json.loads(line) for line in f if line.strip())
