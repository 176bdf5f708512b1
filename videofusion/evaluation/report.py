"""`videofusion report`: the test metrics of several runs as one Markdown table (e.g. the ablation).

Beside accuracy and top-k, the table gives the accuracy of each part of the labels when every label is
made of the same number of `-`-separated parts (the demo's `kind-direction-pitch`): the share of videos
whose predicted class has the true class's part, read from the run's confusion matrix. That says what
a row has learnt even where its top-1 accuracy cannot: a model that sees one frame can know the kind
but not the direction, and picks among the four classes of the right kind by chance.

Example:

>>> print(ablation_table([]))
| experiment | modalities | video encoder | fusion | test accuracy | test top-k (k) | accuracy per label part | parameters |
|---|---|---|---|---|---|---|---|
"""

import os
from typing import List, Optional, Sequence

from videofusion import config as config_lib
from videofusion import fileio
from videofusion.contract import modalities
from videofusion.evaluation import evaluate

HEADER = ("| experiment | modalities | video encoder | fusion | test accuracy | test top-k (k) "
          "| accuracy per label part | parameters |")


def label_part_accuracy(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Optional[List[float]]:
    """For each `-`-separated part of the labels, the share of videos whose predicted label has the true
    label's part; None unless every label has the same number (≥ 2) of parts. `matrix[i][j]` counts the
    videos of class i predicted as j.

    >>> label_part_accuracy(["a-x", "a-y", "b-x"], [[1, 1, 0], [0, 0, 2], [0, 0, 1]])
    [0.6, 0.4]
    >>> label_part_accuracy(["a-x", "b"], [[1, 0], [0, 1]]) is None
    True
    """
    parts = [label.split("-") for label in labels]
    if len(parts[0]) < 2 or any(len(p) != len(parts[0]) for p in parts):
        return None
    total = sum(map(sum, matrix))
    return [sum(count for true, row in zip(parts, matrix) for predicted, count in zip(parts, row)
                if true[part] == predicted[part]) / total
            for part in range(len(parts[0]))]


def _part_cell(workdir: str, split: str) -> str:
    path = os.path.join(evaluate.eval_dir(workdir, split), evaluate.CONFUSION_JSON_FILE)
    if not os.path.isfile(path):
        return "–"
    confusion = fileio.read_json(path)
    accuracies = label_part_accuracy(confusion["labels"], confusion["matrix"])
    return " · ".join(f"{a:.2f}" for a in accuracies) if accuracies else "–"


def _row(workdir: str) -> str:
    metrics_path = os.path.join(workdir, evaluate.METRICS_FILE)
    if not os.path.isfile(metrics_path):
        raise FileNotFoundError(f"{metrics_path} not found: run `videofusion evaluate --workdir {workdir}`")
    metrics = fileio.read_json(metrics_path)
    model = config_lib.load_run_config(workdir).model
    encoder = model.video_encoder if modalities.VIDEO in model.modalities else "–"
    fusion = model.fusion if "," in model.modalities else "–"
    return (
        f"| {os.path.basename(os.path.normpath(workdir))} | {model.modalities} | {encoder} | {fusion} "
        f"| {metrics['accuracy']:.3f} | {metrics['top_k_accuracy']:.3f} ({metrics['top_k']}) "
        f"| {_part_cell(workdir, metrics.get('split', 'test'))} | {metrics.get('num_parameters', 0):,} |"
    )


def ablation_table(workdirs: List[str]) -> str:
    """One row per run, in the order given."""
    return "\n".join([HEADER, "|" + "---|" * 8] + [_row(w) for w in workdirs])
