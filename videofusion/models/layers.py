"""Small custom layers the functional models need; each round-trips through `get_config`.

Example:

>>> import numpy as np
>>> keras.ops.convert_to_numpy(MiddleFrame()(np.arange(6, dtype="float32").reshape(1, 3, 2))).tolist()
[[2.0, 3.0]]
"""

import keras


@keras.saving.register_keras_serializable(package="videofusion")
class MiddleFrame(keras.layers.Layer):
    """`[batch, time, ...]` → `[batch, ...]`: the frame in the middle of the clip."""

    def call(self, frames):
        return frames[:, keras.ops.shape(frames)[1] // 2]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])
