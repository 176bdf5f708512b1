"""Evaluation: a finished run + a split of its data → metrics, confusion matrices and reports.

In: a run folder (`models.load_run`) and its prepared data (`data.pipeline`'s evaluation views). Out:
`eval/<split>/metrics.json`, per-class reports and figures; tables over several runs.

- `evaluate`: views per video (clips × crops) averaged, accuracy, top-k, per-class metrics;
- `confusion`: confusion matrices counted and drawn;
- `report`: several runs' metrics as one Markdown table (`videofusion report`).
"""
