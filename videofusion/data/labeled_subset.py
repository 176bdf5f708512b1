"""`data.labeled_fraction`: the training clips whose labels a label-scarce experiment keeps.

Class-stratified and seeded: of each class's `n` labeled training clips, the `max(1, round(fraction ×
n))` with the smallest SHA-256 of `seed:clip key` keep their label (a clip's key is
`record_schema.clip_key`: its video's path and its start), the others are left out of `train`. The
choice depends only on the clips, the fraction and the seed — not on the shard layout, the order of
reading or the machine — so every run with the same three trains on the same clips, and a smaller
fraction keeps a subset of a larger one's clips. `train` writes the kept keys into the run folder
(`labeled_clips.txt`).

Example:

>>> keys = {0: ["a@0", "b@0", "c@0", "d@0"], 1: ["e@0", "f@0"]}
>>> kept = stratified_subset(keys, fraction=0.5, seed=0)
>>> sorted(len([k for k in kept if k in keys[label]]) for label in keys)
[1, 2]
"""

import hashlib
from typing import Dict, List

import tensorflow as tf

from videofusion.contract import prepared_folder, record_schema

_SCAN_BATCH = 1024


def labeled_train_keys(data_dir: str) -> Dict[int, List[str]]:
    """{label index: keys of the labeled train clips of that class} of the prepared folder `data_dir`,
    read from the records' context alone (no frame or audio is decoded)."""
    records = tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train"))
    identities = records.map(record_schema.parse_identity, num_parallel_calls=tf.data.AUTOTUNE).batch(_SCAN_BATCH)
    keys: Dict[int, List[str]] = {}
    for batch in identities.as_numpy_iterator():
        for label, filename, start in zip(batch[record_schema.LABEL_INDEX], batch[record_schema.FILENAME],
                                          batch[record_schema.START_US]):
            if label != record_schema.UNLABELED_INDEX:
                keys.setdefault(int(label), []).append(record_schema.clip_key(filename.decode("utf-8"), str(start)))
    return keys


def stratified_subset(keys: Dict[int, List[str]], fraction: float, seed: int) -> List[str]:
    """The kept keys (sorted) of `{label: keys}`: per class, `max(1, round(fraction × n))` of them, those
    with the smallest SHA-256 of `seed:key`."""
    if not 0 < fraction <= 1:
        raise ValueError(f"data.labeled_fraction={fraction} must be in (0, 1]")
    kept = []
    for class_keys in keys.values():
        ranked = sorted(set(class_keys), key=lambda key: hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest())
        kept += ranked[:max(1, round(fraction * len(ranked)))]
    return sorted(kept)


def labeled_subset(data_dir: str, fraction: float, seed: int) -> List[str]:
    """The keys of the training clips that keep their label (`stratified_subset` of `data_dir`'s)."""
    return stratified_subset(labeled_train_keys(data_dir), fraction, seed)
