"""Nearest embeddings by cosine similarity: exact search by matrix product, FAISS (IVF) for larger collections.

In: a collection of embeddings [n, d] (one row per video, as `videofusion embed` writes them) and queries
[q, d]. Out: for each query the k most similar rows, best first, as (cosine scores [q, k] float32,
row numbers [q, k] int64); equal scores are ordered by the lower row.

- `ExactIndex`: every query against every row (one matrix product per block of queries); exact.
- `FaissIndex`: FAISS `IndexIVFFlat` on the unit rows (inner product = cosine): k-means cells, `nprobe` of
  them searched per query; the scores of the rows it finds are exact, only rows in unsearched cells can be
  missed. Saved with `save(path)` next to the embeddings and reused with `FaissIndex.load(path)`. Needs the
  `faiss` extra: `pip install 'videofusion[faiss]'` (or `make install-search`).
- `build_index`: exact up to `EXACT_MAX_ROWS` rows, FAISS beyond.

The library and its parameters come from `benchmarks/ann_measurement.py` (its docstring has the table);
TensorFlow is not imported here.

>>> index = build_index(np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))
>>> scores, rows = index.search(np.array([[1.0, 0.1]]), k=2)
>>> rows.tolist(), np.round(scores.astype(float), 3).tolist()
([[0, 1]], [[0.995, 0.677]])
"""

import os

import numpy as np
from absl import logging

# The largest collection that `build_index(kind="auto")` searches exactly: one query against it stays
# under ~100 ms on the 2-core development machine. benchmarks/ann_measurement.py (64-d float32, one query
# at a time, p50 / p95 ms, machine shared): 10⁵ rows 8 / 8.5, 10⁶ 31 / 41, 2·10⁶ 65 / 97, 4·10⁶ 124 / 294.
EXACT_MAX_ROWS = 2_000_000
KINDS = ("auto", "exact", "ann")  # `build_index` kinds
# Scores of a block of queries against the whole collection are held at once: at most this many floats
# (64 MiB), so a million rows are searched 16 queries at a time.
_BLOCK_ELEMENTS = 1 << 24
_TRAIN_ROWS_PER_CELL = 64
_INSTALL_HINT = "pip install 'videofusion[faiss]' (or make install-search)"


def unit_rows(vectors) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 [n, d]; zero rows stay zero (no NaN).

    >>> unit_rows([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected vectors of shape [n, d], got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)


def _unit_queries(queries, dim: int) -> np.ndarray:
    """Queries [q, d] (or one query [d]) as unit float32 rows, checked against the collection's width."""
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise ValueError(f"expected queries of shape [q, {dim}] (the collection's width), got shape {queries.shape}")
    return unit_rows(queries)


def _check_k(k: int, n: int) -> int:
    """k, capped at the collection's size n."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return min(int(k), n)


def _stable_order(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's results sorted best first, equal scores by the lower row."""
    order = np.lexsort((rows, -scores), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(rows, order, -1)


def _top_k_block(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of each row of scores [b, n], best first, ties by the lower column.

    `np.argpartition` finds each query's k-th best score; every column at least that good is a candidate,
    so columns tied with the k-th best are all seen and the lower ones kept.
    """
    kth = np.partition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k]
    candidates = scores >= kth[:, None]
    counts = candidates.sum(axis=1)
    top_scores = np.empty((scores.shape[0], k), np.float32)
    top_rows = np.empty((scores.shape[0], k), np.int64)
    simple = counts == k
    if simple.any():
        # np.nonzero lists each query's columns in increasing order, so the stable sort keeps lower rows first.
        rows = np.nonzero(candidates[simple])[1].reshape(-1, k)
        top_scores[simple], top_rows[simple] = _stable_order(np.take_along_axis(scores[simple], rows, 1), rows)
    for i in np.flatnonzero(~simple):  # ties at the k-th score: more than k candidates
        rows = np.flatnonzero(candidates[i])
        order = np.argsort(-scores[i, rows], kind="stable")[:k]
        top_scores[i], top_rows[i] = scores[i, rows[order]], rows[order]
    return top_scores, top_rows


class ExactIndex:
    """Exact cosine search: a matrix product of the unit queries and the unit rows, then the top k.

    Args:
        vectors: the collection, [n, d]; normalised once, here.

    >>> index = ExactIndex(np.eye(3))
    >>> index.search(np.array([[0.0, 2.0, 1.0]]), k=5)[1].tolist()  # k > n: all 3 rows
    [[1, 2, 0]]
    """

    def __init__(self, vectors):
        self.vectors = unit_rows(vectors)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k rows most similar to each query.

        Args:
            queries: [q, d] (or one query, [d], answered as [1, k]).
            k: results per query; more than the collection holds gives all of it.

        Returns:
            (scores [q, k] float32 cosine similarities, rows [q, k] int64), best first, ties by the lower row.
        """
        queries = _unit_queries(queries, self.vectors.shape[1])
        k = _check_k(k, len(self))
        scores = np.empty((queries.shape[0], k), np.float32)
        rows = np.empty((queries.shape[0], k), np.int64)
        if k == 0:
            return scores, rows
        block = max(1, _BLOCK_ELEMENTS // len(self))
        for start in range(0, queries.shape[0], block):
            stop = start + block
            scores[start:stop], rows[start:stop] = _top_k_block(queries[start:stop] @ self.vectors.T, k)
        return scores, rows


def _import_faiss():
    """The faiss module, or an error that says how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(f"approximate search needs FAISS, which is not installed: {_INSTALL_HINT}") from error
    return faiss


def ivf_parameters(n: int) -> tuple[int, int]:
    """FAISS IVF cells and cells searched per query for n rows: (nlist, nprobe).

    nlist ≈ 4·√n (FAISS's guideline), at most n / 39 so k-means has 39 rows a cell to train on. nprobe:
    1/128 of the cells, and at least the cells that hold about 4,096 rows, since small collections have few
    rows a cluster and their neighbours spread over more cells. Measured (benchmarks/ann_measurement.py):
    recall@10 0.98 at 10⁴ rows (256 cells, 105 searched; 52 give 0.94), 1.0 at 10⁵ (1265, 52) and 10⁶
    (4000, 31).

    >>> ivf_parameters(10_000), ivf_parameters(100_000), ivf_parameters(1_000_000)
    ((256, 105), (1265, 52), (4000, 31))
    """
    nlist = max(1, min(round(4 * n**0.5), n // 39))
    return nlist, min(nlist, max(nlist // 128, -(-4096 * nlist // n)))


class FaissIndex:
    """Approximate cosine search with FAISS `IndexIVFFlat` over the unit rows (inner product).

    Args:
        vectors: the collection, [n, d]; normalised, clustered into cells and added here.
        nlist, nprobe: cells, and cells searched per query; `ivf_parameters(n)` by default.
        seed: of the k-means clustering.

    >>> vectors = np.random.default_rng(0).normal(size=(500, 8))
    >>> FaissIndex(vectors).search(vectors[:2], k=1)[1].tolist()
    [[0], [1]]
    """

    def __init__(self, vectors, nlist: int | None = None, nprobe: int | None = None, seed: int = 0, *, _index=None):
        faiss = _import_faiss()
        if _index is not None:  # load()
            self.index = _index
            return
        vectors = unit_rows(vectors)
        default_nlist, default_nprobe = ivf_parameters(len(vectors))
        nlist = nlist or default_nlist
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        self.index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.seed = seed
        # k-means on 64 rows a cell (FAISS samples 256 by default): 10⁶ rows build in a third of the time.
        self.index.cp.max_points_per_centroid = _TRAIN_ROWS_PER_CELL
        self.index.train(vectors)
        self.index.add(vectors)
        self.index.nprobe = min(nlist, nprobe or default_nprobe)
        logging.info("FAISS IVF index: %d rows, nlist %d, nprobe %d", len(vectors), nlist, self.index.nprobe)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """As `ExactIndex.search`; a query whose searched cells hold fewer than k rows searches more cells."""
        faiss = _import_faiss()
        queries = _unit_queries(queries, self.index.d)
        k = _check_k(k, len(self))
        if k == 0:
            return np.empty((queries.shape[0], 0), np.float32), np.empty((queries.shape[0], 0), np.int64)
        scores, rows = self.index.search(queries, k)
        nprobe = self.index.nprobe
        short = np.flatnonzero((rows < 0).any(axis=1))
        while short.size and nprobe < self.index.nlist:
            nprobe = min(self.index.nlist, 2 * nprobe)
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            scores[short], rows[short] = self.index.search(queries[short], k, params=params)
            short = short[(rows[short] < 0).any(axis=1)]
        return _stable_order(scores.astype(np.float32), rows.astype(np.int64))

    def save(self, path: str) -> None:
        """Writes the index (FAISS's own format, nprobe included) to path: a temporary file, then a rename."""
        faiss = _import_faiss()
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            faiss.write_index(self.index, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as error:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise OSError(f"cannot write the FAISS index to {path}: {error}") from error

    @classmethod
    def load(cls, path: str) -> "FaissIndex":
        """An index that `save` wrote."""
        faiss = _import_faiss()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no FAISS index at {path}: build one with build_index(..., kind='ann').save()")
        try:
            index = faiss.read_index(path)
        except RuntimeError as error:
            raise ValueError(f"{path} is not a FAISS index written by FaissIndex.save: {error}") from error
        if not isinstance(index, faiss.IndexIVFFlat):
            raise ValueError(f"{path} holds a FAISS {type(index).__name__}, not the IndexIVFFlat FaissIndex writes")
        return cls(None, _index=index)


def build_index(vectors, kind: str = "auto", exact_max_rows: int = EXACT_MAX_ROWS) -> ExactIndex | FaissIndex:
    """An index over vectors [n, d]: `exact`, `ann` (FAISS), or `auto` (exact up to exact_max_rows rows).

    >>> type(build_index(np.ones((3, 2)))).__name__
    'ExactIndex'
    """
    if resolve_kind(kind, np.shape(vectors)[0], exact_max_rows) == "exact":
        return ExactIndex(vectors)
    return FaissIndex(vectors)


def resolve_kind(kind: str, rows: int, exact_max_rows: int = EXACT_MAX_ROWS) -> str:
    """`exact` or `ann`: what `kind` (one of `KINDS`) means for a collection of `rows` vectors.

    >>> resolve_kind("auto", 1000), resolve_kind("auto", EXACT_MAX_ROWS + 1), resolve_kind("ann", 10)
    ('exact', 'ann', 'ann')
    """
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}: expected 'auto', 'exact' or 'ann'")
    if kind == "auto":
        return "exact" if rows <= exact_max_rows else "ann"
    return kind
