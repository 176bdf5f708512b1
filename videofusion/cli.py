"""The `videofusion` command: `videofusion <verb> [flags]`; each verb calls one module.

Verbs: demo-data, prepare, train, evaluate, export, predict (see `videofusion <verb> --help`).
Flags are read here only and passed down as plain values.
"""

import json
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS


def _demo_data_flags():
    flags.DEFINE_string("output", None, "Folder for the videos and manifest.csv.", required=True)
    flags.DEFINE_integer("num-videos", 240, "Number of videos (classes are balanced).")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same files.")


def _demo_data(_):
    from videofusion import demo

    demo.write_demo_dataset(FLAGS["output"].value, FLAGS["num-videos"].value, FLAGS["seed"].value)


def _prepare_flags():
    from videofusion import prepare, recipes

    default = prepare.PrepareOptions(output_dir="")
    flags.DEFINE_string("manifest", None, "CSV with columns path,label[,text,split,start,end].")
    flags.DEFINE_string("input-dir", None, "Instead of a manifest: ROOT/<label>/<video> folders.")
    flags.DEFINE_string("recipe", None, "Instead of a manifest: a public dataset as published, read from --root "
                        f"({', '.join(recipes.names())}; `--recipe {recipes.LIST}` describes them).")
    flags.DEFINE_string("root", None, "With --recipe: the folder holding the dataset (see datasets/README.md).")
    flags.DEFINE_integer("split", None, "With --recipe ucf101 or hmdb51: the official split, 1, 2 or 3 (default 1).")
    flags.DEFINE_string("output", None, "Folder for the shards and reports (required unless --recipe list).")
    flags.DEFINE_float("fps", default.fps, "Frames per second kept, chosen by timestamp.")
    flags.DEFINE_integer("short-side", default.short_side, "Short side of the stored frames, in pixels.")
    flags.DEFINE_integer("sample-rate", default.sample_rate, "Audio sample rate (mono float32).")
    flags.DEFINE_float("max-clip-seconds", default.max_clip_seconds,
                       "Longer videos become consecutive records (0: never).")
    flags.DEFINE_integer("num-shards", default.num_shards, "Shards per split (fewer if a split has fewer videos).")
    flags.DEFINE_integer("workers", default.workers, "Decoding processes (0: one per CPU core).")
    flags.DEFINE_float("val-fraction", default.val_fraction, "Share of videos without a split column that go to val.")
    flags.DEFINE_float("test-fraction", default.test_fraction,
                       "Share of videos without a split column that go to test.")
    flags.DEFINE_boolean("strict", False, "Exit with status 1 if any input was skipped.")
    flags.DEFINE_enum("runner", "local", ["local", "beam"],
                      "local: processes on this machine; beam: an Apache Beam pipeline (the beam extra).")
    flags.DEFINE_string("beam-options", "",
                        "With --runner beam: Beam's pipeline options in one string, e.g. \"--runner=FlinkRunner "
                        "--flink_master=HOST:8081\" (default: the DirectRunner with --workers processes).")
    flags.DEFINE_alias("beam_options", "beam-options")


def _run_prepare(options):
    """`prepare`'s work on the runner that --runner names; returns what it wrote to dataset.json."""
    from videofusion import prepare

    if FLAGS.runner == "local":
        if FLAGS["beam-options"].value:
            raise app.UsageError("--beam-options goes with --runner beam")
        return prepare.prepare_dataset(options)
    from videofusion import beam_ingest

    try:
        return beam_ingest.prepare_dataset_beam(options, shlex.split(FLAGS["beam-options"].value))
    except beam_ingest.BeamSetupError as error:
        logging.error("%s", error)
        sys.exit(2)


def _prepare(_):
    from videofusion import manifest, prepare, prepared_data, recipes

    if FLAGS.recipe == recipes.LIST:
        print(recipes.describe())
        return
    if FLAGS["output"].value is None:
        raise app.UsageError("prepare needs --output DIR, the folder for the shards and reports")
    options = prepare.PrepareOptions(
        output_dir=FLAGS["output"].value,
        manifest=FLAGS["manifest"].value,
        input_dir=FLAGS["input-dir"].value,
        recipe=FLAGS.recipe,
        recipe_root=FLAGS.root,
        recipe_split=FLAGS.split,
        fps=FLAGS["fps"].value,
        short_side=FLAGS["short-side"].value,
        sample_rate=FLAGS["sample-rate"].value,
        max_clip_seconds=FLAGS["max-clip-seconds"].value,
        num_shards=FLAGS["num-shards"].value,
        workers=FLAGS["workers"].value,
        val_fraction=FLAGS["val-fraction"].value,
        test_fraction=FLAGS["test-fraction"].value,
    )
    try:
        summary = _run_prepare(options)
    except manifest.ManifestError as error:
        logging.error("%s", error)
        sys.exit(2)
    errors = os.path.join(options.output_dir, prepared_data.ERRORS_FILE)
    if sum(summary[prepared_data.COUNTS].values()) == 0:
        logging.error("No record was written; see %s", errors)
        sys.exit(1)
    if FLAGS.strict and summary["num_errors"]:
        logging.error("--strict: %d inputs were skipped; see %s", summary["num_errors"], errors)
        sys.exit(1)


def _no_flags():
    """For verbs that take only positional arguments."""


def _info(argv):
    from videofusion import dataset_info

    if len(argv) != 2:
        raise app.UsageError("usage: videofusion info DIR")
    print(dataset_info.format_info(argv[1]))


def _train_flags():
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "Experiment file, e.g. experiments/demo.py.")
    flags.mark_flag_as_required("config")
    flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and the model.", required=True)


def _train(_):
    from videofusion import train

    train.train(FLAGS.config, FLAGS.workdir)


def _workdir_flag():
    flags.DEFINE_string("workdir", None, "A `videofusion train` workdir.", required=True)


def _evaluate_flags():
    _workdir_flag()
    flags.DEFINE_string("split", None, "Split to evaluate: train, val or test (default: the run's eval.split).")
    flags.DEFINE_boolean("silence-audio", False,
                         "Evaluate as if no video had sound (to metrics_silent.json and eval/<split>_silent/).")


def _evaluate(_):
    from videofusion import evaluate

    metrics = evaluate.evaluate(FLAGS.workdir, FLAGS.split, FLAGS["silence-audio"].value)
    keys = ("split", "accuracy", "top_k", "top_k_accuracy", "num_examples", "silenced_audio")
    print(json.dumps({k: metrics[k] for k in keys}))


def _export_flags():
    _workdir_flag()
    flags.DEFINE_string("output", None, "Export folder; the model goes to OUTPUT/<version>.", required=True)
    flags.DEFINE_integer("version", None, "Version folder to write (default: the next integer); never overwritten.")


def _export(_):
    from videofusion.serving import export

    try:
        print(export.export(FLAGS.workdir, FLAGS["output"].value, FLAGS.version))
    except FileExistsError as error:
        logging.error("%s", error)
        sys.exit(2)


def _predict_flags():
    flags.DEFINE_string("model", None, "An exported SavedModel folder (exports/NAME/VERSION).", required=True)
    flags.DEFINE_integer("top-k", 5, "Labels to print per video.")
    flags.DEFINE_string("caption", "", "A caption for every video (models that read text only).")


def _predict(argv):
    from videofusion.serving import predict

    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more video files")
    failed = 0
    try:
        for result in predict.predict(FLAGS.model, paths, FLAGS["top-k"].value, FLAGS.caption):
            print(json.dumps(result, ensure_ascii=False), flush=True)
            failed += "error" in result
    except (FileNotFoundError, ValueError) as error:  # not an export, or a caption for a model without text
        logging.error("%s", error)
        sys.exit(2)
    if failed:
        logging.error("%d of %d videos could not be decoded", failed, len(paths))
        sys.exit(1)


def _summary_flags():
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "Experiment file, e.g. experiments/demo.py.")
    flags.mark_flag_as_required("config")


def _summary(_):
    from videofusion import summary

    report = summary.summarize(FLAGS.config)
    logging.info("%s: %s parameters, %.1f MFLOPs per clip", report["model"], f"{report['parameters']:,}",
                 report["flops_per_clip"] / 1e6)
    print(json.dumps(report))


def _report_flags():
    flags.DEFINE_string("output", None, "Markdown file to write (the table is printed too).")


def _report(argv):
    from videofusion import fileio, report

    table = report.ablation_table(argv[1:])
    if FLAGS["output"].value:
        with fileio.atomic_open(FLAGS["output"].value, "w", encoding="utf-8") as f:
            f.write(table + "\n")
    print(table)


VERBS = {
    "demo-data": (_demo_data_flags, _demo_data, "write the demo videos and manifest"),
    "prepare": (_prepare_flags, _prepare, "videos + manifest → TFRecord shards"),
    "info": (_no_flags, _info, "summary of a prepared data folder (dataset.json)"),
    "train": (_train_flags, _train, "train an experiment config"),
    "evaluate": (_evaluate_flags, _evaluate, "accuracy of a run on a split → metrics.json, eval/<split>/"),
    "export": (_export_flags, _export, "a run → a versioned SavedModel"),
    "predict": (_predict_flags, _predict, "top-k labels for video files, as JSON lines"),
    "summary": (_summary_flags, _summary, "parameters and FLOPs per clip of a config's model"),
    "report": (_report_flags, _report, "a Markdown table of the test metrics of runs"),
}


def _usage() -> str:
    lines = ["usage: videofusion <verb> [flags]   (videofusion <verb> --help for its flags)", ""]
    lines += [f"  {verb:<10} {description}" for verb, (_, _, description) in VERBS.items()]
    return "\n".join(lines)


def main(argv=None):
    """Entry point of the `videofusion` console script."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in VERBS:
        print(_usage(), file=sys.stderr)
        sys.exit(0 if len(argv) >= 2 and argv[1] in ("-h", "--help") else 2)
    verb = argv[1]
    define_flags, run, _ = VERBS[verb]
    define_flags()
    app.run(run, argv=[f"videofusion {verb}"] + argv[2:])


if __name__ == "__main__":
    main()
