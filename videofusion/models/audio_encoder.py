"""Audio encoder: a small 2-D CNN over the log-mel spectrogram (time × mel), pooled to audio tokens.

Two Conv2D (3×3, ReLU, batch-normalised) + 2×2 max-pool stages treat the spectrogram as an image; the
mel axis is then folded into the channels and projected, leaving one token per 4 spectrogram steps
(40 ms at the default 10 ms hop).

Example:

>>> mel = keras.Input((158, 64))
>>> encode_audio(mel, dim=64).shape
(None, 39, 64)
"""

import keras

from videofusion.models.conv_blocks import conv_bn_relu


def encode_audio(mel, dim: int):
    """log-mel `[batch, time, mel_bins]` of the functional graph → tokens `[batch, time // 4, dim]`."""
    time_steps, mel_bins = mel.shape[1], mel.shape[2]
    x = keras.layers.Reshape((time_steps, mel_bins, 1), name="mel_image")(mel)
    for index, filters in enumerate((32, 64), start=1):
        x = conv_bn_relu(x, filters, index, prefix="audio_")
        x = keras.layers.MaxPooling2D(2, name=f"audio_pool{index}")(x)
    x = keras.layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="audio_tokens")(x)
    return keras.layers.Dense(dim, activation="relu", name="audio_projection")(x)
