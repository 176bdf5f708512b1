"""Small custom layers the functional models need; each round-trips through `get_config`.

Example:

>>> import numpy as np
>>> keras.ops.convert_to_numpy(MiddleFrame()(np.arange(6, dtype="float32").reshape(1, 3, 2))).tolist()
[[2.0, 3.0]]
>>> keras.ops.convert_to_numpy(FrameDifferences()(np.array([[[1.0], [4.0], [6.0]]]))).tolist()
[[[1.0, 0.0], [4.0, 3.0], [6.0, 2.0]]]
"""

import keras


@keras.saving.register_keras_serializable(package="videofusion")
class MiddleFrame(keras.layers.Layer):
    """`[batch, time, ...]` → `[batch, ...]`: the frame in the middle of the clip."""

    def call(self, frames):
        return frames[:, keras.ops.shape(frames)[1] // 2]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="videofusion")
class FrameDifferences(keras.layers.Layer):
    """`[batch, time, ..., channels]` → `[..., 2 * channels]`: each frame with its change since the last.

    The "RGB difference" motion input of Temporal Segment Networks (Wang et al., 2016): where a shape
    moves, the difference is positive at its leading edge and negative at its trailing edge, a local
    pattern a small CNN picks up at any position. The first frame's difference is zero.
    """

    def call(self, frames):
        previous = keras.ops.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        return keras.ops.concatenate([frames, frames - previous], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * input_shape[-1],)
