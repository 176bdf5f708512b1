"""LiteRT on a device: parity and cost of the float32, float16 and int8 models against the SavedModel.

For each set — the demo (`--demo_run`, trained by `make demo`, on its test split), the appearance set
(`bench_retrieval.ensure_data`/`ensure_runs`: generated, prepared and trained in `--work_dir` where
missing) and any `--runs name=RUN[@DATA]` (e.g. a cheaper edge configuration) — the run is exported both
ways (`videofusion export`, `--format savedmodel|litert`) and measured on every test clip:

- top-1 agreement with the SavedModel (`serve_examples` on the clip's record) and test accuracy;
- model size in MB (the SavedModel: its folder);
- per-clip latency on 1 CPU core (the process pinned to one core with `os.sched_setaffinity`, TensorFlow's
  intra- and inter-op threads 1, LiteRT's `num_threads=1`), median over `--latency_clips` clips: `model`
  is the model on the clip's ready views (the SavedModel's model call as a `tf.function` on the same
  arrays), `clip` also decodes the clip's JPEGs and cuts the views (SavedModel: `serve_examples` on the
  record; LiteRT: OpenCV + `edge_views.py`).

    .venv/bin/python benchmarks/bench_edge.py --output results/edge.md   # about 10 min on 2 cores

Figures go to the last line (one JSON object) and, with `--output`, a Markdown report.
"""

import json
import os
import statistics
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # 1 core, before TensorFlow starts its pools

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)  # before anything starts TensorFlow's runtime
tf.config.threading.set_inter_op_parallelism_threads(1)

import bench_retrieval  # noqa: E402  (defines --work_dir, --output, --epochs)
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import fileio, models  # noqa: E402
from videofusion.contract import prepared_folder, record_schema, tensors  # noqa: E402
from videofusion.data import pipeline  # noqa: E402
from videofusion.serving import edge_views, embedders, export, litert_export, litert_model, litert_predict  # noqa: E402

_DEMO_RUN = flags.DEFINE_string("demo_run", os.path.join(bench_retrieval.REPO, "runs", "demo"), "The demo's run.")
_DEMO_DATA = flags.DEFINE_string("demo_data", os.path.join(bench_retrieval.REPO, "datasets", "demo", "records"),
                                 "The demo's prepared records.")
_RUNS = flags.DEFINE_list("runs", [], "Extra rows: name=RUN or name=RUN@DATA (default DATA: the run's data.dir).")
_LATENCY_CLIPS = flags.DEFINE_integer("latency_clips", 20, "Clips timed per model.")
MODELS = ("savedmodel", *litert_model.VARIANTS)


def runs_to_measure() -> Dict[str, Tuple[str, str]]:
    """{name: (run folder, prepared records)} of the demo, the appearance set and `--runs`."""
    records = bench_retrieval.ensure_data(bench_retrieval._WORK_DIR.value, "appearance")
    appearance = bench_retrieval.ensure_runs(bench_retrieval._WORK_DIR.value, "appearance", records,
                                             kinds=("supervised",))["supervised"]
    rows = {"demo": (_DEMO_RUN.value, _DEMO_DATA.value), "appearance": (appearance, records)}
    for entry in _RUNS.value:
        name, _, location = entry.partition("=")
        run, _, data = location.partition("@")
        rows[name] = (run, data or models.load_run(run)[0].data.dir)
    return rows


def exports(name: str, run: str, data: str) -> Tuple[str, str]:
    """(SavedModel, LiteRT folder) of `run`, exported into `--work_dir`/edge/`name`/<hash of its model.keras>
    unless there already (a run trained again gets exports of its own)."""
    model_hash = embedders.file_fingerprint(os.path.join(run, "model.keras"))
    root = os.path.join(bench_retrieval._WORK_DIR.value, "edge", name, model_hash)
    saved, lite = os.path.join(root, "savedmodel", "1"), os.path.join(root, "litert", "1")
    if not os.path.isdir(saved):
        export.export(run, os.path.dirname(saved), version=1)
    if not os.path.isdir(lite):
        litert_export.export_litert(run, os.path.dirname(lite), version=1, data_dir=data)
    return saved, lite


def test_clips(run: str, data: str) -> List[dict]:
    """Every test clip of `data`: its record, label, JPEGs, waveform and evaluation views (the pipeline's)."""
    config, _, model = models.load_run(run)
    options = pipeline.PipelineOptions.from_config(config, model=model)
    clips = []
    for record in tf.data.TFRecordDataset(prepared_folder.shard_files(data, "test")):
        parsed = record_schema.parse_clip(record)
        if int(parsed[record_schema.LABEL_INDEX]) < 0:
            continue
        views, labels = pipeline.eval_examples(record, tf.constant(0, tf.int64), options)
        clips.append({"record": record.numpy(), "label": int(labels[0]),
                      "jpegs": parsed[record_schema.IMAGES].numpy().tolist(),
                      "waveform": parsed[record_schema.WAVEFORM].numpy(),
                      "views": {key: views[key].numpy() for key in litert_model.INPUTS}})
    return clips


def _median_ms(function, clips: List[dict]) -> float:
    function(clips[0])  # warm-up
    times = []
    for clip in clips:
        start = time.perf_counter()
        function(clip)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def folder_mb(path: str) -> float:
    return round(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 1e6, 3)


def measure_savedmodel(run: str, saved: str, clips: List[dict]) -> Tuple[np.ndarray, Dict]:
    """(probabilities `[clips, classes]` from `serve_examples`, the row's figures)."""
    serve = tf.saved_model.load(saved).signatures["serve_examples"]
    probabilities = np.stack([serve(examples=tf.constant([c["record"]]))[tensors.PROBABILITIES].numpy()[0]
                              for c in clips])
    model = models.load_run(run)[2]
    call = tf.function(lambda views: model({k: views[k] for k in model.input}, training=False))
    timed = clips[:_LATENCY_CLIPS.value]
    return probabilities, {
        "size_mb": folder_mb(saved),
        "model_ms": _median_ms(lambda c: call({k: tf.constant(v) for k, v in c["views"].items()}), timed),
        "clip_ms": _median_ms(lambda c: serve(examples=tf.constant([c["record"]])), timed),
    }


def measure_litert(lite: str, variant: str, clips: List[dict]) -> Tuple[np.ndarray, Dict]:
    """(probabilities `[clips, classes]` on the pipeline's views, the row's figures)."""
    model = litert_model.LiteRTModel(lite, variant, num_threads=1)
    probabilities = np.stack([model.probabilities(c["views"]) for c in clips])

    def whole_clip(clip):
        frames = [litert_predict.decode_jpeg(jpeg) for jpeg in clip["jpegs"]]
        views = edge_views.eval_views(len(frames), lambda indices: np.stack([frames[i] for i in indices]),
                                      clip["waveform"], model.view_spec)
        return model.probabilities(views)

    timed = clips[:_LATENCY_CLIPS.value]
    return probabilities, {
        "size_mb": round(os.path.getsize(model.path) / 1e6, 3),
        "model_ms": _median_ms(lambda c: model.probabilities(c["views"]), timed),
        "clip_ms": _median_ms(whole_clip, timed),
    }


def measure_set(name: str, run: str, data: str) -> Dict[str, Dict]:
    saved, lite = exports(name, run, data)
    clips = test_clips(run, data)
    labels = np.array([c["label"] for c in clips])
    reference, rows = None, {}
    for kind in MODELS:
        probabilities, row = (measure_savedmodel(run, saved, clips) if kind == "savedmodel"
                              else measure_litert(lite, kind, clips))
        reference = probabilities if reference is None else reference
        row.update(clips=len(clips), accuracy=round(float((probabilities.argmax(1) == labels).mean()), 4),
                   top1_agreement=round(float((probabilities.argmax(1) == reference.argmax(1)).mean()), 4),
                   max_abs_diff=float(np.abs(probabilities - reference).max()))
        rows[kind] = row
        logging.info("%s %s: %s", name, kind, row)
    return rows


def report(figures: Dict) -> str:
    lines = ["# LiteRT on a device (`benchmarks/bench_edge.py`)", "",
             "Per test clip, 1 CPU core (1 thread); `model`: the model on the clip's ready views; `clip`: also "
             "decoding its JPEGs and cutting the views.", "",
             "| set | model | size MB | top-1 agreement | accuracy | max abs diff | model ms | clip ms |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in figures.items():
        for kind, row in rows.items():
            lines.append(f"| {name} | {kind} | {row['size_mb']:.2f} | {row['top1_agreement']:.3f} | "
                         f"{row['accuracy']:.3f} | {row['max_abs_diff']:.1e} | {row['model_ms']:.1f} | "
                         f"{row['clip_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main(_):
    figures = {name: measure_set(name, run, data) for name, (run, data) in runs_to_measure().items()}
    if bench_retrieval._OUTPUT.value:
        with fileio.atomic_open(bench_retrieval._OUTPUT.value, "w", encoding="utf-8") as f:
            f.write(report(figures))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
