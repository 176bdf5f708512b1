"""Export for devices: a trained run → a folder of LiteRT (`.tflite`) models that need no TensorFlow.

`videofusion export --format litert` writes `OUTPUT/<version>/` with three variants of the Keras model on
ready views (`litert_model.py` describes the folder and the signature) and their sidecar `model.json`:

- `float32`: the model as trained;
- `float16`: float16 weights (`target_spec.supported_types`), computed in float32 on a CPU;
- `int8`: integer weights and activations, calibrated on the evaluation views of `calibration_clips`
  clips of the run's training shards, except the log-mel layer (`AudioPreprocessing`), which stays
  float32 (selective quantization, `tf.lite.experimental.QuantizationDebugger`): its power spectrum
  spans far more than 8 bits, and quantized it cost the demo 4 points of accuracy (98.6 → 94.4 %, 144
  test clips; 98.6 % with it in float32). The inputs stay as the model takes them (frames uint8, the
  rest float32) and the outputs float32, so the three variants are used alike.

Each `.tflite` takes the views of one video (the batch is `eval.num_clips * eval.num_crops`); the host
cuts them in NumPy (`edge_views.py`). Everything else — resizing and scaling the frames, the log-mel
(LiteRT's builtin `RFFT2D`), the encoders, the fusion, the softmax — is inside, in LiteRT's builtin
operators only: the converter is not allowed select TensorFlow ops, so a model that needs one fails to
export instead of needing the Flex delegate on the device. Keras 3's LSTM is traced as a `while` loop
that TensorFlow Lite's int8 calibrator crashes on (a segmentation fault in its `FeedTensor`, TF 2.21)
and that the converter cannot fuse into its LSTM kernel (a masked LSTM has none), so it is unrolled
over the clip's frames (`edge_model`), which computes the same (the test checks the probabilities).

The model is converted through a temporary SavedModel: from a concrete function the converter keeps
the weights as resource variables (`VAR_HANDLE`/`READ_VARIABLE`) instead of folding them into constants.

Example:

>>> export_litert("runs/demo", "exports/demo/litert")  # doctest: +SKIP
'exports/demo/litert/1'
"""

import os
import shutil
import tempfile
from typing import Callable, Iterator, List, Optional, Sequence

import keras
import tensorflow as tf
from absl import logging

import videofusion
from videofusion import fileio, models
from videofusion.contract import modalities, tensors
from videofusion.data import pipeline
from videofusion.models.audio_preprocessing import AudioPreprocessing
from videofusion.serving import export, litert_model, signatures

DEFAULT_CALIBRATION_CLIPS = 64


def edge_model(model: keras.Model) -> keras.Model:
    """`model` with its embedding output (`signatures.with_embedding`) and its LSTMs unrolled, same weights."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "LSTM":
            layer["config"]["unroll"] = True
    unrolled = keras.Model.from_config(config)
    unrolled.set_weights(model.get_weights())
    return signatures.with_embedding(unrolled)


def check_exportable(config, options: pipeline.PipelineOptions, workdir: str) -> None:
    """Raises `ValueError` for a run the LiteRT export cannot take (captions, a pre-0.4.0 log-mel input)."""
    if modalities.TEXT in modalities.parse(config.model.modalities):
        raise ValueError(f"{workdir} reads captions (model.modalities={config.model.modalities}): the LiteRT "
                         "export has no tokenizer; export it as a SavedModel")
    if options.audio_input != tensors.WAVEFORM:
        raise ValueError(f"{workdir} takes the log-mel as input (a run trained before 0.4.0): train it again "
                         "to export it for LiteRT")


def save_views_function(model: keras.Model, options: pipeline.PipelineOptions, directory: str) -> None:
    """Saves `edge_model(model)` on one video's views as a SavedModel with a `serving_default` signature."""
    edge = edge_model(model)
    views = options.num_clips * options.num_crops
    specs = {key: tf.TensorSpec([views, *spec.shape[1:]], spec.dtype, name=key)
             for key, spec in signatures.view_signature(options).items() if key in edge.input}
    module = tf.Module()
    module.model_variables = [variable.value for variable in edge.variables]
    module.serve = tf.function(lambda inputs: edge(inputs, training=False), input_signature=[specs])
    tf.saved_model.save(module, directory, signatures={litert_model.SIGNATURE: module.serve})


def calibration_views(data_dir: str, options: pipeline.PipelineOptions, clips: int) -> Callable[[], Iterator[dict]]:
    """The int8 calibration set: a generator function of the evaluation views of the first `clips` clips of
    the training shards in `data_dir`, one clip's views per sample."""
    views = options.num_clips * options.num_crops
    dataset = pipeline.make_dataset(data_dir, "train", options, views, training=False).take(clips)

    def samples():
        for features, _ in dataset:
            yield {key: features[key].numpy() for key in litert_model.INPUTS}

    return samples


def float_nodes(float_model: bytes, scope: str) -> List[str]:
    """The names of the tensors of a float `.tflite` model that ops under the name scope `scope` compute."""
    from ai_edge_litert.interpreter import Interpreter

    return [d["name"] for d in Interpreter(model_content=float_model).get_tensor_details() if f"/{scope}" in d["name"]]


def convert(saved_model_dir: str, variant: str, representative: Callable[[], Iterator[dict]],
            float_denylist: Sequence[str] = ()) -> bytes:
    """The `.tflite` bytes of one variant (`litert_model.VARIANTS`), builtin operators only; int8 leaves the
    tensors named in `float_denylist` (`float_nodes`) in float32."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_denylist))
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                             debug_options=options)
        return debugger.get_nondebug_quantized_model()
    elif variant != "float32":
        raise ValueError(f"variant {variant!r} is not one of {', '.join(litert_model.VARIANTS)}")
    return converter.convert()


def operators(model_path: str) -> dict:
    """`{operator: count}` of a `.tflite` file, as the LiteRT interpreter reads it (select TensorFlow ops
    would show as `Flex…` custom operators)."""
    from ai_edge_litert.interpreter import Interpreter

    counts = {}
    for op in Interpreter(model_path=model_path)._get_ops_details():  # LiteRT's only listing of them
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items()))


def sidecar(config, labels, options: pipeline.PipelineOptions, variants: dict, calibration: dict) -> dict:
    """The `model.json` of an export (`litert_model.py`)."""
    spec = options.spec
    return {
        "format": litert_model.FORMAT, "videofusion_version": videofusion.__version__, "labels": labels,
        "modalities": config.model.modalities, "decoding": export.decoding(config),
        "views": {"num_frames": spec.num_frames, "stride": spec.stride, "fps": spec.fps,
                  "sample_rate": spec.sample_rate, "frame_size": spec.frame_size, "num_clips": options.num_clips,
                  "num_crops": options.num_crops, "pad_short_videos": spec.pad_short_videos},
        "image_size": spec.image_size,
        "log_mel": {"sample_rate": spec.sample_rate, "mel_bins": spec.mel_bins, "window_ms": spec.mel_window_ms,
                    "hop_ms": spec.mel_hop_ms, "fmin_hz": spec.mel_fmin_hz, "fmax_hz": spec.mel_fmax_hz},
        "signature": {"name": litert_model.SIGNATURE, "inputs": list(litert_model.INPUTS),
                      "outputs": [tensors.CLASSES, litert_model.EMBEDDING]},
        "variants": variants, "calibration": calibration,
    }


def export_litert(workdir: str, output_dir: str, version: Optional[int] = None,
                  calibration_clips: int = DEFAULT_CALIBRATION_CLIPS, data_dir: Optional[str] = None) -> str:
    """Exports the run in `workdir` as `output_dir/<version>` (default: the next one) of LiteRT models;
    returns that path. The int8 model is calibrated on the training shards of `data_dir` (default: the
    run's `data.dir`). Raises `FileExistsError` if that version exists, `ValueError` for a run it can't take."""
    config, labels, model = models.load_run(workdir)
    data_dir = data_dir or config.data.dir
    options = pipeline.PipelineOptions.from_config(config, model=model)
    check_exportable(config, options, workdir)
    target = os.path.join(output_dir, str(version or export.next_version(output_dir)))
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists: choose another --version, or leave it out for the next one")
    staging = fileio.temp_name(target)
    try:
        os.makedirs(staging)
        with tempfile.TemporaryDirectory(prefix="videofusion-litert-") as scratch:
            save_views_function(model, options, scratch)
            representative = calibration_views(data_dir, options, calibration_clips)
            float_model = convert(scratch, "float32", representative)
            log_mel = [layer.name for layer in model.layers if isinstance(layer, AudioPreprocessing)]
            denylist = [name for scope in log_mel for name in float_nodes(float_model, scope)]
            variants = {}
            for variant in litert_model.VARIANTS:
                path = os.path.join(staging, litert_model.file_name(variant))
                with open(path, "wb") as f:
                    f.write(float_model if variant == "float32" else convert(scratch, variant, representative,
                                                                             denylist))
                variants[variant] = {"file": os.path.basename(path), "bytes": os.path.getsize(path),
                                     "operators": operators(path)}
        calibration = {"data_dir": data_dir, "split": "train", "clips": calibration_clips, "float_tensors": denylist}
        fileio.write_json(os.path.join(staging, litert_model.SIDECAR),
                          sidecar(config, labels, options, variants, calibration))
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logging.info("Exported %s to %s: %s", workdir, target,
                 ", ".join(f"{name} {entry['bytes'] / 1e6:.2f} MB" for name, entry in variants.items()))
    return target
