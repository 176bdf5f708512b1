"""Serving: a finished run → a versioned SavedModel for TF Serving, and video files → labels through it.

In: a run folder (`models.load_run`) and, for `predict`, video files decoded as `ingest` decodes them.
Out: `exports/NAME/VERSION/` (SavedModel with its labels) and JSON lines of predictions.

- `export`: the SavedModel and its version folder; `signatures`: its named signatures (frames + waveform
  [+ caption], serialized examples) with the training preprocessing inside;
- `wordpiece`: the caption tokenizer in core TensorFlow ops, so that TF Serving needs no extra ops;
- `predict`: `videofusion predict` over files.
"""
