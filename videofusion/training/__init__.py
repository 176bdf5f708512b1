"""Training: an experiment config + a run folder → checkpoints, TensorBoard logs and the final `model.keras`.

In: a config (`experiments/NAME.py`), the data it names (`data/`) and the model it describes
(`models/`). Out: a run folder (`run_folder.RunPaths`) that evaluation and serving read.

- `train`: strategy → data → model → fit → evaluate, each step its own function;
- `strategy`: `tf.distribute` under TensorFlow, `keras.distribution` under JAX; `compilation_cache`:
  JAX's persistent compilation cache (`train.compilation_cache`);
- `callbacks`: logs, checkpoints, backups for resuming, early stopping, the NaN guard;
  `dashboards`: TensorBoard's extra pages (speed, confusion, mistakes);
- `summary`: a config's model, parameters and FLOPs (`videofusion summary`).
"""
