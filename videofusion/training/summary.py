"""`videofusion summary --config …`: a config's model, its parameters and its FLOPs per clip.

FLOPs are counted by TensorFlow's profiler on the frozen inference graph of one clip (one view); a
multiply-add counts as two. Ops inside a loop are counted once: for the LSTM that is one time step of
its recurrence, so `lstm` models are under-counted by about (frames − 1) × the LSTM's step.

Example:

>>> from videofusion.config import demo_config
>>> report = summarize(demo_config("smoke"))  # doctest: +SKIP
>>> sorted(report)  # doctest: +SKIP
['flops_per_clip', 'inputs', 'model', 'parameters']
"""

import os

import ml_collections
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from videofusion import fileio
from videofusion.contract import prepared_folder, tensors
from videofusion.data.transforms import ClipSpec
from videofusion.models import build_model
from videofusion.training import train


def _with_data_rates(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` with the frame and sample rates of its prepared data, or the defaults without data."""
    if fileio.isfile(os.path.join(config.data.dir, prepared_folder.DATASET_FILE)):
        return train.resolve_data_config(config)
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.data.fps = float(resolved.data.fps or prepared_folder.DEFAULT_FPS)
    resolved.data.sample_rate = int(resolved.data.sample_rate or prepared_folder.DEFAULT_SAMPLE_RATE)
    return resolved


def count_flops(model, input_specs: dict) -> int:
    """Float operations of one call of `model` on inputs of `input_specs` (TensorSpecs, batch 1)."""
    function = tf.function(lambda inputs: model(inputs, training=False)[tensors.CLASSES])
    frozen = convert_variables_to_constants_v2(function.get_concrete_function(input_specs))
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options)
    return int(profile.total_float_ops)


def summarize(config: ml_collections.ConfigDict, num_classes: int = 4) -> dict:
    """{model, parameters, flops_per_clip, inputs} of the model `config` describes."""
    config = _with_data_rates(config)
    model = build_model(config.model, train.input_shapes(config, ClipSpec.from_config(config.data)), num_classes)
    specs = {name: tf.TensorSpec([1, *tensor.shape[1:]], tensor.dtype) for name, tensor in model.input.items()}
    return {
        "model": model.name,
        "parameters": int(model.count_params()),
        "flops_per_clip": count_flops(model, specs),
        "inputs": {name: list(spec.shape) for name, spec in specs.items()},
    }
