"""Data: prepared TFRecord shards → `tf.data.Dataset`s of (features dict, label) for training and evaluation.

In: a prepared folder (read through `contract.prepared_folder` and `contract.record_schema`). Out:
batches keyed by `contract.tensors`, and the ops that serving repeats.

- `pipeline`: read → parse → sample → decode → preprocess, for training (`training_epochs`) and
  evaluation views;
- `transforms`: pure TensorFlow ops from decoded media to model inputs (frames, log-mel), shared with
  the SavedModel;
- `augment`: training augmentation drawn once per clip;
- `caption_tokenizer`: the WordPiece vocabulary of a run's captions and its tokenizer;
- `service`: the tf.data service's dispatcher and workers (`videofusion data-service`), and the training
  input made by them (`train.data_service`).
"""
