"""A LiteRT export loaded with the LiteRT interpreter (`ai-edge-litert`): a device needs no TensorFlow.

`videofusion export --format litert` (`litert_export.py`) writes a folder of `model_float32.tflite`,
`model_float16.tflite` and `model_int8.tflite` and their sidecar `model.json`: the labels, the
decoding `prepare` did (`decoding`: fps, short side, sample rate, JPEG quality, clip length), the views
(`views`: `edge_views.ViewSpec`'s fields), the log-mel the model computes inside (`log_mel`), and per
variant its file, size and operators. Each `.tflite` has one signature, `serving_default`: one video's
views (`frames` uint8 `[views, n, s, s, 3]`, `frame_mask`, `waveform` float32 `[views, samples]`,
`audio_present`) → `classes` (probabilities) and `embedding` `[views, ...]`; the views' softmax is
averaged here, as the SavedModel averages it.

Example:

>>> model = LiteRTModel("exports/demo/litert/1", variant="int8", num_threads=1)  # doctest: +SKIP
>>> views = edge_views.eval_views(len(frames), frames.__getitem__, waveform, model.view_spec)  # doctest: +SKIP
>>> model.probabilities(views)  # doctest: +SKIP
array([0.01, 0.93, ...], dtype=float32)
"""

import json
import os
from typing import Optional

import numpy as np

from videofusion.contract import tensors
from videofusion.serving import edge_views

SIDECAR = "model.json"
FORMAT = "videofusion-litert"  # the sidecar's "format"
VARIANTS = ("float32", "float16", "int8")
SIGNATURE = "serving_default"
EMBEDDING = "embedding"
INPUTS = (tensors.FRAMES, tensors.FRAME_MASK, tensors.WAVEFORM, tensors.AUDIO_PRESENT)


def file_name(variant: str) -> str:
    """The `.tflite` file of a variant: `model_<variant>.tflite`."""
    return f"model_{variant}.tflite"


def is_litert(path: str) -> bool:
    """Whether `path` names a LiteRT export: a `.tflite` file, or a folder with a `model.json`."""
    return path.endswith(".tflite") or os.path.isfile(os.path.join(path, SIDECAR))


def read_sidecar(folder: str) -> dict:
    """The `model.json` of a LiteRT export folder; a missing or foreign one raises with the path."""
    path = os.path.join(folder, SIDECAR)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: a videofusion LiteRT model needs the model.json that "
                                "`videofusion export --format litert` writes next to it")
    with open(path, encoding="utf-8") as f:
        sidecar = json.load(f)
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise ValueError(f"{path} is not a videofusion LiteRT sidecar (its \"format\" is not {FORMAT!r})")
    return sidecar


class LiteRTModel:
    """One variant of a LiteRT export in the LiteRT interpreter.

    Args:
      path: the export folder, or one of its `.tflite` files (its variant then comes from `model.json`).
      variant: `float32`, `float16` or `int8` when `path` is a folder (default `float32`).
      num_threads: the interpreter's CPU threads (default: LiteRT's choice).
    """

    def __init__(self, path: str, variant: Optional[str] = None, num_threads: Optional[int] = None):
        from ai_edge_litert.interpreter import Interpreter

        folder, model_file = (os.path.dirname(path) or ".", os.path.basename(path)) if path.endswith(".tflite") \
            else (path, None)
        self.sidecar = read_sidecar(folder)
        files = {entry["file"]: name for name, entry in self.sidecar["variants"].items()}
        if model_file is not None and model_file not in files:
            raise ValueError(f"{path} is not one of the models {os.path.join(folder, SIDECAR)} lists: "
                             f"{', '.join(sorted(files))}")
        self.variant = files[model_file] if model_file else (variant or VARIANTS[0])
        if self.variant not in self.sidecar["variants"]:
            raise ValueError(f"{folder} has no {self.variant!r} model; it has {', '.join(self.sidecar['variants'])}")
        self.path = os.path.join(folder, self.sidecar["variants"][self.variant]["file"])
        self.labels = list(self.sidecar["labels"])
        self.view_spec = edge_views.ViewSpec(**self.sidecar["views"])
        self.decoding = dict(self.sidecar["decoding"])
        self._interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        self._runner = self._signature_runner()

    def _signature_runner(self):
        signatures = self._interpreter.get_signature_list()
        inputs = sorted(signatures.get(SIGNATURE, {}).get("inputs", []))
        if inputs != sorted(INPUTS):
            raise ValueError(f"{self.path} does not take a video's views: its {SIGNATURE} signature has inputs "
                             f"{inputs}, not {sorted(INPUTS)}; export the run again with --format litert")
        return self._interpreter.get_signature_runner(SIGNATURE)

    def outputs(self, views: dict) -> dict:
        """Per-view outputs `{"classes": [views, classes], "embedding": [views, d]}` for one video's views
        (`edge_views.eval_views`)."""
        dtypes = {tensors.FRAMES: np.uint8}
        return self._runner(**{key: np.asarray(views[key], dtypes.get(key, np.float32)) for key in INPUTS})

    def probabilities(self, views: dict) -> np.ndarray:
        """The video's class probabilities `[classes]`: the mean of its views' softmax."""
        return self.outputs(views)[tensors.CLASSES].astype(np.float32).mean(axis=0)
