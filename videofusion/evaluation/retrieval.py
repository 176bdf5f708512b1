"""Retrieval quality, nearness being the cosine of embeddings.

- Instance retrieval (`recall_at_k`): queries and gallery are two modalities' embeddings of the same
  clips, row i of each the same clip; the share of queries whose own clip ranks in the top k (chance
  k / N for N clips). `pretrain` reports it on the val split every epoch, audio→video and video→audio.
- Class retrieval (`class_retrieval`): queries (test videos) against a gallery (the training
  collection), a gallery video relevant when it has the query's label: recall@k, the share of queries
  with a relevant video among their k nearest, and mAP, the mean over queries of the average precision
  of the whole ranking; with the expected value of each under a random ranking (`chance`).

Example:

>>> import numpy as np
>>> audio = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
>>> video = np.array([[1.0, 0.05], [0.1, 1.0], [0.9, 0.3]])
>>> recall_at_k(audio, video, k=1), recall_at_k(audio, video, k=2)
(0.6667, 1.0)
>>> figures = class_retrieval(audio, ["a", "b", "b"], video, ["a", "b", "b"], ks=(1,))
>>> figures["recall_at_1"], figures["map"]
(0.6667, 0.8611)
"""

import math
from typing import Dict, Sequence

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, k: int) -> float:
    """Share (rounded to 4 places) of `queries[i]` whose `gallery[i]` is among its `k` most cosine-similar
    gallery rows; a tie with the own row counts against it."""
    similarity = _unit(queries) @ _unit(gallery).T
    own = np.diagonal(similarity)[:, np.newaxis]
    better = (similarity > own).sum(axis=1) + ((similarity == own).sum(axis=1) - 1)
    return round(float(np.mean(better < k)), 4)


def _average_precision(relevant: np.ndarray) -> np.ndarray:
    """`[queries, N]` 0/1 relevance in ranked order → each query's average precision (0 with none relevant)."""
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    total = relevant.sum(axis=1)
    return np.divide((precision * relevant).sum(axis=1), total, out=np.zeros(len(total)), where=total > 0)


def _chance(relevant_counts: np.ndarray, size: int, ks: Sequence[int]) -> Dict[str, float]:
    """Expected recall@k and average precision of a random ranking of `size` items with `relevant_counts`
    relevant: recall@k = 1 − C(N−R, k) / C(N, k); AP = H_N / N + (R − 1)(N − H_N) / (N (N − 1))."""
    n = size
    harmonic = sum(1.0 / i for i in range(1, n + 1))
    figures = {}
    for k in ks:
        misses = [math.comb(n - r, k) / math.comb(n, k) if n - r >= k else 0.0 for r in relevant_counts]
        figures[f"recall_at_{k}"] = 1.0 - float(np.mean(misses))
    ap = [harmonic / n + (r - 1) * (n - harmonic) / (n * (n - 1)) if n > 1 else 1.0 for r in relevant_counts]
    figures["map"] = float(np.mean(ap))
    return figures


def class_retrieval(queries: np.ndarray, query_labels: Sequence, gallery: np.ndarray, gallery_labels: Sequence,
                    ks: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """recall@k for `ks`, mAP and their chance values (`chance_recall_at_k`, `chance_map`), rounded to 4
    places, over the queries that have a relevant gallery video (same label); `queries` counts them.

    Ties in cosine rank the lower gallery row first.
    """
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    relevant_counts = (query_labels[:, None] == gallery_labels[None, :]).sum(axis=1)
    kept = relevant_counts > 0
    similarity = _unit(queries[kept]) @ _unit(gallery).T
    order = np.argsort(-similarity, axis=1, kind="stable")
    relevant = (gallery_labels[order] == query_labels[kept][:, None]).astype(np.float64)
    figures = {f"recall_at_{k}": float(relevant[:, :k].any(axis=1).mean()) for k in ks}
    figures["map"] = float(_average_precision(relevant).mean())
    figures.update({f"chance_{key}": value for key, value in _chance(relevant_counts[kept], len(gallery), ks).items()})
    return {**{key: round(value, 4) for key, value in figures.items()}, "queries": int(kept.sum())}

