"""The log-mel spectrogram a model computes from a clip's audio: its parameters and its mel filterbank.

The input pipeline hands each clip's audio over as the window of waveform samples that plays with its
frames; the model's first audio layer (`models/audio_preprocessing.py`) turns it into a log-mel
spectrogram, as the first video layer resizes the frames. Runs trained before 0.4.0 took the log-mel as
their input and the pipeline computed it (`data/transforms.py`'s `log_mel_spectrogram`, kept for them).
Both compute the same features from the same parameters, through the filterbank here (NumPy: no
TensorFlow, so the models stay backend-neutral):

- frames of `window_ms` every `hop_ms`, a periodic Hann window, zero-padded to the next power of two
  (`fft_length`); only whole frames: `num_frames(samples) = 1 + (samples - window) // hop`;
- power spectrum → `mel_bins` triangular filters on the HTK mel scale (`1127 ln(1 + f / 700)`) between
  `fmin_hz` and `fmax_hz`, the DC bin left out: the matrix of `tf.signal.linear_to_mel_weight_matrix`;
- `log(mel + 1e-6)`.

Example:

>>> spec = LogMelSpec(sample_rate=16000, mel_bins=64, window_ms=25.0, hop_ms=10.0, fmin_hz=60.0, fmax_hz=7600.0)
>>> spec.window, spec.hop, spec.fft_length, spec.num_frames(32000), mel_matrix(spec).shape
(400, 160, 512, 198, (257, 64))
"""

import dataclasses

import numpy as np

LOG_OFFSET = 1e-6  # added to the mel energies before the log: silence gives log(1e-6), not -inf


@dataclasses.dataclass(frozen=True)
class LogMelSpec:
    """The log-mel features' parameters (the `mel_*` fields of `config.data` and the data's sample rate)."""

    sample_rate: int
    mel_bins: int
    window_ms: float
    hop_ms: float
    fmin_hz: float
    fmax_hz: float

    @property
    def window(self) -> int:
        """Samples per analysis frame."""
        return int(round(self.window_ms / 1000 * self.sample_rate))

    @property
    def hop(self) -> int:
        """Samples between the starts of two frames."""
        return int(round(self.hop_ms / 1000 * self.sample_rate))

    @property
    def fft_length(self) -> int:
        """The window's length rounded up to a power of two."""
        return 1 << (self.window - 1).bit_length()

    def num_frames(self, samples: int) -> int:
        """Time steps of the log-mel of `samples` samples (whole frames only)."""
        return 1 + (samples - self.window) // self.hop


def _hertz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(frequencies / 700.0)


def mel_matrix(spec: LogMelSpec) -> np.ndarray:
    """float32 `[fft_length // 2 + 1, mel_bins]`: power spectrum → mel energies (see the module docstring).

    >>> spec = LogMelSpec(sample_rate=8000, mel_bins=4, window_ms=8.0, hop_ms=4.0, fmin_hz=0.0, fmax_hz=4000.0)
    >>> weights = mel_matrix(spec)
    >>> weights.shape, float(weights[0].max()), bool((weights >= 0).all())  # the DC bin weighs nothing
    ((33, 4), 0.0, True)
    """
    bins = spec.fft_length // 2 + 1
    frequencies = np.linspace(0.0, spec.sample_rate / 2, bins)[1:]  # the DC bin is left out
    mels = _hertz_to_mel(frequencies)[:, None]
    edges = np.linspace(_hertz_to_mel(np.float64(spec.fmin_hz)), _hertz_to_mel(np.float64(spec.fmax_hz)),
                        spec.mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mels - lower) / (centre - lower)
    falling = (upper - mels) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, spec.mel_bins)), weights]).astype(np.float32)
