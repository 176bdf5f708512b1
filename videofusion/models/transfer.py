"""`model.init_from`: a classifier starts from the encoders a `videofusion pretrain` run learnt.

The pretraining model and the classifier build their encoders with the same code and layer names
(`builder.modality_streams`), so weights go over by layer name: every layer of the classifier that
has weights and a namesake in the pretrained model takes that layer's weights (the encoders: frame
CNN and backbone, motion stream, LSTM or transformer, audio CNN, text encoder); the rest (fusion,
heads) start new. The pretrained model's projection heads and temperature have no namesake and stay
behind. With `inputs`, only the layers computed from those model inputs alone are loaded: the encoders
of some modalities (`model.init_from_modalities`), the others starting new.

Example:

>>> loaded, new = load_encoders(classifier, keras.models.load_model("runs/pre/model.keras"))  # doctest: +SKIP
>>> loaded[:3], new  # doctest: +SKIP
(['audio_conv1', 'audio_bn1', 'audio_conv2'], ['fused_logits', 'aux_audio_logits', ...])
"""

from typing import Iterable, List, Optional, Set, Tuple

import keras


class IncompatibleEncoderError(ValueError):
    """A layer of the pretrained run whose weights do not fit the classifier's namesake."""


def layers_of_inputs(model: keras.Model, inputs: Iterable[str]) -> Set[str]:
    """The names of the layers of the functional `model` that are computed from the model inputs named
    `inputs` and from no other input (a modality's encoder, for its inputs)."""
    inputs, sources = set(inputs), {}
    for operation in model.operations:  # in the order they run: an operation's inputs come first
        if isinstance(operation, keras.layers.InputLayer):
            sources[operation.name] = {operation.name}
            continue
        sources[operation.name] = {
            source for node in operation._inbound_nodes for tensor in node.input_tensors
            for source in sources[tensor._keras_history.operation.name]
        }
    return {name for name, found in sources.items() if found and found <= inputs}


def load_encoders(model: keras.Model, pretrained: keras.Model,
                  inputs: Optional[Iterable[str]] = None) -> Tuple[List[str], List[str]]:
    """Copies into `model` the weights of each of its layers that `pretrained` has a layer of the same
    name for (with `inputs`, of those computed from these model inputs alone: `layers_of_inputs`);
    returns (the names of the layers loaded, those of `model`'s other layers with weights).

    Raises `IncompatibleEncoderError` naming the first layer whose weights differ in number or shape;
    nothing is changed then.
    """
    theirs = {layer.name: layer for layer in pretrained.layers}
    eligible = None if inputs is None else layers_of_inputs(model, inputs)
    pairs, new = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in theirs or (eligible is not None and layer.name not in eligible):
            new.append(layer.name)
            continue
        source = theirs[layer.name]
        mine = [tuple(w.shape) for w in layer.weights]
        their_shapes = [tuple(w.shape) for w in source.weights]
        if mine != their_shapes:
            raise IncompatibleEncoderError(
                f"layer {layer.name!r} has weights of shapes {mine} here and {their_shapes} in the pretrained run")
        pairs.append((layer, source))
    for layer, source in pairs:
        layer.set_weights(source.get_weights())
    return [layer.name for layer, _ in pairs], new
