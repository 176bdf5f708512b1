"""Contract: what ingest writes and every later stage reads, and the names they share. Imports no other stage.

In: nothing. Out: constants and small readers —

- `record_schema`: the TFRecord `SequenceExample` of one clip (DMVR/TF Model Garden keys), encoded
  without TensorFlow and parsed with it;
- `prepared_folder`: the prepared-data folder (shard names, `labels.txt`, `dataset.json`, `errors.jsonl`),
  `prepare`'s defaults and `videofusion info`'s summary;
- `tensors`: the keys of the model's input and output dicts and of the SavedModel's signatures;
- `modalities`: the modality names of `model.modalities`, and their parsing.
"""
