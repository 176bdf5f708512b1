"""Tests of videofusion/serving/vector_index.py: exact search against a brute-force reference, FAISS against exact."""

import os

import numpy as np
import pytest

from videofusion.serving import vector_index


def _reference(vectors, queries, k):
    """Brute force: cosine of every pair (float64), sorted best first, ties by the lower row."""
    vectors = np.asarray(vectors, np.float64)
    queries = np.asarray(queries, np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    unit_queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    scores = unit_queries @ unit.T
    rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, rows, 1), rows


def _clustered(n, dim=64, num_centres=200, seed=0):
    """Unit rows of a Gaussian mixture, as embeddings cluster: (collection [n, dim], queries [50, dim])."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_centres, dim))
    points = centres[rng.integers(num_centres, size=n + 50)] + 0.5 * rng.standard_normal((n + 50, dim))
    return points[:n].astype(np.float32), points[n:].astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    return _clustered(20_000)


@pytest.fixture(scope="module")
def faiss_index(clustered):
    pytest.importorskip("faiss", reason="the faiss extra: pip install 'videofusion[faiss]'")
    return vector_index.FaissIndex(clustered[0])


def _recall_at_10(found_rows, true_rows):
    return np.mean([len(np.intersect1d(f, t)) / 10 for f, t in zip(found_rows, true_rows)])


def test_exact_matches_brute_force_order_and_scores():
    rng = np.random.default_rng(1)
    vectors, queries = rng.standard_normal((3000, 16)), rng.standard_normal((40, 16))
    scores, rows = vector_index.ExactIndex(vectors).search(queries, k=7)
    want_scores, want_rows = _reference(vectors, queries, 7)
    assert scores.dtype == np.float32 and rows.dtype == np.int64 and rows.shape == (40, 7)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_exact_blocks_of_queries_agree_with_one_at_a_time(monkeypatch):
    rng = np.random.default_rng(2)
    vectors, queries = rng.standard_normal((500, 8)), rng.standard_normal((23, 8))
    index = vector_index.ExactIndex(vectors)
    whole = index.search(queries, k=5)
    monkeypatch.setattr(vector_index, "_BLOCK_ELEMENTS", 500 * 4)  # blocks of 4 queries, the last one of 3
    blocked = index.search(queries, k=5)
    np.testing.assert_array_equal(blocked[1], whole[1])
    np.testing.assert_array_equal(blocked[0], whole[0])


def test_exact_ties_go_to_the_lower_row():
    # Rows 1, 3, 4 and 6 are the same direction; the best 3 of them are the lowest three, in order.
    vectors = np.array([[0, 1], [1, 0], [0, 1], [2, 0], [3, 0], [-1, 0], [1, 0]], np.float32)
    scores, rows = vector_index.ExactIndex(vectors).search(np.array([[1.0, 0.0]]), k=3)
    assert rows.tolist() == [[1, 3, 4]]
    np.testing.assert_allclose(scores, [[1, 1, 1]])
    _, rows = vector_index.ExactIndex(vectors).search(np.array([[1.0, 0.0]]), k=5)
    assert rows.tolist() == [[1, 3, 4, 6, 0]]


def test_exact_k_larger_than_collection_returns_all_rows():
    vectors = np.random.default_rng(3).standard_normal((4, 3))
    scores, rows = vector_index.ExactIndex(vectors).search(vectors[:2], k=10)
    assert rows.shape == scores.shape == (2, 4)
    assert sorted(rows[0].tolist()) == [0, 1, 2, 3] and rows[:, 0].tolist() == [0, 1]
    np.testing.assert_array_equal(rows, _reference(vectors, vectors[:2], 4)[1])


def test_zero_vectors_score_zero_not_nan():
    vectors = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    index = vector_index.ExactIndex(vectors)
    assert not np.isnan(index.vectors).any()
    scores, rows = index.search(np.array([[1.0, 0.0]]), k=4)
    assert rows.tolist() == [[1, 0, 2, 3]] and scores.tolist() == [[1.0, 0.0, 0.0, -1.0]]
    scores, rows = index.search(np.zeros((1, 2)), k=4)  # a zero query: every score 0, rows in order
    assert rows.tolist() == [[0, 1, 2, 3]] and scores.tolist() == [[0.0] * 4]


def test_single_query_vector_is_one_query():
    vectors = np.random.default_rng(4).standard_normal((50, 6))
    one = vector_index.ExactIndex(vectors).search(vectors[7], k=3)
    batch = vector_index.ExactIndex(vectors).search(vectors[7:8], k=3)
    assert one[1].shape == (1, 3) and one[1][0, 0] == 7
    np.testing.assert_array_equal(one[1], batch[1])


def test_bad_arguments_say_what_is_wrong():
    index = vector_index.ExactIndex(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"\[q, 4\]"):
        index.search(np.ones((2, 5)), k=1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search(np.ones((2, 4)), k=0)
    with pytest.raises(ValueError, match="unknown index kind 'hnsw'"):
        vector_index.build_index(np.ones((3, 4)), kind="hnsw")


def test_faiss_recall_at_10_against_exact(clustered, faiss_index):
    vectors, queries = clustered
    true_scores, true_rows = vector_index.ExactIndex(vectors).search(queries, k=10)
    scores, rows = faiss_index.search(queries, k=10)
    assert rows.dtype == np.int64 and scores.dtype == np.float32 and rows.shape == (50, 10)
    assert _recall_at_10(rows, true_rows) >= 0.95
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
    # The scores of the rows it finds are exact cosines.
    found = vector_index.unit_rows(vectors)[rows] @ vector_index.unit_rows(queries)[:, :, None]
    np.testing.assert_allclose(scores, found[..., 0], atol=1e-5)


def test_faiss_k_larger_than_collection_and_few_cells_searched():
    pytest.importorskip("faiss")
    vectors, _ = _clustered(400, dim=8, num_centres=10)
    index = vector_index.FaissIndex(vectors, nlist=10, nprobe=1)
    scores, rows = index.search(vectors[:3], k=1000)  # one cell holds fewer than 400: it searches more
    assert rows.shape == (3, 400) and (rows >= 0).all()
    np.testing.assert_array_equal(np.sort(rows, axis=1), np.tile(np.arange(400), (3, 1)))
    np.testing.assert_array_equal(rows, vector_index.ExactIndex(vectors).search(vectors[:3], k=400)[1])


def test_faiss_save_load_round_trip(tmp_path, clustered, faiss_index):
    path = str(tmp_path / "fused.faiss")
    faiss_index.save(path)
    assert os.listdir(tmp_path) == ["fused.faiss"]  # no temporary file left behind
    loaded = vector_index.FaissIndex.load(path)
    assert len(loaded) == len(faiss_index) and loaded.index.nprobe == faiss_index.index.nprobe
    for got, want in zip(loaded.search(clustered[1], k=10), faiss_index.search(clustered[1], k=10)):
        np.testing.assert_array_equal(got, want)


def test_faiss_load_errors_name_the_file(tmp_path):
    pytest.importorskip("faiss")
    with pytest.raises(FileNotFoundError, match="missing.faiss"):
        vector_index.FaissIndex.load(str(tmp_path / "missing.faiss"))
    (tmp_path / "junk.faiss").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="junk.faiss"):
        vector_index.FaissIndex.load(str(tmp_path / "junk.faiss"))


def test_build_index_auto_picks_exact_up_to_the_threshold():
    pytest.importorskip("faiss")
    vectors, _ = _clustered(2000, dim=8, num_centres=20)
    assert isinstance(vector_index.build_index(vectors, exact_max_rows=2000), vector_index.ExactIndex)
    assert isinstance(vector_index.build_index(vectors, exact_max_rows=1999), vector_index.FaissIndex)
    assert isinstance(vector_index.build_index(vectors, kind="exact", exact_max_rows=10), vector_index.ExactIndex)
    assert isinstance(vector_index.build_index(vectors, kind="ann"), vector_index.FaissIndex)
    assert vector_index.EXACT_MAX_ROWS >= 100_000


def test_without_faiss_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # as if not installed: import raises
    with pytest.raises(ImportError, match=r"pip install 'videofusion\[faiss\]'.*make install-search"):
        vector_index.build_index(np.ones((3, 4)), kind="ann")
    assert isinstance(vector_index.build_index(np.ones((3, 4))), vector_index.ExactIndex)  # exact needs no FAISS
