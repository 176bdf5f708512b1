"""Retrieval quality and search cost: class retrieval in a supervised run's fused space and in a pretrained
run's modality spaces, on the demo and the appearance set; the approximate index against exact search.

For each set (`--sets`), with `experiments/demo.py` at 48 px and the product's command line:

1. data: the demo (`videofusion demo-data` 720 videos + `prepare`, as `make data`, into `--work_dir`
   unless `datasets/demo/records` is there: its picture and sound share nothing, the sound tells only the
   pitch), the appearance set (`appearance_set.py`: a digit shown as a glyph in 40 % of the clips, only
   sung in 40 %, both in 20 %; half its test clips in styles training never saw) and the agreement set
   (`agreement_set.py`: every clip shows and sings its digit, the direction only seen; 840 training
   clips, 20 classes), the last two prepared at 48 px;
2. runs, unless their model.keras is there: `supervised` (`videofusion train`, `--epochs`) and `pretrain`
   (`videofusion pretrain`, `--pretrain_epochs`; labels unused);
3. `videofusion embed --split train,test` of each run: the fused space of the supervised run, the audio
   and video spaces of the pretrained one;
4. class retrieval (`evaluation.retrieval.class_retrieval`): every test video a query against the training
   collection, a training video relevant when it has the query's label; recall@1, recall@5 and mAP, with
   their values under a random ranking (chance). Rows: `fused` whole clip → whole clip, and its frames
   only (the query's sound silenced, as `search --query-modality video` does) → whole clip; `pretrained`
   video → video, audio → video (the query's sound against the collection's pictures) and audio → audio.
   The appearance set's rows are also given on its test half in unseen styles (`held_out`).
5. The approximate index (`ann_measurement.py`): FAISS's recall@10 against exact search and the query
   latency at `--ann_sizes` vectors (64-d, clustered synthetic collection).

    .venv/bin/python benchmarks/bench_retrieval.py --output results/retrieval.md   # about 40 min on 2 cores

Figures go to the last line (one JSON object) and, with `--output`, a Markdown report.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
from typing import Dict, List, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import agreement_set  # noqa: E402
import ann_measurement  # noqa: E402
import appearance_set  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import fileio  # noqa: E402
from videofusion.contract import prepared_folder  # noqa: E402
from videofusion.evaluation import retrieval  # noqa: E402
from videofusion.serving import embed, embedders, embedding_folder  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(REPO, "experiments", "demo.py")
SHORT_SIDE = 48
SETS = ("demo", "appearance", "agreement")

_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/vf_retrieval", "Folder for the sets, runs and embeddings.")
_OUTPUT = flags.DEFINE_string("output", "", "Also write the report here (Markdown).")
_SETS = flags.DEFINE_list("sets", list(SETS), f"Sets to measure, of {', '.join(SETS)}.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs of the supervised runs.")
_PRETRAIN_EPOCHS = flags.DEFINE_integer("pretrain_epochs", 30, "Epochs of the pretrained runs.")
_ANN_SIZES = flags.DEFINE_list("ann_sizes", ["10000", "100000", "1000000"], "Collection sizes of the index rows.")


def cli(*args: str) -> None:
    """Runs `videofusion <args>` (its output shows here); raises if it failed."""
    if subprocess.run([sys.executable, "-m", "videofusion.cli", *args]).returncode != 0:
        raise RuntimeError(f"`videofusion {' '.join(args)}` failed")


def ensure_data(work_dir: str, name: str) -> str:
    """The prepared records of set `name` (generated and prepared where not done yet)."""
    if name == "demo" and fileio.isfile(os.path.join(REPO, "datasets/demo/records", prepared_folder.DATASET_FILE)):
        return os.path.join(REPO, "datasets/demo/records")
    raw, records = os.path.join(work_dir, name, "raw"), os.path.join(work_dir, name, "records")
    manifest = os.path.join(raw, "manifest.csv")
    if not os.path.isfile(manifest):
        if name == "demo":
            cli("demo-data", "--output", raw, "--num-videos", "720", "--seed", "0")
        elif name == "appearance":
            appearance_set.write_appearance_set(raw)
        else:
            agreement_set.write_agreement_set(raw, num_train=840)
    if not os.path.isfile(os.path.join(records, prepared_folder.DATASET_FILE)):
        cli("prepare", "--manifest", manifest, "--output", records, "--fps", "10", "--short-side", str(SHORT_SIDE))
    return records


def ensure_runs(work_dir: str, name: str, records: str, kinds=("supervised", "pretrain")) -> Dict[str, str]:
    """{"supervised": workdir, "pretrain": workdir} of set `name` (those of `kinds`), trained where not done yet."""
    runs = {kind: os.path.join(work_dir, name, "runs", kind) for kind in kinds}
    common = ["--config", EXPERIMENT, f"--config.data.dir={records}", "--config.train.validation_dashboards=false"]
    if "supervised" in runs and not os.path.isfile(os.path.join(runs["supervised"], "model.keras")):
        cli("train", *common, "--workdir", runs["supervised"], f"--config.train.epochs={_EPOCHS.value}")
    if "pretrain" in runs and not os.path.isfile(os.path.join(runs["pretrain"], "model.keras")):
        cli("pretrain", *common, "--workdir", runs["pretrain"], f"--config.pretrain.epochs={_PRETRAIN_EPOCHS.value}")
    return runs


def embedded(work_dir: str, name: str, run: str, records: str) -> embedding_folder.EmbeddingFolder:
    """The train and test splits of `records` embedded by `run` (`videofusion embed`; resumes, or skips if done)."""
    folder = os.path.join(work_dir, name, "embeddings", os.path.basename(run))
    cli("embed", "--model", run, "--data", records, "--split", "train,test", "--output", folder)
    return embedding_folder.EmbeddingFolder(folder)


def _split(collection: embedding_folder.EmbeddingFolder, split: str) -> np.ndarray:
    return np.array([i for i, row in enumerate(collection.rows) if row["split"] == split])


def frames_only_queries(run: str, records: str) -> Tuple[List[str], np.ndarray]:
    """(ids, fused vectors) of the test videos with their sound silenced: `search --query-modality video`."""
    embedder = embedders.load_embedder(run)
    ids, vectors = [], []
    for shard in prepared_folder.shard_files(records, "test"):
        videos = list(embed.shard_videos(shard, "test"))
        silent = [(row, [embedders.silenced(record) for record in clip_records]) for row, clip_records in videos]
        _, space = embed.average_records(silent, embedder.embed_records)
        ids += [row["id"] for row, _ in videos]
        vectors.append(space[embedders.FUSED])
    return ids, np.concatenate(vectors)


def held_out_ids(work_dir: str) -> set:
    """The appearance set's test videos in styles training never saw."""
    raw = os.path.join(work_dir, "appearance", "raw")
    return {path for path, (_, styles) in appearance_set.read_clip_types(raw).items() if styles == "held_out"}


def measure_set(work_dir: str, name: str) -> Dict[str, Dict]:
    """{row name: class-retrieval figures} of one set (rows `<space>_<query>_to_<gallery>[_held_out]`)."""
    records = ensure_data(work_dir, name)
    runs = ensure_runs(work_dir, name, records)
    figures: Dict[str, Dict] = {}
    subsets = {"": None}
    if name == "appearance":
        subsets["_held_out"] = held_out_ids(work_dir)
    fused = embedded(work_dir, name, runs["supervised"], records)
    silent_ids, silent = frames_only_queries(runs["supervised"], records)
    silent_row = {clip: row for row, clip in enumerate(silent_ids)}
    pretrained = embedded(work_dir, name, runs["pretrain"], records)
    for collection, rows in ((fused, (("fused", "fused", "clip_to_clip"),)),
                             (pretrained, (("video", "video", "pretrained_video_to_video"),
                                           ("audio", "video", "pretrained_audio_to_video"),
                                           ("audio", "audio", "pretrained_audio_to_audio")))):
        train, test = _split(collection, "train"), _split(collection, "test")
        labels = np.array([row["label"] for row in collection.rows])
        ids = [collection.rows[i]["id"] for i in test]
        for suffix, kept in subsets.items():
            chosen = test if kept is None else test[[i for i, clip in enumerate(ids) if clip in kept]]
            for query_space, gallery_space, row in rows:
                figures[row + suffix] = retrieval.class_retrieval(
                    collection.vectors(query_space)[chosen], labels[chosen],
                    collection.vectors(gallery_space)[train], labels[train])
            if collection is fused:
                order = [silent_row[collection.rows[i]["id"]] for i in chosen]
                figures["fused_frames_only_to_clip" + suffix] = retrieval.class_retrieval(
                    silent[order], labels[chosen], collection.vectors("fused")[train], labels[train])
    figures["runs"] = {kind: _run_summary(run) for kind, run in runs.items()}
    return figures


def _run_summary(run: str) -> Dict:
    config = fileio.read_json(os.path.join(run, "config.json"))
    metrics = os.path.join(run, "metrics.json")
    return {"epochs": config["pretrain"]["epochs"] if run.endswith("pretrain") else config["train"]["epochs"],
            "test_accuracy": fileio.read_json(metrics)["accuracy"] if os.path.isfile(metrics) else None}


ROW_NAMES = {
    "clip_to_clip": "supervised, fused: whole clip → whole clip",
    "fused_frames_only_to_clip": "supervised, fused: frames only → whole clip",
    "pretrained_video_to_video": "pretrained: video → video",
    "pretrained_audio_to_video": "pretrained: audio → video",
    "pretrained_audio_to_audio": "pretrained: audio → audio",
}


def report(figures: Dict) -> str:
    """The Markdown report of `figures`."""
    lines = ["# Retrieval benchmark", "",
             f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
             f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores, by `{' '.join(['python', *sys.argv])}` "
             "(`benchmarks/bench_retrieval.py`, whose docstring says what each row is).", "",
             "Class retrieval, test videos against the training collection (recall@1 / recall@5 / mAP; chance in "
             "brackets):", "",
             "| set | row | queries | recall@1 | recall@5 | mAP |", "|---|---|---|---|---|---|"]
    for name in SETS:
        for key, value in figures.get(name, {}).items():
            if key == "runs":
                continue
            base, held_out = key.removesuffix("_held_out"), key.endswith("_held_out")
            where = f"{name} (held-out styles)" if held_out else name
            lines.append(f"| {where} | {ROW_NAMES[base]} | {value['queries']} | "
                         + " | ".join(f"{value[m]:.3f} ({value['chance_' + m]:.3f})"
                                      for m in ("recall_at_1", "recall_at_5", "map")) + " |")
    lines += ["", "Runs: " + "; ".join(f"{name} {kind} {summary['epochs']} epochs"
                                       + (f", test accuracy {summary['test_accuracy']:.3f}"
                                          if summary["test_accuracy"] is not None else "")
                                       for name in SETS for kind, summary in figures.get(name, {}).get("runs",
                                                                                                       {}).items())]
    if "ann" in figures:
        lines += ["", "Search cost (`ann_measurement.py`: 64-d clustered synthetic vectors, one query at a time):",
                  "", ann_measurement.markdown_table(figures["ann"])]
    return "\n".join(lines) + "\n"


def main(_):
    figures: Dict = {}
    for name in _SETS.value:
        figures[name] = measure_set(_WORK_DIR.value, name)
        logging.info("%s: %s", name, json.dumps(figures[name]))
    if _ANN_SIZES.value:
        figures["ann"] = ann_measurement.measure(sizes=tuple(int(float(s)) for s in _ANN_SIZES.value),
                                                 candidates=("exact", "faiss_ivf"))
    if _OUTPUT.value:
        with fileio.atomic_open(_OUTPUT.value, "w", encoding="utf-8") as f:
            f.write(report(figures))
    print(json.dumps(figures, sort_keys=True, default=str))


if __name__ == "__main__":
    app.run(main)
