"""Pure TensorFlow ops that turn decoded media into model inputs, shared by training and serving.

The input pipeline (`pipeline.py`) and the exported SavedModel (`export.py`) call the same functions
here, so a model sees exactly the same preprocessing in both places (no train/serve skew):

1. `clip_indices`: which `num_frames` frames (every `stride`-th, from a start frame) form a clip; a video
   that is too short loops, or is padded (frame index clamped, `frame_mask` 0) with `pad_short_videos`;
2. `square_crop`: the square of the short side at a place along the long side, as uint8 of
   `frame_size` (the data's short side; the model's first layer resizes and scales it, see
   `models/frame_preprocessing.py`);
3. `audio_window`: the waveform samples that play while those frames are shown (same start, same
   duration; past the video's end looped or zero-padded as the frames are), handed to the model,
   whose first audio layer computes their log-mel (`models/audio_preprocessing.py`);
   `log_mel_spectrogram` computes the same features here for runs trained before 0.4.0, which take
   the log-mel as their input;
4. `eval_views`: `num_clips` evenly spaced clips × `num_crops` crops of one video, the evaluation and
   serving protocol (their softmax is averaged).

Every op takes plain tensors and numbers; training-only randomness lives in `augment.py`.

Example:

>>> spec = ClipSpec(num_frames=4, stride=2, image_size=32, fps=10.0, sample_rate=16000)
>>> indices, mask = clip_indices(tf.constant(5), spec, tf.constant(0))
>>> indices.numpy().tolist(), mask.numpy().tolist()
([0, 2, 4, 1], [1.0, 1.0, 1.0, 1.0])
>>> spec.audio_samples, spec.mel_frames, log_mel_spectrogram(tf.zeros([spec.audio_samples]), spec).shape.as_list()
(12800, 78, [78, 64])
"""

import dataclasses

import tensorflow as tf

from videofusion import config
from videofusion.contract import log_mel, tensors


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """What one clip is: frames, their size and rate, and the audio features cut to match."""

    num_frames: int
    stride: int
    image_size: int
    fps: float
    sample_rate: int
    mel_bins: int = 64
    mel_window_ms: float = config.MEL_WINDOW_MS
    mel_hop_ms: float = config.MEL_HOP_MS
    mel_fmin_hz: float = config.MEL_FMIN_HZ
    mel_fmax_hz: float = config.MEL_FMAX_HZ
    pad_short_videos: bool = False
    frame_size: int = 0  # side of the uint8 squares handed to the model (0: image_size)

    def __post_init__(self):
        if not self.frame_size:
            object.__setattr__(self, "frame_size", self.image_size)

    @property
    def audio_samples(self) -> int:
        """Samples of audio that play while the clip's frames are shown."""
        return int(round(self.num_frames * self.stride / self.fps * self.sample_rate))

    @property
    def log_mel(self) -> log_mel.LogMelSpec:
        """The parameters of the log-mel features the model computes from the audio window."""
        return log_mel.LogMelSpec(self.sample_rate, self.mel_bins, self.mel_window_ms, self.mel_hop_ms,
                                  self.mel_fmin_hz, self.mel_fmax_hz)

    @property
    def mel_frames(self) -> int:
        """Time steps of the log-mel of one clip's audio window."""
        return self.log_mel.num_frames(self.audio_samples)

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
            mel_window_ms=data_config.mel_window_ms,
            mel_hop_ms=data_config.mel_hop_ms,
            mel_fmin_hz=data_config.mel_fmin_hz,
            mel_fmax_hz=data_config.mel_fmax_hz,
            pad_short_videos=data_config.short_videos == "pad",
            frame_size=data_config.short_side,
        )


def max_start(num_available: tf.Tensor, num_frames: int, stride) -> tf.Tensor:
    """The last start frame from which a clip of `num_frames`, `stride` apart, fits in the video."""
    span = (num_frames - 1) * stride + 1
    return tf.maximum(tf.cast(num_available, tf.int32) - span, 0)


def eval_clip_starts(num_available: tf.Tensor, spec: ClipSpec, num_clips: int) -> tf.Tensor:
    """`[num_clips]` start frames, evenly spaced over the video (the centred clip when 1).

    >>> spec = ClipSpec(num_frames=4, stride=2, image_size=32, fps=10.0, sample_rate=16000)
    >>> eval_clip_starts(tf.constant(27), spec, 3).numpy().tolist()
    [0, 10, 20]
    """
    last = max_start(num_available, spec.num_frames, spec.stride)
    if num_clips == 1:
        return last[tf.newaxis] // 2
    fractions = tf.linspace(0.0, 1.0, num_clips)
    return tf.cast(tf.round(fractions * tf.cast(last, tf.float32)), tf.int32)


def clip_indices(num_available: tf.Tensor, spec: ClipSpec, start: tf.Tensor, stride=None) -> tuple:
    """(`[num_frames]` frame indices, `[num_frames]` float mask) of the clip from frame `start`.

    Past the end the clip loops (mask 1), or with `spec.pad_short_videos` repeats the last frame with
    mask 0 (the pipeline zeroes those frames).
    """
    stride = spec.stride if stride is None else stride
    available = tf.maximum(tf.cast(num_available, tf.int32), 1)
    positions = tf.cast(start, tf.int32) + tf.range(spec.num_frames, dtype=tf.int32) * stride
    if spec.pad_short_videos:
        return tf.minimum(positions, available - 1), tf.cast(positions < available, tf.float32)
    return positions % available, tf.ones([spec.num_frames], tf.float32)


def square_window(height, width, offset_y=0.5, offset_x=0.5) -> tf.Tensor:
    """`[y, x, side, side]`: the square of the short side of a `height`×`width` frame, placed along the
    long side by the offsets (0 = top/left, 0.5 = centre, 1 = bottom/right). An offset drawn uniformly
    from [0, 1) gives every one of the `long - side + 1` places the same chance."""
    side = tf.minimum(height, width)

    def place(length, offset):
        slack = length - side
        return tf.minimum(tf.cast(tf.floor(tf.cast(slack + 1, tf.float32) * offset), tf.int32), slack)

    return tf.stack([place(height, offset_y), place(width, offset_x), side, side])


def fit_square(squares: tf.Tensor, frame_size: int) -> tf.Tensor:
    """uint8 squares `[..., s, s, 3]` → `[..., frame_size, frame_size, 3]`: unchanged when `s` is
    `frame_size` (frames prepared at that short side), else resized (antialiased) and rounded."""
    shape = tf.shape(squares)

    def resized():
        flat = tf.reshape(squares, tf.concat([[-1], shape[-3:]], axis=0))
        pixels = tf.image.resize(flat, [frame_size, frame_size], antialias=True)
        out_shape = tf.concat([shape[:-3], [frame_size, frame_size, 3]], axis=0)
        return tf.reshape(tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8), out_shape)

    fitted = tf.cond(tf.equal(shape[-2], frame_size), lambda: squares, resized)
    return tf.ensure_shape(fitted, squares.shape[:-3].concatenate([frame_size, frame_size, 3]))


def square_crop(frames: tf.Tensor, frame_size: int, offset_y=0.5, offset_x=0.5) -> tf.Tensor:
    """uint8 frames `[..., height, width, 3]` → uint8 `[..., frame_size, frame_size, 3]`: the square of
    the short side at the offsets (`square_window`), fitted to `frame_size` (`fit_square`)."""
    shape = tf.shape(frames)
    y0, x0, side, _ = tf.unstack(square_window(shape[-3], shape[-2], offset_y, offset_x))
    return fit_square(frames[..., y0 : y0 + side, x0 : x0 + side, :], frame_size)


def zero_padding_frames(frames: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """uint8 frames `[n, h, w, 3]` with the frames whose `[n]` mask is 0 set to zero."""
    return frames * tf.cast(mask, tf.uint8)[:, None, None, None]


def audio_window(waveform: tf.Tensor, start_frame: tf.Tensor, spec: ClipSpec, num_available=None) -> tf.Tensor:
    """The `spec.audio_samples` samples `[..., samples]` that play while the clip from `start_frame` is
    shown: `num_frames * stride / fps` seconds from the time of frame `start_frame`. Past the end of the
    video (`num_available` frames), the sound follows the frames: it loops with them (the video's
    timeline repeats, silence where the audio track is shorter than the video), or with
    `spec.pad_short_videos` (or without `num_available`) it is zero-padded.

    >>> spec = ClipSpec(num_frames=4, stride=1, image_size=8, fps=4.0, sample_rate=8)  # 2 samples a frame
    >>> ramp = tf.range(1.0, 7.0)  # 3 frames of sound
    >>> audio_window(ramp, tf.constant(1), spec, num_available=3).numpy().tolist()  # frames 1, 2, 0, 1
    [3.0, 4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0]
    >>> audio_window(ramp, tf.constant(1), spec).numpy().tolist()
    [3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0, 0.0]
    """
    rate = spec.sample_rate / spec.fps
    first = tf.cast(tf.round(tf.cast(start_frame, tf.float32) * rate), tf.int32)
    length = spec.audio_samples
    if num_available is None or spec.pad_short_videos:
        period = tf.int32.max  # nothing loops
        needed = first + length
    else:
        period = tf.maximum(tf.cast(tf.round(tf.cast(num_available, tf.float32) * rate), tf.int32), 1)
        needed = period

    def wrapped():  # past the end of the sound or of the frames: padded, looped
        return tf.gather(_pad_last_axis(waveform, needed), (first + tf.range(length)) % period, axis=-1)

    # The common case, a window inside both, is a slice (half the pipeline's audio cost of a gather).
    inside = first + length <= tf.minimum(period, tf.shape(waveform)[-1])
    window = tf.cond(inside, lambda: waveform[..., first : first + length], wrapped)
    return tf.ensure_shape(window, waveform.shape[:-1].concatenate([length]))


def _pad_last_axis(tensor: tf.Tensor, length) -> tf.Tensor:
    """`tensor` with zeros appended along its last axis up to `length` (unchanged if already as long)."""
    missing = tf.maximum(length - tf.shape(tensor)[-1], 0)
    rank = tf.rank(tensor)
    return tf.pad(tensor, tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, missing]]], axis=0))


def audio_present(window: tf.Tensor) -> tf.Tensor:
    """`[..., 1]` float: 1 if the audio window `[..., samples]` has any sound, 0 if it is silent.

    A clip without an audio stream is stored as silence, so this also marks it absent — in the
    pipeline and in the SavedModel alike, which see the same waveform.
    """
    return tf.cast(tf.reduce_max(tf.abs(window), axis=-1, keepdims=True) > 0, tf.float32)


def log_mel_spectrogram(waveform: tf.Tensor, spec: ClipSpec) -> tf.Tensor:
    """float32 waveform `[..., samples]` → log-mel `[..., spec.mel_frames, spec.mel_bins]`: the features
    of `contract/log_mel.py`, which models since 0.4.0 compute themselves (`models/audio_preprocessing.py`)."""
    parameters = spec.log_mel
    stft = tf.signal.stft(
        waveform, frame_length=parameters.window, frame_step=parameters.hop, fft_length=parameters.fft_length
    )
    power = tf.square(tf.abs(stft))
    mel = tf.tensordot(power, tf.constant(log_mel.mel_matrix(parameters)), axes=1)
    mel.set_shape(power.shape[:-1].concatenate([spec.mel_bins]))
    return tf.math.log(mel + log_mel.LOG_OFFSET)


def eval_views(num_available, frames_at, waveform, spec: ClipSpec, num_clips: int, num_crops: int,
               audio_input: str = tensors.WAVEFORM) -> dict:
    """All `num_clips * num_crops` views of one video, clip-major, as model inputs with a leading axis.

    Args:
      num_available: the number of frames of the video.
      frames_at: a function from `[num_frames]` frame indices to uint8 frames `[num_frames, h, w, 3]`
        (the pipeline decodes just those JPEGs; the SavedModel gathers from the frames it was given).
      waveform: the video's whole waveform `[samples]`.
      num_clips: evenly spaced clips (`eval_clip_starts`).
      num_crops: 1 (centre) or 3 (both ends and the centre of the long side).
      audio_input: the model's audio input: `WAVEFORM`, the audio window, or `MEL`, its log-mel (runs
        trained before 0.4.0).

    Returns:
      `{FRAMES: uint8 [views, n, frame_size, frame_size, 3], WAVEFORM: [views, samples] (or MEL:
      [views, t, mels]), FRAME_MASK: [views, n], AUDIO_PRESENT: [views, 1]}`.
    """
    offsets = {1: (0.5,), 3: (0.0, 0.5, 1.0)}.get(num_crops)
    if offsets is None:
        raise ValueError(f"eval.num_crops={num_crops} must be 1 or 3")
    if audio_input not in (tensors.WAVEFORM, tensors.MEL):
        raise ValueError(f"audio_input={audio_input!r} is not one of {tensors.WAVEFORM}, {tensors.MEL}")
    views = {tensors.FRAMES: [], audio_input: [], tensors.FRAME_MASK: [], tensors.AUDIO_PRESENT: []}
    starts = eval_clip_starts(num_available, spec, num_clips)
    for clip in range(num_clips):
        indices, mask = clip_indices(num_available, spec, starts[clip])
        frames = frames_at(indices)
        window = audio_window(waveform, starts[clip], spec, num_available=num_available)
        audio = log_mel_spectrogram(window, spec) if audio_input == tensors.MEL else window
        for offset in offsets:
            squares = square_crop(frames, spec.frame_size, offset, offset)
            views[tensors.FRAMES].append(zero_padding_frames(squares, mask) if spec.pad_short_videos else squares)
            views[audio_input].append(audio)
            views[tensors.FRAME_MASK].append(mask)
            views[tensors.AUDIO_PRESENT].append(audio_present(window))
    return {key: tf.stack(value) for key, value in views.items()}
