"""Text encoder: caption token ids `[batch, length]` → (tokens `[batch, length, dim]`, mask).

keras-hub's `TokenAndPositionEmbedding` and `TransformerEncoder` (one block) over the WordPiece ids
that `data/caption_tokenizer.py` produces; id 0 is padding and is masked. A clip without a caption (all zeros) counts as
a missing text modality.

Example:

>>> ids = keras.Input((16,), dtype="int32")
>>> tokens, mask = encode_text(ids, vocabulary_size=100, dim=32, num_heads=4)
>>> tokens.shape
(None, 16, 32)
"""

import keras
import keras_hub


def encode_text(token_ids, vocabulary_size: int, dim: int, num_heads: int):
    """Embeds and encodes `token_ids`; returns (tokens, bool mask of real tokens)."""
    real = keras.ops.not_equal(token_ids, 0)
    x = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size, token_ids.shape[1], dim, name="text_embedding"
    )(token_ids)
    x = keras_hub.layers.TransformerEncoder(2 * dim, num_heads, name="text_encoder")(x, padding_mask=real)
    return x, real
