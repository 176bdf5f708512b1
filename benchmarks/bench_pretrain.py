"""Does pretraining on unlabeled clips pay? Test accuracy with few labels, from scratch and from `pretrain`.

On the agreement set (`agreement_set.py`: 20 classes, digit × direction; the digit both shown and sung,
the direction only seen; test clips new instances), with `experiments/demo.py` at 48 px, everything
through the product's command line:

1. `pretrain`: `videofusion pretrain` on all training clips, labels unused (`--pretrain_epochs`); its
   audio→video and video→audio recall@1 / @5 on the test clips (chance 1/N) from the saved model; and
   `pretrain_random`: the same model pretrained for 0 epochs (random encoders), for the probe below.
2. For each `--fractions` value f (`data.labeled_fraction`): `video` (`model.modalities=video`) and
   `fused` (video and audio), each `scratch` (random start) and `finetuned` (`model.init_from` the
   pretrained run, `train.backbone_frozen_epochs` 2 of them frozen, then at
   `train.backbone_learning_rate_scale` 0.3); `--epochs` epochs at f = 1, `--few_label_epochs` below.
3. `selftrained`, at each fraction below 1: `video` and `fused` fine-tuned as above, with the labels
   of the other training clips from the `fused_finetuned` row of that fraction (`train.pseudo_labels_from`,
   its most confident half: `train.pseudo_label_fraction` 0.5).
4. `probe`: at each fraction, the linear probe (`train.linear_probe`: encoders frozen, concat fusion, only
   the heads trained) on the pretrained encoders and on the random ones.

Every row is evaluated on the test split (`videofusion evaluate`; its metrics.json's accuracy). The goal
(issue 21): with 10 % of the labels, fine-tuning closes at least half of the gap between scratch at 10 %
and scratch at 100 %, for video and for fused; the probe on pretrained encoders beats the one on
random encoders by a wide margin. `gap_closed_<modality>_<fraction>` reports that share for the fine-tuned
rows, `gap_closed_<modality>_selftrained_<fraction>` for the self-trained ones.

Steps, under `--work_dir`: `raw/` (the set, unless its manifest is there), `records/` (`prepare --fps 10
--short-side 48`, unless done), `runs/<row>/`. Figures go to the last line (JSON) and, with `--output`,
a Markdown table.

    .venv/bin/python benchmarks/bench_pretrain.py --output results/pretrain.md   # 34 minutes on 2 Xeon cores
    .venv/bin/python benchmarks/bench_pretrain.py --num_train 100 --pretrain_epochs 2 --epochs 1 \\
        --few_label_epochs 1 --fractions 0.5 --work_dir /tmp/vf_pretrain_smoke   # smoke run
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import agreement_set  # noqa: E402
import keras  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import config as config_lib  # noqa: E402
from videofusion import fileio  # noqa: E402
from videofusion.contract import prepared_folder  # noqa: E402
from videofusion.data import pipeline  # noqa: E402
from videofusion.evaluation import evaluate  # noqa: E402
from videofusion.run_folder import RunPaths  # noqa: E402
from videofusion.training import pretrain  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(REPO, "experiments", "demo.py")
IMAGE_SIZE = 48
MODALITIES = {"video": "video", "fused": "video,audio"}

_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/vf_pretrain", "Folder for the set, the records and the runs.")
_OUTPUT = flags.DEFINE_string("output", "", "Also write the table here (Markdown).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 840, "Training clips of the set (42 per class at 840).")
_PRETRAIN_EPOCHS = flags.DEFINE_integer("pretrain_epochs", 50, "Epochs of `videofusion pretrain`.")
_EPOCHS = flags.DEFINE_integer("epochs", 8, "Training epochs of the rows with every label.")
_FEW_LABEL_EPOCHS = flags.DEFINE_integer("few_label_epochs", 25, "Training epochs of the rows with fewer labels.")
_FRACTIONS = flags.DEFINE_list("fractions", ["0.05", "0.1", "1.0"], "data.labeled_fraction values.")
_PRETRAIN_CONFIG = flags.DEFINE_list(
    "pretrain_config", [], "Config overrides of the `pretrain` run, e.g. pretrain.views_per_clip=1 (the variant "
    "measured; the experiment's settings by default).")


def cli(*args: str) -> None:
    """Runs `videofusion <args>` (its output shows here); raises if it failed."""
    if subprocess.run([sys.executable, "-m", "videofusion.cli", *args]).returncode != 0:
        raise RuntimeError(f"`videofusion {' '.join(args)}` failed")


def ensure_data(work_dir: str, num_train: int) -> str:
    """The prepared agreement set under `work_dir` (generated and prepared where not done yet)."""
    raw, records = os.path.join(work_dir, "raw"), os.path.join(work_dir, "records")
    manifest = os.path.join(raw, "manifest.csv")
    if not os.path.isfile(manifest):
        agreement_set.write_agreement_set(raw, num_train=num_train)
    if not os.path.isfile(os.path.join(records, prepared_folder.DATASET_FILE)):
        cli("prepare", "--manifest", manifest, "--output", records, "--fps", "10", "--short-side", str(IMAGE_SIZE))
    return records


def common_flags(records: str) -> List[str]:
    return ["--config", EXPERIMENT, f"--config.data.dir={records}", f"--config.data.image_size={IMAGE_SIZE}",
            "--config.train.validation_dashboards=false"]


def test_retrieval(run_dir: str, records: str) -> Dict[str, float]:
    """Cross-modal recall@1 / @5 of a pretrained run's saved model on the test clips."""
    config = config_lib.load_run_config(run_dir)
    options = pipeline.PipelineOptions.from_config(config)
    options = pipeline.PipelineOptions(**{**options.__dict__, "clips": pipeline.ALL_CLIPS})
    test = pipeline.make_dataset(records, "test", options, config.eval.batch_size, training=False)
    callback = pretrain.RetrievalValidation(test, ["audio", "video"])
    callback.set_model(keras.models.load_model(RunPaths(run_dir).model, compile=False))
    callback.on_train_begin()
    return callback.recalls()


def train_row(name: str, records: str, runs: str, fraction: float, extra: List[str]) -> float:
    """Trains and evaluates one row; its test accuracy."""
    run_dir = os.path.join(runs, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    epochs = _EPOCHS.value if fraction >= 1 else _FEW_LABEL_EPOCHS.value
    start = time.perf_counter()
    cli("train", *common_flags(records), "--workdir", run_dir, f"--config.train.epochs={epochs}",
        f"--config.data.labeled_fraction={fraction}", *extra)
    cli("evaluate", "--workdir", run_dir, "--split", "test")
    with open(os.path.join(run_dir, evaluate.METRICS_FILE), encoding="utf-8") as f:
        metrics = json.load(f)
    factors = factor_accuracies(metrics)
    logging.info("%s: test accuracy %.3f, digit %.3f, direction %.3f (%.0f s)", name, metrics["accuracy"],
                 factors["digit"], factors["direction"], time.perf_counter() - start)
    return {"accuracy": metrics["accuracy"], **factors}


def factor_accuracies(metrics: Dict) -> Dict[str, float]:
    """The share of test clips whose predicted class has the right digit, and the right direction, from an
    evaluation's confusion matrix (labels `<digit>-<direction>`).

    >>> factor_accuracies({"labels": ["1-left", "2-left", "1-right"], "confusion_matrix": [[1, 1, 0], [0, 0, 0],
    ...                    [2, 0, 0]]})
    {'digit': 0.75, 'direction': 0.5}
    """
    labels = [label.split("-") for label in metrics["labels"]]
    matrix = metrics["confusion_matrix"]
    total = sum(map(sum, matrix))
    return {factor: sum(count for i, row in enumerate(matrix) for j, count in enumerate(row)
                        if labels[i][axis] == labels[j][axis]) / total
            for axis, factor in enumerate(("digit", "direction"))}


def add_row(figures: Dict, row: str, measured: Dict[str, float]) -> None:
    """`figures[row]` = the row's accuracy; `figures[row + "_digit"]`, `[row + "_direction"]` its factors'."""
    figures[row] = measured["accuracy"]
    figures.update({f"{row}_{factor}": round(measured[factor], 3) for factor in ("digit", "direction")})


def run(work_dir: str) -> Dict:
    records = ensure_data(work_dir, _NUM_TRAIN.value)
    runs = os.path.join(work_dir, "runs")
    figures: Dict = {"classes": len(agreement_set.LABELS), "pretrain_config": _PRETRAIN_CONFIG.value,
                     "test_clips": prepared_folder.read_dataset_info(records)[prepared_folder.COUNTS]["test"]}
    pretrained, random = os.path.join(runs, "pretrain"), os.path.join(runs, "pretrain_random")
    for run_dir, epochs in ((pretrained, _PRETRAIN_EPOCHS.value), (random, 0)):
        shutil.rmtree(run_dir, ignore_errors=True)
        start = time.perf_counter()
        cli("pretrain", *common_flags(records), "--workdir", run_dir, f"--config.pretrain.epochs={epochs}",
            *(f"--config.{override}" for override in _PRETRAIN_CONFIG.value))
        figures[f"{os.path.basename(run_dir)}_s"] = round(time.perf_counter() - start)
        figures.update({f"{os.path.basename(run_dir)}_test_{key}": value
                        for key, value in test_retrieval(run_dir, records).items()})
    figures["retrieval_chance_at_1"] = round(1 / figures["test_clips"], 4)
    finetune = [f"--config.model.init_from={pretrained}", "--config.train.backbone_frozen_epochs=2",
                "--config.train.backbone_learning_rate_scale=0.3"]
    for fraction in map(float, _FRACTIONS.value):
        for modality, modalities in MODALITIES.items():
            for start, extra in (("scratch", []), ("finetuned", finetune)):
                add_row(figures, f"{modality}_{start}_{fraction:g}", train_row(
                    f"{modality}_{start}_{fraction:g}", records, runs, fraction,
                    [f"--config.model.modalities={modalities}", *extra]))
        if fraction < 1:  # self-training: the fused fine-tuned row labels the clips whose label is left out
            teacher = os.path.join(runs, f"fused_finetuned_{fraction:g}")
            for modality, modalities in MODALITIES.items():
                add_row(figures, f"{modality}_selftrained_{fraction:g}", train_row(
                    f"{modality}_selftrained_{fraction:g}", records, runs, fraction,
                    [f"--config.model.modalities={modalities}", *finetune,
                     f"--config.train.pseudo_labels_from={teacher}"]))
        for encoders, source in (("pretrained", pretrained), ("random", random)):
            add_row(figures, f"probe_{encoders}_{fraction:g}", train_row(
                f"probe_{encoders}_{fraction:g}", records, runs, fraction,
                [f"--config.model.init_from={source}", "--config.train.linear_probe=true",
                 "--config.model.fusion=concat"]))
    fractions = list(map(float, _FRACTIONS.value))
    for few in (f for f in fractions if f < 1 and 1.0 in fractions):
        for modality in MODALITIES:
            gap = figures[f"{modality}_scratch_1"] - figures[f"{modality}_scratch_{few:g}"]
            for start, suffix in (("finetuned", ""), ("selftrained", "_selftrained")):
                gained = figures[f"{modality}_{start}_{few:g}"] - figures[f"{modality}_scratch_{few:g}"]
                figures[f"gap_closed_{modality}{suffix}_{few:g}"] = round(gained / gap, 3) if gap > 0 else None
    return figures


ROWS = ("video_scratch", "video_finetuned", "video_selftrained", "fused_scratch", "fused_finetuned",
        "fused_selftrained", "probe_pretrained", "probe_random")


def table(figures: Dict) -> str:
    """The Markdown report of `figures`."""
    fractions = sorted({float(key.split("_")[2]) for key in figures if key.startswith("video_scratch_")})
    lines = [
        "# Pretraining benchmark",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.processor() or 'CPU'}"
        f", {os.cpu_count()} cores, by `{' '.join(['python', *sys.argv])}` (`benchmarks/bench_pretrain.py`, whose "
        "docstring says what each row is).",
        "",
        f"Test accuracy on the agreement set ({figures['classes']} classes, chance {1 / figures['classes']:.3f}; "
        f"{figures['test_clips']} test clips):",
        "",
        "| labels | video scratch | video fine-tuned | video self-trained | fused scratch | fused fine-tuned "
        "| fused self-trained | linear probe, pretrained | linear probe, random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in fractions:
        cells = [figures.get(f"{row}_{f:g}") for row in ROWS]
        lines.append(f"| {f:.0%} | " + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
    lines += ["", "The same rows, the share of test clips right in the digit / in the direction (chance 0.1 / 0.5):",
              "", "| labels | video scratch | video fine-tuned | video self-trained | fused scratch "
              "| fused fine-tuned | fused self-trained | linear probe, pretrained | linear probe, random |",
              "|---|---|---|---|---|---|---|---|---|"]
    for f in fractions:
        cells = [(figures.get(f"{row}_{f:g}_digit"), figures.get(f"{row}_{f:g}_direction")) for row in ROWS]
        lines.append(f"| {f:.0%} | " + " | ".join("–" if d is None else f"{d:.2f} / {r:.2f}" for d, r in cells) + " |")
    lines += ["", "Cross-modal retrieval on the test clips (recall@1 / @5; chance at 1: "
              f"{figures['retrieval_chance_at_1']}):", "", "| encoders | audio→video | video→audio |", "|---|---|---|"]
    for name in ("pretrain", "pretrain_random"):
        cells = [" / ".join(f"{figures[f'{name}_test_{direction}_recall_at_{k}']:.3f}" for k in (1, 5))
                 for direction in ("audio_to_video", "video_to_audio")]
        lines.append(f"| {'pretrained' if name == 'pretrain' else 'random'} | {cells[0]} | {cells[1]} |")
    lines += ["", "All figures:", "", "```json", json.dumps(figures, indent=1, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def main(_):
    figures = run(_WORK_DIR.value)
    if _OUTPUT.value:
        with fileio.atomic_open(_OUTPUT.value, "w", encoding="utf-8") as f:
            f.write(table(figures))
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
