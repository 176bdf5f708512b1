"""Serving: a finished run → a SavedModel for TF Serving or LiteRT models for devices; videos and live streams →
labels, embeddings and searches.

In: a run folder (`models.load_run`, or a `pretrain` run for its modality spaces) or an export, and video
files decoded as `ingest` decodes them, or prepared shards. Out: `exports/NAME/VERSION/` (SavedModel with
its labels), LiteRT folders (`.tflite` variants and `model.json`), JSON lines of predictions (per video,
or per window of a live stream), embeddings folders and JSON lines of nearest videos.

- `export`: the SavedModel and its version folder; `signatures`: its named signatures (frames + waveform
  [+ caption], serialized examples) with the training preprocessing inside;
- `wordpiece`: the caption tokenizer in core TensorFlow ops, so that TF Serving needs no extra ops;
- `predict`: `videofusion predict` over files;
- `embedders`: a model → vectors per space (`fused`; `audio`, `video`, `text` of a pretrained run);
  `embed`: `videofusion embed` (planned parts, resumable); `embedding_folder`: the folder it writes;
- `vector_index`: exact and FAISS nearest neighbours by cosine; `search`: `videofusion search`;
- `beam_inference`, `beam_model`: `predict` and `embed` on Apache Beam (RunInference, TF model handler);
- `litert_export`: `export --format litert`; `litert_model`, `edge_views`, `litert_predict`: LiteRT models,
  their views in NumPy and `predict` through them, without TensorFlow; `results`: predict's JSON results;
- `stream`, `live_source`, `live_buffer`: `videofusion stream` (decoder thread, ring buffer, windows).
"""
