"""Fine-tuning a pretrained frame backbone the usual way: frozen for the first epochs, then trained
with a lower learning rate than the rest of the model.

`train.backbone_frozen_epochs` epochs run with the backbone (the model's `frame_backbone` layer)
frozen — its batch-normalisation statistics included, as Keras does for a non-trainable layer — so
that the new layers learn before their random gradients reach the pretrained weights. The remaining
epochs train everything, the backbone at `train.backbone_learning_rate_scale` × the learning rate
(`ScaledAdam`).

Example:

>>> phases(epochs=10, frozen_epochs=3)
[(0, 3, False), (3, 10, True)]
>>> phases(epochs=10, frozen_epochs=0)
[(0, 10, True)]
"""

from typing import List, Optional, Tuple

import keras

from videofusion.models.frame_backbones import BACKBONE_LAYER


def phases(epochs: int, frozen_epochs: int) -> List[Tuple[int, int, bool]]:
    """`(first epoch, end epoch, backbone trainable)` for each `fit` of a run."""
    frozen = max(0, min(frozen_epochs, epochs))
    return ([(0, frozen, False)] if frozen else []) + ([(frozen, epochs, True)] if epochs > frozen else [])


def find_backbone(model: keras.Model) -> Optional[keras.layers.Layer]:
    """The model's frame backbone (inside its `PerFrame` wrapper, if any); None without video."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # PerFrame wraps it
        if inner.name == BACKBONE_LAYER:
            return inner
    return None


@keras.saving.register_keras_serializable(package="videofusion")
class ScaledAdam(keras.optimizers.Adam):
    """Adam (AdamW with `weight_decay`) whose steps for some variables (`scale_variables`) use
    `learning_rate_scale` × the rate.

    Weight decay is decoupled (Loshchilov & Hutter 2019: `w -= rate × weight_decay × w` at each step,
    apart from the gradient) and applies to kernels and embeddings only (variables of rank ≥ 2; biases
    and normalisation scales keep theirs), at the variable's own rate: a backbone at scale 0 stays
    exactly as loaded. Keras's own weight decay would use the unscaled rate for every variable.

    The set of scaled variables lives on the optimizer object and is not saved with it: a reloaded
    optimizer scales none until `scale_variables` is called again (training builds a new one on every
    start).

    >>> dense = keras.layers.Dense(1)
    >>> dense.build((None, 2))
    >>> optimizer = ScaledAdam(learning_rate_scale=0.1, weight_decay=0.05)
    >>> optimizer.scale_variables([dense.kernel])
    >>> optimizer.scaled_count, optimizer.get_config()["weight_decay"]
    (1, 0.05)
    """

    def __init__(self, learning_rate_scale: float = 1.0, weight_decay=None, **kwargs):
        super().__init__(weight_decay=None, **kwargs)  # applied in `update_step`, at the scaled rate
        self.learning_rate_scale = learning_rate_scale
        self.decoupled_weight_decay = float(weight_decay or 0.0)
        self._scaled_keys = set()

    def scale_variables(self, variables) -> None:
        """Makes `variables` take the scaled learning rate."""
        self._scaled_keys = {self._var_key(variable) for variable in variables}

    @property
    def scaled_count(self) -> int:
        return len(self._scaled_keys)

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._scaled_keys:
            learning_rate = learning_rate * self.learning_rate_scale
        if self.decoupled_weight_decay and len(variable.shape) >= 2:
            rate = keras.ops.cast(learning_rate, variable.dtype)
            self.assign_sub(variable, variable * (rate * self.decoupled_weight_decay))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {
            **super().get_config(),
            "learning_rate_scale": self.learning_rate_scale,
            "weight_decay": self.decoupled_weight_decay or None,
        }
