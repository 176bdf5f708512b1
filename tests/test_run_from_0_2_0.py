"""A run trained by videofusion 0.2.0, before the modules moved into stage folders, still evaluates, exports
and predicts: its `model.keras` names the old module paths (`videofusion.models.recipe`, ...) and its
`config.json` the fields of that release.

`tests/fixtures/run_v0_2_0/` holds the run's model, config and labels: the smoke config of
`experiments/demo.py` (LSTM video encoder, cross-attention fusion, video + audio), one epoch on data
prepared as `demo_records` prepares it (36 demo videos of 32 px, seed 0, 2 shards per split).
"""

import json
import os
import shutil

import numpy as np
import pytest

from videofusion import config as config_lib
from videofusion import models, run_folder
from videofusion.evaluation import evaluate
from videofusion.serving import export, predict

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "run_v0_2_0")


@pytest.fixture(scope="module")
def old_run(tmp_path_factory, demo_records):
    """A copy of the fixture run whose `data.dir` points at this session's `demo_records`."""
    workdir = str(tmp_path_factory.mktemp("old_run") / "run")
    shutil.copytree(FIXTURE, workdir)
    path = os.path.join(workdir, config_lib.RUN_CONFIG_FILE)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    assert config["data"]["dir"] == "/tmp/legacy/records"  # where 0.2.0 trained it
    config["data"]["dir"] = demo_records
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    return workdir


def test_an_old_run_loads_evaluates_exports_and_predicts(old_run, demo_raw, tmp_path):
    config, labels, model = models.load_run(old_run)
    assert labels == run_folder.load_labels(old_run) and len(labels) == 12
    assert (config.model.video_encoder, config.model.fusion) == ("lstm", "cross_attention")
    losses = model.loss.values() if isinstance(model.loss, dict) else [model.loss]
    assert {type(loss).__name__ for loss in losses} == {"SmoothedCrossentropy"}  # old videofusion.models.recipe

    metrics = evaluate.evaluate(old_run, "test")
    assert metrics["num_examples"] == 12 and 0.0 <= metrics["accuracy"] <= 1.0

    exported = export.export(old_run, str(tmp_path / "exports"))
    assert os.path.basename(exported) == "1"
    video = os.path.join(os.path.dirname(demo_raw), "videos", "00002_disk-right-low.mp4")
    (result,) = predict.predict(exported, [video], top_k=3)
    assert result["path"] == video and [entry["label"] in labels for entry in result["top_k"]] == [True] * 3
    scores = [entry["score"] for entry in result["top_k"]]
    assert scores == sorted(scores, reverse=True) and 0.0 < sum(scores) <= 1.0 + 1e-6
    assert np.isfinite(scores).all()
