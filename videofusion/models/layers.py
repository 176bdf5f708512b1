"""Small custom layers the functional models need; each round-trips through `get_config`.

Example:

>>> import numpy as np
>>> frames = np.arange(6, dtype="float32").reshape(1, 3, 2)
>>> keras.ops.convert_to_numpy(MiddleFrame()(frames, np.array([[1.0, 1.0, 1.0]]))).tolist()
[[2.0, 3.0]]
>>> keras.ops.convert_to_numpy(FrameDifferences()(np.array([[[1.0], [4.0], [6.0]]]))).tolist()
[[[1.0, 0.0], [4.0, 3.0], [6.0, 2.0]]]
"""

import keras
from keras import ops

_PACKAGE = "videofusion"


def clip_uniforms(seed_generator: keras.random.SeedGenerator, count: int, clips):
    """`[batch, count]` uniform numbers in [0, 1) for a batch of `clips` (any tensor `[batch, ...]` of
    their content), drawn from `seed_generator`: a model layer's training augmentation.

    The replicas of a distributed step (tf.distribute) share the seed generator and so draw the same
    numbers; each clip's numbers are therefore shifted, modulo 1, by a fraction taken from its own
    content. A fixed shift of a uniform number modulo 1 is still uniform, so the distribution is
    unchanged, and clips in the same place of different replicas' batches get different draws.

    >>> u = clip_uniforms(keras.random.SeedGenerator(0), 3, ops.zeros((2, 5)))
    >>> tuple(u.shape), bool(ops.all((u >= 0) & (u < 1)))
    ((2, 3), True)
    """
    u = keras.random.uniform((ops.shape(clips)[0], count), seed=seed_generator)
    shift = 1000.0 * ops.mean(ops.cast(clips, "float32"), axis=tuple(range(1, len(clips.shape))))
    return ops.mod(u + (shift - ops.floor(shift))[:, None], 1.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MiddleFrame(keras.layers.Layer):
    """`[batch, time, ...]` and a `[batch, time]` frame mask → `[batch, ...]`: the middle real frame."""

    def call(self, frames, frame_mask):
        middle = (ops.cast(ops.sum(frame_mask, axis=1), "int32") - 1) // 2
        positions = ops.arange(ops.shape(frames)[1])
        pick = ops.cast(ops.equal(positions[None, :], middle[:, None]), frames.dtype)
        for _ in range(len(frames.shape) - 2):
            pick = ops.expand_dims(pick, -1)
        return ops.sum(frames * pick, axis=1)

    def compute_output_shape(self, frames_shape, frame_mask_shape=None):
        return (frames_shape[0],) + tuple(frames_shape[2:])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FrameDifferences(keras.layers.Layer):
    """`[batch, time, ..., channels]` → `[..., 2 * channels]`: each frame with its change since the last.

    The "RGB difference" motion input of Temporal Segment Networks (Wang et al., 2016): where a shape
    moves, the difference is positive at its leading edge and negative at its trailing edge, a local
    pattern a small CNN picks up at any position. The first frame's difference is zero.
    """

    def call(self, frames):
        previous = ops.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        return ops.concatenate([frames, frames - previous], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * input_shape[-1],)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PerFrame(keras.layers.Wrapper):
    """Runs `layer` (a per-frame network) on every frame of `[batch, time, ...]` as one batch of
    batch × time frames → `[batch, time, ...]`.

    What `keras.layers.TimeDistributed` computes, but it unrolls a Python loop over a static time axis:
    one copy of the network per frame in the graph, each run on `batch` frames. Measured on the demo's
    CNN + LSTM model (4 frames, 48 px, TensorFlow on 2 CPU cores): the first training step (tracing)
    took 10.4 s with TimeDistributed and 6.3 s with this; later steps as fast (0.14 s). Batch
    normalisation inside sees all batch × time frames at once, as in TSN and TF Model Garden.
    """

    def build(self, input_shape):
        super().build((None, *input_shape[2:]))

    def call(self, inputs, training=None):
        time = inputs.shape[1] if inputs.shape[1] is not None else ops.shape(inputs)[1]
        outputs = self.layer(ops.reshape(inputs, (-1, *inputs.shape[2:])), training=training)
        return ops.reshape(outputs, (-1, time, *outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        per_frame = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *per_frame[1:])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding per position to `[batch, time, dim]` (time ≤ `max_length`)."""

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.max_length, input_shape[-1]), initializer="glorot_uniform", name="embeddings"
        )

    def call(self, tokens):
        return tokens + ops.cast(self.embeddings[None, : ops.shape(tokens)[1]], tokens.dtype)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnedTokens(keras.layers.Layer):
    """`count` learned tokens `[batch, count, dim]`, batched like its input (e.g. MBT's bottleneck)."""

    def __init__(self, count: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.count, self.dim = count, dim

    def build(self, input_shape):
        self.tokens = self.add_weight(shape=(self.count, self.dim), initializer="glorot_uniform", name="tokens")

    def call(self, like):
        return ops.broadcast_to(ops.cast(self.tokens, like.dtype)[None], (ops.shape(like)[0], self.count, self.dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count, self.dim)

    def get_config(self):
        return {**super().get_config(), "count": self.count, "dim": self.dim}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ModalityDropout(keras.layers.Layer):
    """In training, marks each modality absent with probability `rate`, never all of one example's.

    Takes and returns a list of `[batch, 1]` presence flags (1 present, 0 absent); the fusion gates
    each modality by its flag, so the model learns to predict from whatever is there — which is also
    what it must do at inference for a video without audio.
    """

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def call(self, presence, training=None):
        if not training or self.rate <= 0:
            return presence
        kept = [
            flag * ops.cast(keras.random.uniform(ops.shape(flag), seed=self._seed_generator) >= self.rate, flag.dtype)
            for flag in presence
        ]
        nothing_left = ops.cast(ops.sum(ops.concatenate(kept, axis=1), axis=1, keepdims=True) == 0, presence[0].dtype)
        return [k + nothing_left * flag for k, flag in zip(kept, presence)]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer encoder block: self-attention and a feed-forward net, both residual.

    `call(tokens, mask)` with `mask` `[batch, time]` (True for real tokens) keeps padding out of the
    attention; outputs at padded positions are not meaningful and must be masked by the caller.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.dropout = dim, num_heads, dropout
        self.norm1 = keras.layers.LayerNormalization(name="norm1")
        self.attention = keras.layers.MultiHeadAttention(num_heads, dim // num_heads, dropout=dropout, name="attention")
        self.norm2 = keras.layers.LayerNormalization(name="norm2")
        self.ffn1 = keras.layers.Dense(2 * dim, activation="gelu", name="ffn1")
        self.ffn2 = keras.layers.Dense(dim, name="ffn2")

    def build(self, tokens_shape, mask_shape=None):
        self.norm1.build(tokens_shape)
        self.attention.build(tokens_shape, tokens_shape)
        self.norm2.build(tokens_shape)
        self.ffn1.build(tokens_shape)
        self.ffn2.build(tuple(tokens_shape[:-1]) + (2 * self.dim,))

    def call(self, tokens, mask=None, training=None):
        attention_mask = None if mask is None else ops.logical_and(mask[:, :, None], mask[:, None, :])
        x = self.norm1(tokens)
        tokens = tokens + self.attention(x, x, attention_mask=attention_mask, training=training)
        return tokens + self.ffn2(self.ffn1(self.norm2(tokens)))

    def compute_output_shape(self, tokens_shape, mask_shape=None):
        return tokens_shape

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "dropout": self.dropout}
