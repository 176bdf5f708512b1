"""The training recipe of `config.train`: AdamW, warmup + cosine decay, label smoothing, clipping.

What TF Model Garden's video classification trainer and MMAction2's configs use for training from a
few hundred to a few hundred thousand clips, in Keras only (so that it runs under JAX too):

- `make_optimizer`: Adam with decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on kernels and
  embeddings (not on biases and normalisation scales), the gradient's global norm clipped, the
  frame backbone optionally at a lower rate (`finetune.ScaledAdam`);
- `learning_rate_schedule`: a linear warmup from 0 to `train.learning_rate` over
  `train.warmup_epochs`, then a cosine decay to `train.final_learning_rate_ratio` × that at the last
  step (Keras's `CosineDecay`), or `constant`;
- `SmoothedCrossentropy`: cross-entropy on integer labels with label smoothing (Keras's sparse loss
  has none);
- `balanced_class_weights`: `n / (classes × n_c)` per class, for unbalanced data;
- `BalancedAccuracy`: the mean recall over the classes seen, a metric whose state is the confusion
  matrix of the clips it was given (the dashboards draw the validation pass's from it);
- `compile_classifier`: a classifier compiled with all of the above, as `videofusion train` compiles it.

Example:

>>> from videofusion.config import base_config
>>> schedule = learning_rate_schedule(base_config().train, steps_per_epoch=10)
>>> round(float(schedule(0)), 6), round(float(schedule(10)), 6)
(0.0, 0.001)
>>> [round(weight, 4) for weight in balanced_class_weights([30, 10])]
[0.6667, 2.0]
"""

import math
from typing import List, Sequence, Union

import keras
import numpy as np

from videofusion.contract import tensors
from videofusion.models.finetune import ScaledAdam

SCHEDULES = ("warmup_cosine", "constant")
JIT_COMPILE = {"auto": "auto", "true": True, "false": False}  # `train.jit_compile` → Keras's `jit_compile`


def learning_rate_schedule(
    train_cfg, steps_per_epoch: int
) -> Union[float, keras.optimizers.schedules.LearningRateSchedule]:
    """The learning rate per optimizer step that `train_cfg` (a `config.train`) asks for."""
    if train_cfg.lr_schedule == "constant":
        return train_cfg.learning_rate
    if train_cfg.lr_schedule != "warmup_cosine":
        raise ValueError(f"train.lr_schedule={train_cfg.lr_schedule!r} is not one of {', '.join(SCHEDULES)}")
    total = max(1, train_cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(train_cfg.warmup_epochs * steps_per_epoch)))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else train_cfg.learning_rate,
        warmup_target=train_cfg.learning_rate if warmup else None,
        warmup_steps=warmup,
        decay_steps=max(1, total - warmup),
        alpha=train_cfg.final_learning_rate_ratio,
    )


def make_optimizer(train_cfg, steps_per_epoch: int, first_step: int = 0) -> ScaledAdam:
    """AdamW (`weight_decay` 0: Adam) on `learning_rate_schedule`, its step counter at `first_step`.

    `first_step` > 0 continues the schedule where an earlier phase of the same run left it.
    """
    optimizer = ScaledAdam(
        learning_rate=learning_rate_schedule(train_cfg, steps_per_epoch),
        learning_rate_scale=train_cfg.backbone_learning_rate_scale,
        weight_decay=train_cfg.weight_decay,
        global_clipnorm=train_cfg.gradient_clip_norm or None,
    )
    optimizer.iterations.assign(first_step)
    return optimizer


@keras.saving.register_keras_serializable(package="videofusion")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against integer labels, the targets smoothed by `label_smoothing`.

    >>> loss = SmoothedCrossentropy(label_smoothing=0.0)
    >>> round(float(loss(keras.ops.array([1]), keras.ops.array([[0.5, 0.5]]))), 4)
    0.6931
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        targets = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="videofusion")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean per-class recall of integer labels against probabilities, over the classes the labels hold.

    Its state is the confusion matrix of every clip given since the last reset (`confusion_matrix`:
    rows true classes, columns predicted ones), counted unweighted: class weights change the loss, not
    what was predicted. Inside `fit`, after the validation pass, that is the validation pass's matrix.

    >>> metric = BalancedAccuracy(num_classes=2)
    >>> metric.update_state(keras.ops.array([0, 0, 0, 1]), keras.ops.array([[0.9, 0.1]] * 3 + [[0.8, 0.2]]))
    >>> float(metric.result()), metric.confusion_matrix().tolist()
    (0.5, [[3, 0], [1, 0]])
    """

    def __init__(self, num_classes: int, name: str = "balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.counts = self.add_variable((num_classes, num_classes), initializer="zeros", dtype="float32",
                                        aggregation="sum", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        del sample_weight  # counted unweighted (see the class docstring)
        true = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        predicted = keras.ops.one_hot(keras.ops.argmax(y_pred, axis=-1), self.num_classes)
        self.counts.assign_add(keras.ops.matmul(keras.ops.transpose(true), keras.ops.cast(predicted, true.dtype)))

    def result(self):
        support = keras.ops.sum(self.counts, axis=1)
        seen = keras.ops.cast(support > 0, "float32")
        recall = keras.ops.diagonal(self.counts) / keras.ops.maximum(support, 1.0)
        return keras.ops.sum(recall * seen) / keras.ops.maximum(keras.ops.sum(seen), 1.0)

    def reset_state(self):
        self.counts.assign(keras.ops.zeros(self.counts.shape, dtype=self.counts.dtype))

    def confusion_matrix(self) -> np.ndarray:
        """int64 `[classes, classes]`: clips per (true class, predicted class)."""
        return np.rint(keras.ops.convert_to_numpy(self.counts)).astype(np.int64)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def balanced_class_weights(counts: Sequence[int]) -> List[float]:
    """`n / (classes × n_c)` for each class's count `n_c` (0 for a class with no examples)."""
    total, classes = sum(counts), len(counts)
    return [total / (classes * count) if count else 0.0 for count in counts]


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Batches in one pass over `examples` (the last one may be smaller)."""
    return max(1, math.ceil(examples / batch_size))


def jit_compile(train_cfg):
    """Keras's `jit_compile` for `train.jit_compile` ("auto", "true" or "false", any case).

    >>> from videofusion.config import base_config
    >>> jit_compile(base_config().train)
    'auto'
    """
    return JIT_COMPILE[str(train_cfg.jit_compile).lower()]


def compile_classifier(model: keras.Model, config, scaled_layers=(), steps_per_epoch: int = 1,
                       first_epoch: int = 0) -> None:
    """Compiles the classifier `model` with the recipe of the experiment `config`: its optimizer with the
    schedule at `first_epoch`, one loss per output (the aux heads' weighted by `model.aux_loss_weight`)
    and the metrics of `classes`; the variables of `scaled_layers` get the backbone learning rate.

    >>> from videofusion.config import base_config
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, {"classes": keras.layers.Dense(2, activation="softmax")(inputs)})
    >>> compile_classifier(model, base_config())
    >>> [metric.name for metric in model.metrics]
    ['loss', 'compile_metrics']
    """
    optimizer = make_optimizer(config.train, steps_per_epoch, first_step=first_epoch * steps_per_epoch)
    if scaled_layers:
        optimizer.scale_variables([v for layer in scaled_layers for v in layer.trainable_variables])
    num_classes = model.output[tensors.CLASSES].shape[-1]
    model.compile(
        optimizer=optimizer,
        loss={name: SmoothedCrossentropy(config.train.label_smoothing) for name in model.output},
        jit_compile=jit_compile(config.train),
        loss_weights={name: 1.0 if name == tensors.CLASSES else config.model.aux_loss_weight for name in model.output},
        metrics={
            tensors.CLASSES: [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(
                    k=min(config.eval.top_k, num_classes), name="top_k_accuracy"),
                BalancedAccuracy(num_classes),  # its counts: the dashboards' confusion matrix
            ]
        },
    )
