"""The reference article's worked examples, recomputed (see docs/from-the-article.md).

The article (its 数学模型和公式 section) gets several worked numbers wrong. These tests
pin the corrected numbers that docs/from-the-article.md shows, and check them against the Keras layers
the models actually use:

- attention: the article's 3×3 Q, K, V example through `keras.layers.MultiHeadAttention` (one head,
  identity projections, no biases) equals softmax(QKᵀ/√d_k)·V, not the article's softmax(QKᵀ/√d_k) / V;
- RNN: tanh of the article's pre-activations [2, 3, 4] is not the article's [-0.761594, 0.531740, 0.900378];
- CNN: `keras.layers.Conv2D` computes cross-correlation, not the flipped-kernel convolution the article
  writes, and a 2×2 max-pool of a 3×3 map (Keras defaults) is 1×1.
"""

import keras
import numpy as np

# The article's example (数学模型和公式 → 变压器（Transformer） → 举例说明), d_k = 3.
Q = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32)
K = np.array([[1, 0, 2], [3, 4, 5], [6, 7, 8]], dtype=np.float32)
V = np.array([[9, 8, 7], [6, 5, 4], [3, 2, 1]], dtype=np.float32)

# The numbers docs/from-the-article.md shows (rounded to 3 decimals).
DOC_QKT = np.array([[7, 26, 44], [16, 62, 107], [25, 98, 170]])
DOC_WEIGHTS = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
DOC_OUTPUT = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
ARTICLE_QKT = np.array([[11, 22, 33], [16, 30, 44], [23, 38, 55]])
ARTICLE_WEIGHTS = np.array([[0.368, 0.576, 0.056], [0.234, 0.391, 0.375], [0.164, 0.256, 0.579]])
ARTICLE_OUTPUT = np.array([4.208, 3.496, 2.295])


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def attention_weights(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    return softmax_rows(q.astype(np.float64) @ k.T.astype(np.float64) / np.sqrt(q.shape[-1]))


def numpy_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(QKᵀ/√d_k)·V."""
    return attention_weights(q, k) @ v.astype(np.float64)


def identity_attention() -> keras.layers.MultiHeadAttention:
    """One-head MultiHeadAttention over 3-d tokens whose four projections are the identity."""
    layer = keras.layers.MultiHeadAttention(num_heads=1, key_dim=3, use_bias=False)
    layer(np.zeros((1, 3, 3), np.float32), np.zeros((1, 3, 3), np.float32), np.zeros((1, 3, 3), np.float32))
    shapes = sorted(tuple(w.shape) for w in layer.weights)
    assert shapes == [(1, 3, 3), (3, 1, 3), (3, 1, 3), (3, 1, 3)], shapes  # query/key/value, output; no biases
    for weight in layer.weights:
        weight.assign(np.eye(3, dtype=np.float32).reshape(weight.shape))
    return layer


def test_multi_head_attention_is_softmax_times_v():
    layer = identity_attention()
    out = layer(Q[None], V[None], key=K[None])  # query, value, key
    out = keras.ops.convert_to_numpy(out)[0]
    np.testing.assert_allclose(out, numpy_attention(Q, K, V), atol=1e-5)
    np.testing.assert_allclose(out, DOC_OUTPUT, atol=1e-3)


def test_doc_numbers():
    np.testing.assert_array_equal(Q @ K.T, DOC_QKT)
    np.testing.assert_allclose(attention_weights(Q, K), DOC_WEIGHTS, atol=1e-3)
    np.testing.assert_allclose(numpy_attention(Q, K, V), DOC_OUTPUT, atol=1e-3)
    # Unrounded, the first row still gives key 2 a little weight (3.07e-5), hence 3.000092…
    np.testing.assert_allclose(attention_weights(Q, K)[0, 1], 3.067e-5, rtol=1e-3)


def test_article_score_matrix_is_no_product_of_q_and_k():
    # The article writes Qᵀ·Kᵀ (its two factors are Qᵀ and Kᵀ), but its result is neither that nor QKᵀ.
    np.testing.assert_array_equal(Q.T @ K.T, [[15, 54, 90], [18, 66, 111], [21, 78, 132]])
    for a in (Q, Q.T):
        for b in (K, K.T):
            assert not np.array_equal(a @ b, ARTICLE_QKT)
            assert not np.array_equal(b @ a, ARTICLE_QKT)
    # Its weights do not follow from its own scores either: softmax keeps the order of each row's scores,
    # yet the article gives the largest score (33) the smallest weight (0.056).
    np.testing.assert_allclose(
        softmax_rows(ARTICLE_QKT / np.sqrt(3)), [[0.0, 0.002, 0.998], [0, 0, 1], [0, 0, 1]], atol=1e-3
    )
    assert not np.allclose(ARTICLE_WEIGHTS, softmax_rows(ARTICLE_QKT / np.sqrt(3)), atol=0.05)
    # Its final answer is a 3-vector; attention of three 3-d queries is 3×3.
    assert ARTICLE_OUTPUT.shape != numpy_attention(Q, K, V).shape


def test_article_division_by_v_is_not_attention():
    weights = attention_weights(Q, K)
    # "÷ V" as a matrix (weights · V⁻¹) does not exist: this V is singular.
    assert abs(np.linalg.det(V.astype(np.float64))) < 1e-9
    assert np.linalg.matrix_rank(V) == 2
    # "÷ V" element-wise gives something else entirely.
    assert not np.allclose(weights / V, DOC_OUTPUT, atol=1e-3)
    np.testing.assert_allclose(weights / V, [[0, 0, 1 / 7], [0, 0, 1 / 4], [0, 0, 1]], atol=1e-3)


def test_rnn_tanh_values():
    article = np.array([-0.761594, 0.531740, 0.900378])
    correct = np.tanh([2.0, 3.0, 4.0])
    np.testing.assert_allclose(correct, [0.964, 0.995, 0.999], atol=1e-3)
    assert not np.allclose(correct, article, atol=1e-3)
    assert (correct > 0).all() and (article[0] < 0)  # tanh of a positive number is never negative
    np.testing.assert_allclose(np.tanh(-1.0), article[0], atol=1e-6)  # its first value is tanh(−1)


def test_rnn_consistent_example():
    """x = [1, 2, 3] as a sequence of scalars, scalar h, W_h = [1, 1] on [h_{t-1}, x_t], b_h = 1."""
    w_h, b_h, h = np.array([1.0, 1.0]), 1.0, 0.0
    states = []
    for x_t in (1.0, 2.0, 3.0):
        h = np.tanh(w_h @ np.array([h, x_t]) + b_h)
        states.append(h)
    np.testing.assert_allclose(states, [0.964, 0.999, 1.000], atol=1e-3)
    np.testing.assert_allclose(states[1], np.tanh(3 + np.tanh(2.0)), atol=1e-12)
    # Same recurrence as keras.layers.SimpleRNN (h_t = tanh(x_t W + h_{t-1} U + b)).
    rnn = keras.layers.SimpleRNN(1, return_sequences=True)
    rnn(np.zeros((1, 3, 1), np.float32))
    rnn.set_weights([np.ones((1, 1)), np.ones((1, 1)), np.ones((1,))])  # W (x), U (h), b
    out = keras.ops.convert_to_numpy(rnn(np.array([[[1.0], [2.0], [3.0]]], np.float32)))
    np.testing.assert_allclose(out[0, :, 0], states, atol=1e-5)


def test_conv2d_is_cross_correlation_and_pooling_shape():
    image = np.arange(25, dtype=np.float32).reshape(5, 5)
    kernel = np.array([[1, 0, 0], [0, 0, 0], [0, 0, -1]], dtype=np.float32)  # not symmetric under 180°
    conv = keras.layers.Conv2D(1, 3, use_bias=False)
    conv(np.zeros((1, 5, 5, 1), np.float32))
    conv.set_weights([kernel[:, :, None, None]])
    out = keras.ops.convert_to_numpy(conv(image[None, :, :, None]))[0, :, :, 0]
    windows = np.lib.stride_tricks.sliding_window_view(image, (3, 3))
    correlation = (windows * kernel).sum(axis=(-1, -2))  # Σ_y f(x+y) g(y)
    convolution = (windows * kernel[::-1, ::-1]).sum(axis=(-1, -2))  # Σ_y f(y) g(x−y)
    np.testing.assert_allclose(out, correlation, atol=1e-5)
    np.testing.assert_allclose(out, -12.0, atol=1e-5)
    np.testing.assert_allclose(convolution, 12.0, atol=1e-5)
    # 2×2 max-pool (stride 2, "valid" — the Keras defaults) of a 3×3 map: one value; "same" gives 2×2.
    feature_map = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    assert keras.layers.MaxPooling2D(2)(feature_map).shape == (1, 1, 1, 1)
    same = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(2, padding="same")(feature_map))
    np.testing.assert_array_equal(same[0, :, :, 0], [[4, 5], [7, 8]])
