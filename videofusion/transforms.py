"""Pure TensorFlow ops that turn decoded media into model inputs, shared by training and serving.

The input pipeline (`pipeline.py`) and the exported SavedModel (`export.py`) call the same functions
here, so a model sees exactly the same preprocessing in both places (no train/serve skew):

1. `clip_start` / `clip_indices`: which `num_frames` frames (every `stride`-th) form the clip; short
   videos loop;
2. `crop_and_resize`: a square crop of the short side, resized to `image_size`, scaled to [0, 1];
3. `audio_window`: the waveform samples that play while those frames are shown (same start, same
   duration), zero-padded past the end;
4. `log_mel_spectrogram`: the log-mel of that window.

Every op takes plain tensors and numbers and works on any leading batch dimensions.

Example:

>>> spec = ClipSpec(num_frames=4, stride=2, image_size=32, fps=10.0, sample_rate=16000)
>>> clip_indices(tf.constant(5), spec.num_frames, spec.stride, tf.constant(0)).numpy().tolist()
[0, 2, 4, 1]
>>> spec.audio_samples, log_mel_spectrogram(tf.zeros([spec.audio_samples]), spec).shape.as_list()
(12800, [78, 64])
"""

import dataclasses

import tensorflow as tf

from videofusion import names


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """What one clip is: frames, their size and rate, and the audio features cut to match."""

    num_frames: int
    stride: int
    image_size: int
    fps: float
    sample_rate: int
    mel_bins: int = 64
    mel_window_ms: float = 25.0
    mel_hop_ms: float = 10.0
    mel_fmin_hz: float = 60.0
    mel_fmax_hz: float = 7600.0

    @property
    def span(self) -> int:
        """Frames from the first to the last frame of a clip, both included."""
        return (self.num_frames - 1) * self.stride + 1

    @property
    def audio_samples(self) -> int:
        """Samples of audio that play while the clip's frames are shown."""
        return int(round(self.num_frames * self.stride / self.fps * self.sample_rate))

    @property
    def mel_window(self) -> int:
        return int(round(self.mel_window_ms / 1000 * self.sample_rate))

    @property
    def mel_hop(self) -> int:
        return int(round(self.mel_hop_ms / 1000 * self.sample_rate))

    @property
    def mel_frames(self) -> int:
        """Time steps of the log-mel of one clip's audio window."""
        return 1 + (self.audio_samples - self.mel_window) // self.mel_hop

    @classmethod
    def from_config(cls, data_config) -> "ClipSpec":
        """The spec of a `config.data` section (after `fps` and `sample_rate` were filled in)."""
        return cls(
            num_frames=data_config.num_frames,
            stride=data_config.stride,
            image_size=data_config.image_size,
            fps=data_config.fps,
            sample_rate=data_config.sample_rate,
            mel_bins=data_config.mel_bins,
        )


def clip_start(num_available: tf.Tensor, spec: ClipSpec, training: bool, seed=None) -> tf.Tensor:
    """The clip's first frame index: uniformly random in training, the centred clip otherwise."""
    max_start = tf.maximum(tf.cast(num_available, tf.int32) - spec.span, 0)
    if training:
        return tf.random.uniform([], 0, max_start + 1, dtype=tf.int32, seed=seed)
    return max_start // 2


def clip_indices(num_available: tf.Tensor, num_frames: int, stride: int, start: tf.Tensor) -> tf.Tensor:
    """`num_frames` indices from `start`, `stride` apart, looping over a video that is too short."""
    positions = tf.cast(start, tf.int32) + tf.range(num_frames, dtype=tf.int32) * stride
    return positions % tf.maximum(tf.cast(num_available, tf.int32), 1)


def crop_and_resize(frames: tf.Tensor, image_size: int, offset_y=0.5, offset_x=0.5) -> tf.Tensor:
    """uint8 frames `[..., height, width, 3]` → float32 `[..., image_size, image_size, 3]` in [0, 1].

    Takes the square of the short side whose position along the long side is given by the offsets
    (0 = top/left, 0.5 = centre, 1 = bottom/right), then resizes it with antialiasing.
    """
    shape = tf.shape(frames)
    height, width = shape[-3], shape[-2]
    side = tf.minimum(height, width)
    y0 = tf.cast(tf.cast(height - side, tf.float32) * offset_y, tf.int32)
    x0 = tf.cast(tf.cast(width - side, tf.float32) * offset_x, tf.int32)
    square = frames[..., y0 : y0 + side, x0 : x0 + side, :]
    flat = tf.reshape(tf.cast(square, tf.float32), [-1, side, side, 3])
    resized = tf.image.resize(flat, [image_size, image_size], antialias=True)
    out_shape = tf.concat([shape[:-3], [image_size, image_size, 3]], axis=0)
    return tf.clip_by_value(tf.reshape(resized, out_shape) / 255.0, 0.0, 1.0)


def audio_window(waveform: tf.Tensor, start_frame: tf.Tensor, spec: ClipSpec) -> tf.Tensor:
    """The `spec.audio_samples` samples `[..., samples]` that start with frame `start_frame`."""
    first = tf.cast(
        tf.round(tf.cast(start_frame, tf.float32) / spec.fps * spec.sample_rate), tf.int32
    )
    window = waveform[..., first : first + spec.audio_samples]
    missing = spec.audio_samples - tf.shape(window)[-1]
    rank = tf.rank(window)
    paddings = tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, missing]]], axis=0)
    padded = tf.pad(window, paddings)
    return tf.ensure_shape(padded, window.shape[:-1].concatenate([spec.audio_samples]))


def log_mel_spectrogram(waveform: tf.Tensor, spec: ClipSpec) -> tf.Tensor:
    """float32 waveform `[..., samples]` → log-mel `[..., spec.mel_frames, spec.mel_bins]`."""
    fft_length = 1 << (spec.mel_window - 1).bit_length()
    stft = tf.signal.stft(
        waveform, frame_length=spec.mel_window, frame_step=spec.mel_hop, fft_length=fft_length
    )
    power = tf.square(tf.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=spec.mel_bins,
        num_spectrogram_bins=fft_length // 2 + 1,
        sample_rate=spec.sample_rate,
        lower_edge_hertz=spec.mel_fmin_hz,
        upper_edge_hertz=spec.mel_fmax_hz,
    )
    mel = tf.tensordot(power, mel_matrix, axes=1)
    mel.set_shape(power.shape[:-1].concatenate([spec.mel_bins]))
    return tf.math.log(mel + 1e-6)


def clip_features(
    frames: tf.Tensor, waveform: tf.Tensor, start: tf.Tensor, spec: ClipSpec, crop_offset=(0.5, 0.5)
) -> dict:
    """A clip's decoded frames `[..., num_frames, h, w, 3]` (uint8) and full waveform → model inputs.

    `start` is the clip's first frame index (it places the audio window). With the default centred crop
    this is the evaluation path, and the exported model serves exactly it.
    """
    return {
        names.FRAMES: crop_and_resize(frames, spec.image_size, *crop_offset),
        names.MEL: log_mel_spectrogram(audio_window(waveform, start, spec), spec),
    }
