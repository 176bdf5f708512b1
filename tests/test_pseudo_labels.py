"""Self-training (`train.pseudo_labels_from`): a trained run labels the training clips this run has no label
for, and the most confident of them are trained on with those labels."""

import csv
import os

import pytest
import tensorflow as tf

from videofusion.config import demo_config
from videofusion.contract import prepared_folder, record_schema
from videofusion.training import pseudo_labels, train


def _config(data_dir: str):
    config = demo_config("smoke")
    config.data.dir = data_dir
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    config.train.update(dict(jit_compile="false", validation_dashboards=False))
    return config


def _unlabeled_keys(data_dir: str) -> set:
    records = tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train"))
    identities = [record_schema.parse_identity(serialized) for serialized in records]
    return {record_schema.clip_key(i[record_schema.FILENAME].numpy().decode(), str(int(i[record_schema.START_US])))
            for i in identities if int(i[record_schema.LABEL_INDEX]) == record_schema.UNLABELED_INDEX}


@pytest.fixture(scope="module")
def teacher(agreeing_records, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("teacher") / "run")
    train.train(_config(agreeing_records), workdir)
    return workdir


def test_the_teachers_most_confident_labels_join_the_labeled_clips(teacher, agreeing_records, tmp_path):
    config = _config(agreeing_records)
    config.train.update(dict(pseudo_labels_from=teacher, pseudo_label_fraction=0.5))
    train.train(config, str(tmp_path / "student"))
    with open(tmp_path / "student" / pseudo_labels.PSEUDO_LABELS_FILE, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    unlabeled = _unlabeled_keys(agreeing_records)
    assert len(unlabeled) == 24 and len(rows) == 12  # half of the clips without a label
    assert {row["clip"] for row in rows} <= unlabeled
    confidences = [float(row["confidence"]) for row in rows]
    assert confidences == sorted(confidences, reverse=True)
    scored = {key: (label, confidence) for key, label, confidence in pseudo_labels.teacher_scores(
        teacher, agreeing_records, skip=set())}
    labels = prepared_folder.read_labels(os.path.join(agreeing_records, prepared_folder.LABELS_FILE))
    for row in rows:  # the teacher's class for that clip, as it scores it on its own
        assert row["label"] == labels[scored[row["clip"]][0]]
    most_confident = sorted(unlabeled, key=lambda key: -scored[key][1])[:12]
    assert {row["clip"] for row in rows} == set(most_confident)


def test_a_teacher_without_a_model_or_with_other_labels_is_refused(smoke_run, agreeing_records, tmp_path):
    labels = prepared_folder.read_labels(os.path.join(agreeing_records, prepared_folder.LABELS_FILE))
    with pytest.raises(pseudo_labels.PseudoLabelError, match="train.pseudo_labels_from=.*no trained run"):
        pseudo_labels.check_teacher(str(tmp_path), labels)
    with pytest.raises(pseudo_labels.PseudoLabelError, match="labels differ"):
        pseudo_labels.check_teacher(smoke_run, labels)  # the demo's 12 classes against the agreeing set's 8
