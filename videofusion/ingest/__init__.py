"""Ingest: videos (a manifest, class folders or a public dataset's recipe) → sharded TFRecords and reports.

In: video files or URLs that PyAV decodes. Out: a prepared folder (`contract.prepared_folder`) whose
records follow `contract.record_schema`. Imports `contract` only, and never TensorFlow for local paths.

- `prepare`: plan, encode in worker processes, write shards atomically, resume (the local runner);
  `beam_runner`: the same plan on Apache Beam;
- `manifest` (inputs, splits, labels), `recipes/` (public datasets' annotation files → manifest rows);
- `media` (PyAV decoding), `clip_encoder` (decoded clips → JPEG frames and waveforms → records),
  `tfrecord_writer` (TFRecord framing);
- `demo_videos`: the generator of the demo data set (`videofusion demo-data`).
"""
