"""`train.pseudo_labels_from`: self-training. A trained run, the teacher, labels the training clips that
this run has no label for; the most confident of them join the labeled clips.

The teacher scores every such clip (the unlabeled ones and, with `data.labeled_fraction`, those whose
label is left out) the way `evaluate` does — its own preprocessing, the mean softmax of its evaluation
views — and the `train.pseudo_label_fraction` of them with the highest top probability are trained
on with the teacher's class (hard pseudo-labels, as Noisy Student and FixMatch use). The teacher may
read other modalities than the student: a fused run, which hears what the picture does not show,
teaching a video-only one is cross-modal distillation; a run teaching its own next round is plain
self-training. `train` writes the chosen clips, their labels and the teacher's confidence into
`WORKDIR/pseudo_labels.csv`.

Measured on the agreement set (`benchmarks/bench_pretrain.py`, README "Few labels"), the fused model
fine-tuned from `pretrain` as the teacher, half of the other clips pseudo-labeled: with 10 % of the
labels, the video-only student rose from 0.47 (fine-tuned alone) to 0.64, the fused one from 0.505 to
0.59; with 5 %, from 0.345 to 0.465 and from 0.38 to 0.50.

Example:

>>> chosen = most_confident([("a@0", 1, 0.9), ("b@0", 0, 0.4), ("c@0", 2, 0.7)], fraction=0.5)
>>> chosen
[('a@0', 1, 0.9), ('c@0', 2, 0.7)]
"""

import csv
import math
import os
from typing import Iterable, List, Tuple

import numpy as np
import tensorflow as tf

from videofusion import fileio, models, progress, run_folder
from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import caption_tokenizer, pipeline

PSEUDO_LABELS_FILE = "pseudo_labels.csv"
_BATCH = 32

Scored = Tuple[str, int, float]  # clip key, the teacher's class, its probability


class PseudoLabelError(ValueError):
    """The teacher run cannot label this run's clips."""


def most_confident(scored: Iterable[Scored], fraction: float) -> List[Scored]:
    """The `ceil(fraction × n)` most confident of `n` scored clips, most confident first (ties: by key)."""
    ranked = sorted(scored, key=lambda item: (-item[2], item[0]))
    return ranked[:math.ceil(fraction * len(ranked))]


def teacher_scores(teacher_dir: str, data_dir: str, skip: set) -> List[Scored]:
    """The teacher run's class and probability for each train clip of `data_dir` whose key is not in `skip`."""
    config, _, model = models.load_run(teacher_dir)
    options = pipeline.PipelineOptions.from_config(
        config, caption_tokenizer.tokenizer_for_run(config, teacher_dir), model)
    inputs = list(model.input)

    def views_and_key(serialized):
        features, _ = pipeline.eval_examples(serialized, tf.constant(0, tf.int64), options)
        return {k: features[k] for k in inputs}, pipeline.clip_key_of(record_schema.parse_identity(serialized))

    records = tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train"))
    batches = records.map(views_and_key, num_parallel_calls=tf.data.AUTOTUNE).batch(_BATCH)
    scored = []
    for features, keys in progress.track(batches, desc="pseudo-labels", unit="batch"):
        views = int(features[inputs[0]].shape[1])
        flat = {k: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)) for k, v in features.items()}
        per_view = np.asarray(model.predict_on_batch(flat)[tensors.CLASSES])
        probabilities = per_view.reshape(-1, views, per_view.shape[-1]).mean(axis=1)
        for key, p in zip(keys.numpy(), probabilities):
            key = key.decode("utf-8")
            if key not in skip:
                scored.append((key, int(p.argmax()), float(p.max())))
    return scored


def write_csv(path: str, chosen: List[Scored], labels: List[str]) -> None:
    """`key,label,confidence` per pseudo-labeled clip (atomically)."""
    with fileio.atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "label", "confidence"])
        writer.writerows((key, labels[label], f"{confidence:.4f}") for key, label, confidence in chosen)


def check_teacher(teacher_dir: str, labels: List[str]) -> None:
    """Refuses (`PseudoLabelError`) a teacher that is not a trained run with this run's labels."""
    where = f"train.pseudo_labels_from={teacher_dir}"
    paths = run_folder.RunPaths(teacher_dir)
    if not os.path.isfile(paths.model) or not os.path.isfile(paths.labels):
        raise PseudoLabelError(f"{where}: no trained run there (model.keras and labels.txt); train it first")
    theirs = run_folder.load_labels(teacher_dir)
    if theirs != list(labels):
        raise PseudoLabelError(f"{where}: its {len(theirs)} labels differ from this run's {len(labels)}: "
                               "the teacher must be trained on the same classes")
