"""Cross-modal retrieval quality: for each query, is its own clip among the k nearest of the gallery?

Queries and gallery are the two modalities' embeddings of the same clips, row i of each the same
clip; nearness is the cosine. `recall_at_k` is the share of queries whose own clip ranks in the top
k (chance k / N for N clips). `pretrain` reports it on the val split every epoch, audio→video and
video→audio.

Example:

>>> import numpy as np
>>> audio = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
>>> video = np.array([[1.0, 0.05], [0.1, 1.0], [0.9, 0.3]])
>>> recall_at_k(audio, video, k=1), recall_at_k(audio, video, k=2)
(0.6667, 1.0)
"""

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
