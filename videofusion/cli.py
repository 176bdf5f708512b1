"""The `videofusion` command: `videofusion <verb> [flags]`; each verb calls one module.

Verbs: demo-data, prepare, train, evaluate, export, predict, embed, search, … (see `videofusion --help`).
Flags are read here only and passed down as plain values.

A mistake (an unknown flag or config field, a missing file, run or data folder) ends the command with one
line on stderr, `videofusion <verb>: what is wrong; what to do`, and exit status 1 when the command line
itself is wrong, 2 when something it names cannot be used; `VIDEOFUSION_DEBUG=1` raises it with its
traceback instead. TensorFlow's start-up lines are left out unless `TF_CPP_MIN_LOG_LEVEL=0`.
"""

import contextlib
import functools
import json
import os
import re
import shlex
import socket
import sys
import tempfile
import textwrap
from typing import Callable, List, NamedTuple, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
DEBUG_VARIABLE = "VIDEOFUSION_DEBUG"
ENVIRONMENT_HELP = f"""environment:
  {DEBUG_VARIABLE}=1      an error's traceback instead of its one line
  TF_CPP_MIN_LOG_LEVEL=0   TensorFlow's start-up lines too"""
# What TensorFlow 2.21 writes to stderr whatever TF_CPP_MIN_LOG_LEVEL says: the lines its libraries log
# through absl before absl's log is initialised, at import (two libraries, each line twice), and cuInit's
# failure on a machine without CUDA, at the first look for devices. (Its CPU feature guard's lines obey
# TF_CPP_MIN_LOG_LEVEL.)
_TF_START_UP_LINE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
)
_HELP_FLAGS = ("-h", "-?", "-help", "--help", "--helpshort")


class _Mistake(Exception):
    """A mistake of the user's: the message says what is wrong and what to do; `status` is the exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def _demo_data_flags():
    flags.DEFINE_string("output", None, "Folder for the videos and manifest.csv.", required=True)
    flags.DEFINE_integer("num-videos", 240, "Number of videos (classes are balanced).")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same files.")


def _demo_data(_):
    from videofusion.ingest import demo_videos

    demo_videos.write_demo_dataset(FLAGS["output"].value, FLAGS["num-videos"].value, FLAGS["seed"].value)


def _prepare_flags():
    from videofusion.ingest import prepare, recipes

    default = prepare.PrepareOptions(output_dir="")
    flags.DEFINE_string("manifest", None, "CSV with columns path,label[,text,split,start,end].")
    flags.DEFINE_string("input-dir", None, "Instead of a manifest: ROOT/<label>/<video> folders.")
    flags.DEFINE_string("unlabeled", None, "Also a folder of videos without labels (any depth), for `pretrain`: "
                        "their clips go to the train split, which `train` and `evaluate` skip them in.")
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
    _runner_flags("processes on this machine", "the DirectRunner with --workers processes")


def _runner_flags(local: str, direct: str):
    """--runner and --beam-options, for a verb that runs on Apache Beam too; `local` says what runs it
    locally, `direct` what the DirectRunner uses by default."""
    flags.DEFINE_enum("runner", "local", ["local", "beam"],
                      f"local: {local}; beam: an Apache Beam pipeline (the beam extra).")
    flags.DEFINE_string("beam-options", "",
                        "With --runner beam: Beam's pipeline options in one string, e.g. \"--runner=FlinkRunner "
                        f"--flink_master=HOST:8081\" (default: {direct}).")
    flags.DEFINE_alias("beam_options", "beam-options")


def _beam_args() -> Optional[List[str]]:
    """Beam's pipeline options from --beam-options; None with --runner local, which refuses them."""
    if FLAGS.runner == "local":
        if FLAGS["beam-options"].value:
            raise app.UsageError("--beam-options goes with --runner beam")
        return None
    return shlex.split(FLAGS["beam-options"].value)


def _run_prepare(options):
    """`prepare`'s work on the runner that --runner names; returns what it wrote to dataset.json."""
    from videofusion.ingest import prepare

    beam_args = _beam_args()
    if beam_args is None:
        return prepare.prepare_dataset(options)
    from videofusion.ingest import beam_runner

    try:
        return beam_runner.prepare_dataset_beam(options, beam_args)
    except beam_runner.BeamSetupError as error:
        raise _Mistake(str(error)) from error


def _prepare(_):
    from videofusion.contract import prepared_folder
    from videofusion.ingest import manifest, prepare, recipes

    if FLAGS.recipe == recipes.LIST:
        print(recipes.describe())
        return
    if FLAGS["output"].value is None:
        raise app.UsageError("prepare needs --output DIR, the folder for the shards and reports")
    options = prepare.PrepareOptions(
        output_dir=FLAGS["output"].value,
        manifest=FLAGS["manifest"].value,
        input_dir=FLAGS["input-dir"].value,
        unlabeled_dir=FLAGS["unlabeled"].value,
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
        raise _Mistake(str(error)) from error
    errors = os.path.join(options.output_dir, prepared_folder.ERRORS_FILE)
    if sum(summary[prepared_folder.COUNTS].values()) == 0:
        logging.error("No record was written; see %s", errors)
        sys.exit(1)
    if FLAGS.strict and summary["num_errors"]:
        logging.error("--strict: %d inputs were skipped; see %s", summary["num_errors"], errors)
        sys.exit(1)


def _no_flags():
    """For verbs that take only positional arguments."""


def _info(argv):
    from videofusion.contract import prepared_folder

    if len(argv) != 2:
        raise app.UsageError("usage: videofusion info DIR")
    print(prepared_folder.format_info(argv[1]))


def _train_flags():
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "Experiment file, e.g. experiments/demo.py.")
    flags.mark_flag_as_required("config")
    flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and the model.", required=True)


def _train(_):
    from videofusion.training import train

    train.train(FLAGS.config, FLAGS.workdir)


def _pretrain(_):
    from videofusion.training import pretrain

    pretrain.pretrain(FLAGS.config, FLAGS.workdir)


def _workdir_flag():
    flags.DEFINE_string("workdir", None, "A `videofusion train` workdir.", required=True)


def _evaluate_flags():
    _workdir_flag()
    flags.DEFINE_string("split", None, "Split to evaluate: train, val or test (default: the run's eval.split).")
    flags.DEFINE_boolean("silence-audio", False,
                         "Evaluate as if no video had sound (to metrics_silent.json and eval/<split>_silent/).")


def _evaluate(_):
    from videofusion.evaluation import evaluate

    metrics = evaluate.evaluate(FLAGS.workdir, FLAGS.split, FLAGS["silence-audio"].value)
    keys = ("split", "accuracy", "top_k", "top_k_accuracy", "num_examples", "silenced_audio")
    print(json.dumps({k: metrics[k] for k in keys}))


def _export_flags():
    _workdir_flag()
    flags.DEFINE_string("output", None, "Export folder; the model goes to OUTPUT/<version>.", required=True)
    flags.DEFINE_integer("version", None, "Version folder to write (default: the next integer); never overwritten.")
    flags.DEFINE_enum("format", "savedmodel", ["savedmodel", "litert"],
                      "savedmodel: for TF Serving; litert: .tflite models (float32, float16, int8) and model.json "
                      "for devices without TensorFlow (give it its own OUTPUT, e.g. exports/NAME/litert).")
    flags.DEFINE_integer("calibration-clips", 64, "With --format litert: training clips that calibrate the int8 model.")


def _export(_):
    if FLAGS["format"].value == "savedmodel":
        from videofusion.serving import export

        print(export.export(FLAGS.workdir, FLAGS["output"].value, FLAGS.version))
        return
    from videofusion.serving import litert_export

    try:
        print(litert_export.export_litert(FLAGS.workdir, FLAGS["output"].value, FLAGS.version,
                                          FLAGS["calibration-clips"].value))
    except ValueError as error:  # a run the LiteRT export can't take
        raise _Mistake(str(error)) from error


def _predict_flags():
    flags.DEFINE_string("model", None, "An exported SavedModel folder (exports/NAME/VERSION), or a LiteRT export "
                        "(its folder or one of its .tflite files; no TensorFlow needed).", required=True)
    flags.DEFINE_integer("top-k", 5, "Labels to print per video.")
    flags.DEFINE_enum("variant", None, ["float32", "float16", "int8"],
                      "The model of a LiteRT export folder to run (default: float32).")
    flags.DEFINE_string("caption", "", "A caption for every video (models that read text only).")
    flags.DEFINE_string("output", None, "Write the JSON lines to this file (atomically) instead of stdout.")
    _runner_flags("this process", "the DirectRunner with one process per CPU core")


def _local_predictions(paths: List[str], top_k: int, caption: str):
    """`predict`'s results in this process: through the LiteRT interpreter for a LiteRT export (TensorFlow
    is not imported), else through the SavedModel."""
    from videofusion.serving import litert_model

    if not litert_model.is_litert(FLAGS.model):
        from videofusion.serving import predict

        return predict.predict(FLAGS.model, paths, top_k, caption)
    if caption:
        raise app.UsageError("--caption: a LiteRT model reads no text")
    from videofusion.serving import litert_predict

    return litert_predict.predict(FLAGS.model, paths, top_k, FLAGS.variant)


def _predict_results(paths: List[str], scratch: str):
    """`predict`'s results, in the order of `paths`, on the runner that --runner names; with --output
    they are in that file (the Beam runner writes to a file in `scratch` without it)."""
    from videofusion.serving.results import read_results, write_results

    beam_args, output = _beam_args(), FLAGS["output"].value
    top_k, caption = FLAGS["top-k"].value, FLAGS.caption
    if beam_args is None:
        results = _local_predictions(paths, top_k, caption)
        if output is None:
            return results
        write_results(results, output)
        return read_results(output)
    from videofusion.serving import beam_inference

    try:
        return beam_inference.predict_beam(FLAGS.model, paths, output or os.path.join(scratch, "predictions.jsonl"),
                                           top_k, caption, beam_args)
    except beam_inference.BeamSetupError as error:
        raise _Mistake(str(error)) from error


def _predict(argv):
    paths = argv[1:]
    if not paths:
        raise app.UsageError("give one or more video files")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="videofusion-predict-") as scratch:
        try:
            for result in _predict_results(paths, scratch):
                if FLAGS["output"].value is None:
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                failed += "error" in result
        except ValueError as error:  # a caption for a model that reads no text
            raise _Mistake(str(error)) from error
    if failed:
        logging.error("%d of %d videos could not be decoded", failed, len(paths))
        sys.exit(1)


def _stream_flags():
    from videofusion.serving import live_source, stream

    default, source = stream.StreamOptions(), live_source.SourceOptions()
    flags.DEFINE_string("model", None, "An export: a SavedModel (exports/NAME/VERSION) or a LiteRT folder or "
                        ".tflite file (export --format litert).", required=True)
    flags.DEFINE_enum("variant", None, ["float32", "float16", "int8"], "With a LiteRT folder: the model to run "
                      "(default float32).")
    flags.DEFINE_float("hop", default.hop_s, "Seconds of stream between two windows.")
    flags.DEFINE_float("window", None, "Seconds of a window (default: the model's clip, num_frames × stride / fps).")
    flags.DEFINE_integer("top-k", default.top_k, "Labels to print per window.")
    flags.DEFINE_float("smoothing", default.smoothing,
                       "Weight of the past in an exponential moving average of the scores over windows (0: none).")
    flags.DEFINE_boolean("realtime", source.realtime, "Play a file at its own speed (--norealtime: as fast as the "
                         "model goes, every window); a camera or network stream is always real time.")
    flags.DEFINE_float("timeout", source.timeout_s, "Seconds without data after which a live source is reopened.")
    flags.DEFINE_integer("max-retries", source.max_retries,
                         "Reopenings of a live source in a row (after 1, 2, 4... s) before giving up.")


def _stream(argv):
    from videofusion.serving import live_source, stream

    if len(argv) != 2:
        raise app.UsageError("give one SOURCE: a video file, a camera (/dev/video0 or 0) or a stream URL")
    source_options = live_source.SourceOptions(realtime=FLAGS.realtime, timeout_s=FLAGS.timeout,
                                               max_retries=FLAGS["max-retries"].value)
    options = stream.StreamOptions(FLAGS.hop, FLAGS["top-k"].value, FLAGS.smoothing, source_options)
    try:
        live = stream.Stream(argv[1], stream.load_model(FLAGS.model, FLAGS.window, FLAGS.variant), options)
    except (ValueError, live_source.SourceError) as error:
        raise _Mistake(str(error), 1 if isinstance(error, ValueError) else 2) from error
    try:
        for result in live.results():
            print(json.dumps(result, ensure_ascii=False), flush=True)
    except KeyboardInterrupt:
        logging.info("interrupted")
    except live_source.SourceError as error:
        raise _Mistake(str(error)) from error
    finally:
        live.close()
        logging.info("%s: %s", argv[1], json.dumps(live.summary.figures()))
    if live.summary.ended.startswith("gave up"):
        sys.exit(2)


def _embed_flags():
    from videofusion.contract import prepared_folder
    from videofusion.serving import embedding_folder  # no TensorFlow before `_import_tensorflow` hides its lines

    flags.DEFINE_string("model", None, "An export (exports/NAME/VERSION) or a run folder of `train` or `pretrain`.",
                        required=True)
    flags.DEFINE_string("output", None, "Folder for the embeddings (an unfinished one resumes).", required=True)
    flags.DEFINE_string("data", None, "Prepared shards to embed (a `prepare --output` folder).")
    flags.DEFINE_list("split", list(prepared_folder.SPLITS), "With --data: the splits to embed.")
    flags.DEFINE_string("manifest", None, "Instead of --data: a CSV manifest of videos (path[,label,...]).")
    flags.DEFINE_string("input-dir", None, "Instead of --data: ROOT/<label>/<video> folders.")
    flags.DEFINE_integer("videos-per-part", embedding_folder.DEFAULT_VIDEOS_PER_PART,
                         "Videos of a manifest, folder or file list per part (the unit of resuming).", lower_bound=1)
    flags.DEFINE_integer("workers", 0, "Decoding threads, or with --runner beam the DirectRunner's processes "
                         "(0: one per CPU core).", lower_bound=0)
    _runner_flags("this process, decoding in --workers threads", "the DirectRunner with --workers processes")


def _embed(argv):
    from videofusion.ingest import beam_pipeline, manifest  # beam_pipeline imports Beam only when it runs
    from videofusion.serving import embed

    sources = [name for name, given in (("--data", FLAGS.data), ("--manifest", FLAGS.manifest),
                                        ("--input-dir", FLAGS["input-dir"].value), ("VIDEO", argv[1:])) if given]
    if len(sources) != 1:
        raise app.UsageError("embed takes one of --data DIR, --manifest CSV, --input-dir ROOT or video files"
                             + (f" (got {', '.join(sources)})" if sources else ""))
    inputs = embed.EmbedInputs(data_dir=FLAGS.data, splits=tuple(FLAGS.split), manifest=FLAGS.manifest,
                               input_dir=FLAGS["input-dir"].value, videos=tuple(argv[1:]))
    beam_args = _beam_args()
    arguments = (FLAGS.model, FLAGS["output"].value, inputs, FLAGS["videos-per-part"].value, FLAGS.workers)
    try:
        if beam_args is None:
            summary = embed.embed(*arguments)
        else:
            from videofusion.serving import beam_inference

            summary = beam_inference.embed_beam(*arguments, beam_args=beam_args)
    except (manifest.ManifestError, beam_pipeline.BeamSetupError) as error:
        raise _Mistake(str(error)) from error
    print(json.dumps({key: summary[key] for key in ("rows", "errors", "spaces")}))


def _search_flags():
    from videofusion.serving import vector_index  # no TensorFlow before `_import_tensorflow` hides its lines

    flags.DEFINE_string("index", None, "An embeddings folder (`videofusion embed --output`).", required=True)
    flags.DEFINE_string("id", None, "Instead of a video file: the id of a video of the folder (or its file name).")
    flags.DEFINE_string("caption", None, "Instead of a video file: a caption (a folder with a text space).")
    flags.DEFINE_string("query-modality", "all", "Which of the query video's modalities counts: all, audio (its "
                        "sound only) or video (its frames only).")
    flags.DEFINE_string("space", None, "The gallery's space (default: fused, else video).")
    flags.DEFINE_integer("top-k", 10, "Videos to return per query.", lower_bound=1)
    flags.DEFINE_enum("index-kind", "auto", list(vector_index.KINDS),
                      "exact: a matrix product; ann: the approximate index; auto: exact up to "
                      f"{vector_index.EXACT_MAX_ROWS:,} vectors.")


def _search(argv):
    from videofusion.serving import search

    if FLAGS["query-modality"].value not in search.QUERY_MODALITIES:
        raise app.UsageError(f"--query-modality must be one of {', '.join(search.QUERY_MODALITIES)}")
    try:
        queries = [search.Query(video=path, modality=FLAGS["query-modality"].value) for path in argv[1:]]
        if FLAGS.id is not None:
            queries.append(search.Query(clip_id=FLAGS.id, modality=FLAGS["query-modality"].value))
        if FLAGS.caption is not None:
            queries.append(search.Query(caption=FLAGS.caption))
        if not queries:
            raise app.UsageError("give a query: video files, --id ID or --caption TEXT")
        searcher = search.Searcher(FLAGS.index, FLAGS.space, FLAGS["index-kind"].value)
        for query in queries:
            for result in searcher.search(query, FLAGS["top-k"].value):
                print(json.dumps(result, ensure_ascii=False), flush=True)
    except search.QueryError as error:
        raise _Mistake(str(error)) from error


def _summary_flags():
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "Experiment file, e.g. experiments/demo.py.")
    flags.mark_flag_as_required("config")


def _summary(_):
    from videofusion.training import summary

    report = summary.summarize(FLAGS.config)
    logging.info("%s: %s parameters, %.1f MFLOPs per clip", report["model"], f"{report['parameters']:,}",
                 report["flops_per_clip"] / 1e6)
    print(json.dumps(report))


def _data_service_flags():
    flags.DEFINE_integer("port", None, "Port to listen on.", required=True, lower_bound=1, upper_bound=65535)
    flags.DEFINE_string("work-dir", None, "dispatcher: a folder (shared, or gs://) to journal its state in, so that "
                        "a restarted dispatcher resumes its jobs (fault-tolerant mode).")
    flags.DEFINE_string("dispatcher", None, "worker: the dispatcher's HOST:PORT.")
    flags.DEFINE_string("host", socket.gethostname(), "worker: the name trainers reach this machine by.")


DATA_SERVICE_ROLES = ("dispatcher", "worker")


def _data_service(argv):
    from videofusion.data import service

    if len(argv) != 2 or argv[1] not in DATA_SERVICE_ROLES:
        raise app.UsageError(f"usage: videofusion data-service {'|'.join(DATA_SERVICE_ROLES)} --port PORT [flags]")
    role, port = argv[1], FLAGS.port
    if role == "dispatcher":
        if FLAGS.dispatcher or FLAGS["host"].present:
            raise app.UsageError("--dispatcher and --host go with `data-service worker`")
        service.serve_dispatcher(port, FLAGS["work-dir"].value)
        return
    if FLAGS["work-dir"].value:
        raise app.UsageError("--work-dir goes with `data-service dispatcher`")
    if not FLAGS.dispatcher or service.host_and_port(FLAGS.dispatcher) is None:
        raise app.UsageError("data-service worker needs --dispatcher HOST:PORT, the dispatcher's address")
    service.serve_worker(FLAGS.dispatcher, port, FLAGS.host)


def _report_flags():
    flags.DEFINE_string("output", None, "Markdown file to write (the table is printed too).")


def _report(argv):
    from videofusion import fileio
    from videofusion.evaluation import report

    table = report.ablation_table(argv[1:])
    if FLAGS["output"].value:
        with fileio.atomic_open(FLAGS["output"].value, "w", encoding="utf-8") as f:
            f.write(table + "\n")
    print(table)


class Verb(NamedTuple):
    """A verb of the command: its flags, what it runs, and what `videofusion <verb> --help` says of it."""

    define_flags: Callable[[], None]
    run: Callable[[List[str]], None]  # takes absl's remaining arguments, the verb's name first
    description: str
    example: str
    arguments: str = ""  # positional arguments, for the usage line
    uses_tensorflow: bool = False  # TensorFlow is imported, quietly, before it runs


VERBS = {
    "demo-data": Verb(_demo_data_flags, _demo_data, "write the demo videos and manifest",
                      "videofusion demo-data --output datasets/demo/raw --num-videos 720 --seed 0"),
    "prepare": Verb(_prepare_flags, _prepare, "videos + manifest → TFRecord shards",
                    "videofusion prepare --manifest datasets/demo/raw/manifest.csv --output datasets/demo/records "
                    "--fps 10 --short-side 64"),
    "info": Verb(_no_flags, _info, "summary of a prepared data folder (dataset.json)",
                 "videofusion info datasets/demo/records", arguments="DIR"),
    "train": Verb(_train_flags, _train, "train an experiment config",
                  "videofusion train --config experiments/demo.py --workdir runs/demo --config.train.epochs=3",
                  arguments="[--config.FIELD=VALUE ...]", uses_tensorflow=True),
    "pretrain": Verb(_train_flags, _pretrain, "pretrain a config's encoders on unlabeled clips (cross-modal)",
                     "videofusion pretrain --config experiments/demo.py --workdir runs/demo_pretrain "
                     "--config.pretrain.epochs=20", arguments="[--config.FIELD=VALUE ...]", uses_tensorflow=True),
    "evaluate": Verb(_evaluate_flags, _evaluate, "accuracy of a run on a split → metrics.json, eval/<split>/",
                     "videofusion evaluate --workdir runs/demo --split test", uses_tensorflow=True),
    "export": Verb(_export_flags, _export, "a run → a versioned SavedModel",
                   "videofusion export --workdir runs/demo --output exports/demo", uses_tensorflow=True),
    "predict": Verb(_predict_flags, _predict, "top-k labels for video files, as JSON lines",
                    "videofusion predict --model exports/demo/1 --top-k 3 "
                    "datasets/demo/raw/videos/00024_disk-left-low.mp4",
                    arguments="VIDEO [VIDEO ...]", uses_tensorflow=True),
    "stream": Verb(_stream_flags, _stream,
                   "top-k labels of a live stream, camera or file, window by window, as JSON lines",
                   "videofusion stream --model exports/demo/1 --hop 0.5 rtsp://127.0.0.1:8554/live",
                   arguments="SOURCE", uses_tensorflow=True),
    "embed": Verb(_embed_flags, _embed, "one embedding per video in each of a model's spaces → an embeddings folder",
                  "videofusion embed --model exports/demo/1 --data datasets/demo/records --output embeddings/demo",
                  arguments="[VIDEO ...]", uses_tensorflow=True),
    "search": Verb(_search_flags, _search, "the nearest videos of an embeddings folder, as JSON lines",
                   "videofusion search --index embeddings/demo datasets/demo/raw/videos/00024_disk-left-low.mp4",
                   arguments="[VIDEO ...]", uses_tensorflow=True),
    "summary": Verb(_summary_flags, _summary, "parameters and FLOPs per clip of a config's model",
                    "videofusion summary --config experiments/demo.py", arguments="[--config.FIELD=VALUE ...]",
                    uses_tensorflow=True),
    "data-service": Verb(_data_service_flags, _data_service,
                         "serve the training input: a tf.data service dispatcher or worker (train.data_service)",
                         "videofusion data-service worker --dispatcher dispatcher-host:5050 --port 5051",
                         arguments="dispatcher|worker", uses_tensorflow=True),
    "report": Verb(_report_flags, _report, "a Markdown table of the test metrics of runs",
                   "videofusion report --output results/ablation.md runs/frame runs/lstm runs/audio",
                   arguments="RUN [RUN ...]", uses_tensorflow=True),
}


def _usage() -> str:
    lines = ["usage: videofusion <verb> [flags]   (videofusion <verb> --help for its flags)", ""]
    width = max(map(len, VERBS))
    lines += [f"  {name:<{width}} {verb.description}" for name, verb in VERBS.items()]
    return "\n".join(lines + ["", ENVIRONMENT_HELP])


def _required(flag: flags.Flag) -> bool:
    """Whether `flag` must be given: one of its validators refuses its default."""
    try:
        for validator in flag.validators:
            validator.verify(FLAGS)
    except flags.ValidationError:
        return True
    return False


def _verb_help(name: str, flag_names: List[str]) -> str:
    """What `videofusion <name> --help` prints: the usage line, each of `flag_names` with its help and
    default (if it has one) or "(required)", an example and the environment variables."""
    verb = VERBS[name]
    lines = [f"usage: videofusion {name} [flags] {verb.arguments}".rstrip(), "", verb.description, "", "flags:"]
    for flag in (FLAGS[flag_name] for flag_name in flag_names):
        switch = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
        lines.append(textwrap.fill(f"{switch}: {flag.help}", 100, initial_indent="  ", subsequent_indent="    "))
        if _required(flag):
            lines.append("    (required)")
        elif flag.default is not None:
            lines.append(f"    (default: {flag.default_as_str})")
    return "\n".join(lines + ["", "example:", f"  {verb.example}", "", ENVIRONMENT_HELP])


@contextlib.contextmanager
def _stderr_without(dropped: re.Pattern):
    """Within: what this process writes to stderr (file descriptor 2, C++ libraries included) is held back;
    at the end, all of it but the lines that `dropped` matches goes to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            sys.stderr.write("".join(line for line in text.splitlines(keepends=True) if not dropped.search(line)))


def _import_tensorflow() -> None:
    """Imports TensorFlow and looks for its devices without its start-up lines, unless TF_CPP_MIN_LOG_LEVEL=0.

    Without TensorFlow it does nothing: a verb that needs it fails at its own import, and `predict` on a
    LiteRT model does not need it.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    with _stderr_without(_TF_START_UP_LINE):
        try:
            import tensorflow as tf
        except ImportError:
            return

        tf.config.list_physical_devices()  # cuInit, but no device initialised: tf.distribute can still set them up


def _unknown_field(error: Exception, argv: List[str]) -> str:
    """The line for ml_collections' error about a field the config does not have (`--config.train.epoch`).

    Its message is the field's name in quotes, then on a second line the name it may have meant, if any.
    """
    message = error
    while isinstance(message, BaseException) and message.args:  # an AttributeError wraps the KeyError
        message = message.args[0]
    field, _, suggestion = str(message).partition("\n")
    field = field.strip("'\"")
    paths = [arg.lstrip("-").split("=", 1)[0].split(".") for arg in argv[1:] if arg.lstrip("-").startswith("config.")]
    path = next((path for path in paths if field in path[1:]), None)  # None: the experiment file's own mistake
    line = (f"the config has no field {field!r}" if path is None
            else f"--{'.'.join(path)}: {'.'.join(path[:path.index(field)])} has no field {field!r}")
    return f"{line}; {suggestion[:1].lower()}{suggestion[1:]}" if suggestion else f"{line} (see videofusion/config.py)"


def _parse_flags(argv: List[str]) -> List[str]:
    """app.run's flags parser: parses `argv` into FLAGS; a mistake in it raises `_Mistake`."""
    try:
        remaining = FLAGS(argv)
        if "config" in FLAGS:
            FLAGS.config.keys()  # ml_collections defers a config file's failure to load to its first use
    except flags.Error as error:  # an unknown flag, a bad value, a required flag left out
        raise _Mistake(f"{str(error).rstrip('.')}; see `{argv[0]} --help`", 1) from error
    except (AttributeError, KeyError) as error:  # --config.FIELD=VALUE for a field the config does not have
        raise _Mistake(_unknown_field(error, argv), 1) from error
    except OSError as error:  # the --config file cannot be read; the reason is the message's last line
        reason = re.sub(r"^\[Errno \d+\] ", "", str(error).strip().splitlines()[-1].strip())
        raise _Mistake(f"--config: {reason}; give an experiment file, e.g. experiments/demo.py") from error
    return remaining


def _names_config_field(error: ValueError) -> bool:
    """Whether `error`'s message begins with a config field (`model.fusion='x' is not one of ...`): a value
    that the experiment file or a --config.FIELD flag gave."""
    from videofusion import config as config_lib

    field = re.match(r"(\w+)\.\w+", str(error))
    return field is not None and field.group(1) in config_lib.base_config()


def _run(verb: Verb, argv: List[str]) -> None:
    """app.run's main: runs `verb`; an error that is the user's mistake raises `_Mistake`."""
    if verb.uses_tensorflow:
        _import_tensorflow()
    try:
        verb.run(argv)
    except app.UsageError as error:
        raise _Mistake(str(error), error.exitcode) from error
    except (FileNotFoundError, FileExistsError) as error:  # their messages name the path and what to do
        raise _Mistake(str(error)) from error
    except ValueError as error:
        if not _names_config_field(error):
            raise
        raise _Mistake(str(error)) from error


def main(argv=None):
    """Entry point of the `videofusion` console script."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in VERBS:
        print(_usage(), file=sys.stderr)
        sys.exit(0 if len(argv) >= 2 and argv[1] in ("-h", "--help") else 2)
    name = argv[1]
    absl_flags = set(FLAGS)
    VERBS[name].define_flags()
    if any(arg in _HELP_FLAGS for arg in argv[2:]):
        print(_verb_help(name, [flag_name for flag_name in FLAGS if flag_name not in absl_flags]))
        return
    try:
        app.run(functools.partial(_run, VERBS[name]), argv=[f"videofusion {name}", *argv[2:]],
                flags_parser=_parse_flags)
    except _Mistake as mistake:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        print(f"videofusion {name}: {' '.join(str(mistake).split())}", file=sys.stderr)
        sys.exit(mistake.status)


if __name__ == "__main__":
    main()
