"""`videofusion report`: the test metrics of several runs as one Markdown table (e.g. the ablation).

Example:

>>> print(ablation_table([]))
| experiment | modalities | video encoder | fusion | test accuracy | test top-k (k) | parameters |
|---|---|---|---|---|---|---|
"""

import os
from typing import List

from videofusion import config as config_lib, evaluate, fileio, names

HEADER = "| experiment | modalities | video encoder | fusion | test accuracy | test top-k (k) | parameters |"


def _row(workdir: str) -> str:
    metrics_path = os.path.join(workdir, evaluate.METRICS_FILE)
    if not os.path.isfile(metrics_path):
        raise FileNotFoundError(f"{metrics_path} not found: run `videofusion evaluate --workdir {workdir}`")
    metrics = fileio.read_json(metrics_path)
    model = config_lib.load_run_config(workdir).model
    encoder = model.video_encoder if names.VIDEO in model.modalities else "–"
    fusion = model.fusion if "," in model.modalities else "–"
    return (
        f"| {os.path.basename(os.path.normpath(workdir))} | {model.modalities} | {encoder} | {fusion} "
        f"| {metrics['accuracy']:.3f} | {metrics['top_k_accuracy']:.3f} ({metrics['top_k']}) "
        f"| {metrics.get('num_parameters', 0):,} |"
    )


def ablation_table(workdirs: List[str]) -> str:
    """One row per run, in the order given."""
    return "\n".join([HEADER, "|" + "---|" * 7] + [_row(w) for w in workdirs])
