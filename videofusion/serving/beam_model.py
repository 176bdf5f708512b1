"""Beam's TensorFlow model handler for videofusion's models: RunInference over serialized records.

`model_handler` gives Beam's `TFModelHandlerTensor` (apache_beam.ml.inference.tensorflow_inference) with
two things of its own, both hooks that Beam provides:

- `load_model`: Beam's loads a model with `tf.keras.models.load_model`, which under Keras 3 opens only
  `.keras` files, not a SavedModel folder, and would give a Keras model without the export's
  `serve_examples` signature (decoding, views, mel). This one loads what the local runners load:
  `predict.Predictor` for `predict` (the SavedModel's `serve_examples`), `embedders.load_embedder` for
  `embed` (an export, a supervised or a pretrained run folder), so both runners run the same code.
- `inference_fn` (`infer_records`): the elements are scalar string tensors, each a serialized
  `SequenceExample` as `prepare` writes it; a batch is stacked into one `[n]` string tensor, as Beam's
  default function stacks tensors, and goes through the model in one call.

Batching is Beam's (`BatchElements`, `min_batch_size`/`max_batch_size`). The model is loaded once per
worker process and shared by its threads: RunInference's default, a `shared.Shared` handle
(`share_model_across_processes()` is false, as `large_model` and `model_copies` are left unset). The
`large_model` option would serve one model per machine to its processes through a proxy; it is not used.

Apache Beam is an optional extra, imported only inside functions (as everywhere in videofusion), so the
handler's class is made by `model_handler`; Beam pickles it by value (cloudpickle) with the pipeline.
Beam's TF handler imports tensorflow-hub, which the `beam` extra pins.

Example:

>>> handler = model_handler("exports/demo/1", load_classifier, max_batch_size=32)  # doctest: +SKIP
>>> keyed = apache_beam.ml.inference.base.KeyedModelHandler(handler)  # doctest: +SKIP
>>> records | RunInference(keyed)  # (key, scalar string tensor) → (key, PredictionResult)  # doctest: +SKIP
"""

from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from videofusion.contract import tensors
from videofusion.serving import embedders, predict

# What a handler's model is: serialized records → `{name: [records, ...]}` (one row per record).
RecordModel = Callable[[List[bytes]], Dict[str, np.ndarray]]


def load_classifier(model_dir: str) -> RecordModel:
    """An export's class probabilities per record (`serve_examples`' `probabilities`)."""
    predictor = predict.Predictor(model_dir)
    return lambda records: {tensors.PROBABILITIES: predictor.outputs(records)[tensors.PROBABILITIES]}


def load_embedder(model_path: str) -> RecordModel:
    """An export's or a run folder's vectors per record, in each of its spaces (`Embedder.embed_records`)."""
    return embedders.load_embedder(model_path).embed_records


def infer_records(model: RecordModel, batch: Sequence[tf.Tensor], inference_args: Dict[str, Any],
                  model_id: Optional[str] = None) -> List:
    """Beam's `inference_fn`: a batch of scalar string tensors → one `PredictionResult` per element, whose
    `inference` is `{name: that record's row}`."""
    from apache_beam.ml.inference.base import PredictionResult

    del inference_args  # the models take none
    records = list(tf.stack(batch).numpy())
    outputs = model(records)
    return [PredictionResult(example, {name: value[i] for name, value in outputs.items()}, model_id)
            for i, example in enumerate(batch)]


def model_handler(model_path: str, load: Callable[[str], RecordModel], max_batch_size: int):
    """A `TFModelHandlerTensor` of `model_path` whose model is `load(model_path)` (`load_classifier`,
    `load_embedder`), run by `infer_records` in batches of 1 to `max_batch_size` records."""
    from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor

    class RecordModelHandler(TFModelHandlerTensor):
        def load_model(self) -> RecordModel:
            return load(self._model_uri)

        def get_num_bytes(self, batch: Sequence[tf.Tensor]) -> int:
            """The records' bytes (Beam's own counts the size of the tensor objects)."""
            return sum(len(element.numpy()) for element in batch)

    return RecordModelHandler(model_path, inference_fn=infer_records, min_batch_size=1, max_batch_size=max_batch_size)
