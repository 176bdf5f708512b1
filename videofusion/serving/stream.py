"""Live classification: a video file, camera or network stream → one result per window, as it plays.

`Stream` decodes SOURCE on a thread (`live_source.LiveSource`) into a ring buffer of its last seconds at
the model's fps and sample rate (`live_buffer.LiveBuffer`), and every `hop_s` seconds of stream classifies
the newest window: the model's clip, `num_frames × stride / fps` seconds (1.6 s for the demo model), sent
to the model as the frames and waveform of that span, as `predict` would send that span of a file. Each
result has the window's span on the stream's timeline (seconds from its first frame), the top-k labels
and scores (optionally smoothed: an exponential moving average of the probabilities over windows) and
its latency: from the arrival of the window's last frame to the result.

When the model is slower than the hop, or frames arrive in a burst, the stream skips to the newest window
rather than fall behind (logged once). A file played with `realtime=False` goes as fast as the model, and
every window is classified.

The model is anything with the `StreamModel` interface: a call from frames uint8 `[T, H, W, 3]` and a
waveform float32 `[samples]` to probabilities `[classes]`; `load_model` makes one of a SavedModel export.

Example:

>>> model = load_model("exports/demo/1")  # doctest: +SKIP
>>> stream = Stream("clip.mp4", model, StreamOptions(hop_s=0.5, top_k=1))  # doctest: +SKIP
>>> for result in stream.results():  # doctest: +SKIP
...     print(result)
{'source': 'clip.mp4', 'window': 0, 'start': 0.0, 'end': 1.6, 'top_k': [{'label': 'disk-left-low', 'score': 0.93}],
 'skipped': 0, 'latency_s': 0.031}
>>> stream.summary.figures()["latency_p50_s"]  # doctest: +SKIP
0.031
"""

import dataclasses
import time
from typing import Callable, Iterator, List, Optional

import numpy as np
from absl import logging

from videofusion.contract import tensors
from videofusion.serving.live_buffer import LiveBuffer
from videofusion.serving.live_source import LiveSource, SourceOptions
from videofusion.serving.results import top_k_result

# Frames may run this far ahead of the sound before a window goes without it (a lost audio track).
AUDIO_GRACE_S = 1.0
_WAIT_S = 0.2  # the reader wakes this often, so that Ctrl-C is seen while it waits


@dataclasses.dataclass(frozen=True)
class StreamModel:
    """What a stream needs of a model: `classify(frames, waveform) → probabilities [classes]`, with frames
    uint8 `[window_frames, H, W, 3]` at `fps` (short side `short_side`) and a mono float32 waveform at
    `sample_rate`; and the `labels` of its classes."""

    classify: Callable[[np.ndarray, np.ndarray], np.ndarray]
    labels: List[str]
    fps: float
    sample_rate: int
    short_side: int
    window_frames: int


def _window_frames(model_path: str, fps: float, num_frames: int, stride: Optional[int],
                   window_s: Optional[float]) -> int:
    """Frames of a window: `window_s` seconds, else the model's clip (`num_frames × stride`)."""
    if window_s:
        return max(1, int(round(window_s * fps)))
    if stride is None:
        logging.warning("%s does not record its clip's frame stride: windows of %d frames (stride 1); "
                        "pass --window SECONDS (num_frames × stride / fps) if it was trained otherwise",
                        model_path, num_frames)
    return num_frames * (stride or 1)


def load_model(model_path: str, window_s: Optional[float] = None, variant: Optional[str] = None) -> StreamModel:
    """A SavedModel export (through its `serving_default` signature) or a LiteRT export (a folder with
    `model.json` or one of its `.tflite` files; `variant` float32, float16 or int8, through the LiteRT
    interpreter and `edge_views.eval_views`, no TensorFlow) as a `StreamModel`.

    The window is the model's clip (`num_frames × stride` frames, from the export's metadata), or
    `window_s` seconds. A SavedModel export without the stride (before 0.5) counts stride 1, and says so.
    """
    from videofusion.serving import litert_model

    if litert_model.is_litert(model_path):
        return _litert_model(model_path, window_s, variant)
    if variant:
        raise ValueError(f"--variant {variant} is for LiteRT models; {model_path} is a SavedModel export")
    import tensorflow as tf  # here, not at the top: the command's flags and help go without TensorFlow

    from videofusion.serving import predict

    predictor = predict.Predictor(model_path)
    metadata = predictor.metadata
    fps = float(metadata["fps"])
    stride = metadata.get("stride")
    window_frames = _window_frames(model_path, fps, int(metadata["num_frames"]), stride and int(stride), window_s)
    loaded = predictor.model  # held here: its variables live as long as the object

    def classify(frames: np.ndarray, waveform: np.ndarray) -> np.ndarray:
        outputs = loaded.serve(frames=tf.constant(frames[np.newaxis]), waveform=tf.constant(waveform[np.newaxis]))
        return outputs[tensors.PROBABILITIES].numpy()[0]

    return StreamModel(classify, predictor.labels, fps, int(metadata["sample_rate"]), int(metadata["short_side"]),
                       window_frames)


def _litert_model(model_path: str, window_s: Optional[float], variant: Optional[str]) -> StreamModel:
    from videofusion.serving import edge_views, litert_model

    model = litert_model.LiteRTModel(model_path, variant)
    spec = model.view_spec
    window_frames = _window_frames(model_path, spec.fps, spec.num_frames, spec.stride, window_s)

    def classify(frames: np.ndarray, waveform: np.ndarray) -> np.ndarray:
        return model.probabilities(edge_views.eval_views(len(frames), lambda indices: frames[indices], waveform, spec))

    return StreamModel(classify, model.labels, spec.fps, spec.sample_rate, int(model.decoding["short_side"]),
                       window_frames)


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """`hop_s`: stream seconds between windows; `top_k`: labels per result; `smoothing`: the weight in
    [0, 1) of the past in the moving average of probabilities (0: none); `source`: how SOURCE is read."""

    hop_s: float = 0.5
    top_k: int = 5
    smoothing: float = 0.0
    source: SourceOptions = SourceOptions()


@dataclasses.dataclass
class StreamSummary:
    """What a stream did: windows classified and skipped, seconds of inference, latencies, why it ended."""

    hop_s: float
    windows: int = 0
    skipped: int = 0
    inference_s: float = 0.0
    latencies: List[float] = dataclasses.field(default_factory=list)
    ended: str = ""

    def figures(self) -> dict:
        """The figures as one flat dict: `ratio_realtime` is inference time per second of stream stepped
        over (below 1: the model keeps up), latencies in seconds.

        >>> summary = StreamSummary(0.5, windows=4, inference_s=0.2, latencies=[0.1, 0.1, 0.2, 0.3], ended="end")
        >>> summary.figures()  # doctest: +NORMALIZE_WHITESPACE
        {'windows': 4, 'skipped': 0, 'stream_s': 2.0, 'ratio_realtime': 0.1, 'latency_p50_s': 0.15,
         'latency_p95_s': 0.285, 'ended': 'end'}
        """
        stream_s = (self.windows + self.skipped) * self.hop_s
        latencies = self.latencies or [float("nan")]
        return {"windows": self.windows, "skipped": self.skipped, "stream_s": round(stream_s, 3),
                "ratio_realtime": round(self.inference_s / stream_s, 4) if stream_s else None,
                "latency_p50_s": round(float(np.percentile(latencies, 50)), 4),
                "latency_p95_s": round(float(np.percentile(latencies, 95)), 4), "ended": self.ended}


class Stream:
    """Classifies the windows of `source` with `model` as it plays (`results`); `close` stops it."""

    def __init__(self, source: str, model: StreamModel, options: StreamOptions = StreamOptions()):
        self._hop = int(round(options.hop_s * model.fps))
        if self._hop < 1:
            raise ValueError(f"--hop {options.hop_s} is shorter than one frame at {model.fps:g} fps")
        if not 0.0 <= options.smoothing < 1.0:
            raise ValueError(f"--smoothing {options.smoothing} must be in [0, 1)")
        self._source_name, self._model, self._options = source, model, options
        grace = int(round(AUDIO_GRACE_S * model.fps))
        self._buffer = LiveBuffer(model.fps, model.sample_rate, model.window_frames, self._hop + 2 * grace,
                                  AUDIO_GRACE_S, block=not options.source.realtime)
        self._source = LiveSource(source, self._buffer, model.short_side, options.source)
        if not (options.source.realtime or self._source.is_file):
            raise ValueError(f"{source} is live: only a file can be read faster than real time")
        self.summary = StreamSummary(self._hop / model.fps)

    def results(self) -> Iterator[dict]:
        """Yields one result per classified window until the source ends or `close` is called.

        Raises `live_source.SourceError` for a file that cannot be decoded.
        """
        self._warm_up()
        self._source.start()
        smoothed, index, behind_logged = None, 0, False
        while True:
            end = self._model.window_frames + index * self._hop
            ready = self._buffer.wait(end, _WAIT_S)
            if ready < end:
                if self._buffer.ended:
                    break
                continue
            skipped = (ready - end) // self._hop if self._options.source.realtime else 0
            if skipped and not behind_logged:
                logging.warning("behind the stream by %d windows: skipping to the newest (the last inference "
                                "took %.3f s; the hop is %.3f s)", skipped, self._last_inference, self.summary.hop_s)
                behind_logged = True
            index, end = index + skipped, end + skipped * self._hop
            window = self._buffer.window(end)
            started = time.monotonic()
            probabilities = self._model.classify(window.frames, window.waveform)
            self._last_inference = time.monotonic() - started
            smoothed = probabilities if smoothed is None else (
                self._options.smoothing * smoothed + (1 - self._options.smoothing) * probabilities)
            top_k = top_k_result(self._source_name, smoothed, self._model.labels, self._options.top_k)
            latency = time.monotonic() - window.arrival
            self._count(skipped, latency)
            yield {"source": self._source_name, "window": index, "start": round(window.start_s, 3),
                   "end": round(window.end_s, 3), "top_k": top_k["top_k"], "skipped": skipped,
                   "latency_s": round(latency, 4)}
            index += 1
        if self._source.error is not None:
            raise self._source.error
        self.summary.ended = self._source.ended

    def _warm_up(self):
        """One inference before the clock starts: the first call of a SavedModel builds its graph."""
        side = self._model.short_side
        samples = self._buffer.sample_index(self._model.window_frames)
        started = time.monotonic()
        self._model.classify(np.zeros([self._model.window_frames, side, side, 3], np.uint8),
                             np.zeros(samples, np.float32))
        self._last_inference = time.monotonic() - started

    def _count(self, skipped: int, latency: float):
        self.summary.windows += 1
        self.summary.skipped += skipped
        self.summary.inference_s += self._last_inference
        self.summary.latencies.append(latency)

    def close(self) -> None:
        """Stops decoding; the summary says how the stream ended (`stopped` if it had not)."""
        self._source.stop()
        self.summary.ended = self.summary.ended or "stopped"
