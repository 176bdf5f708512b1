"""`videofusion prepare --runner beam`: the same ingest as `prepare.py`, as an Apache Beam pipeline.

The launcher (this process) plans the run exactly as the local runner does (`prepare.plan_run`: inputs,
label vocabulary, splits, every video's shard and its position in it, shards left to do), writes that
plan to `.prepare/beam-plan.jsonl` in the output folder, and runs:

    read the plan → Reshuffle → encode each video (`clip_encoder.encode_video`, on any worker)
      → GroupByKey(shard) → write each shard (`prepare.ShardWriter`: temporary name, statistics, rename)

then writes `labels.txt`, `dataset.json` and `errors.jsonl` with the local runner's `prepare.finish_run`.
A shard's videos are written in plan order, so its bytes are those the local runner writes; a shard
that exists with the same fingerprint is skipped, so either runner resumes the other's run.

A video that fails with anything else than a bad file (`media.MediaError`, reported as locally) is
reported in `errors.jsonl` with the exception, and the other videos go on. Workers need `videofusion`
installed and must open the inputs and the output folder by the same paths as the launcher: a local
disk for the DirectRunner, a shared mount or URLs on a cluster. Every file, the plan included, is opened
through `fileio`, so any URL that `tf.io.gfile` opens works (`gs://` on Dataflow; workers then import
TensorFlow); on Dataflow, whose workers share no disk with the launcher, local paths are refused.

Apache Beam is an optional extra (`pip install videofusion[beam]`); this module imports it only inside
its functions, so nothing else needs it.

Example:

>>> options = prepare.PrepareOptions(manifest="datasets/demo/raw/manifest.csv", output_dir="/tmp/records")
>>> summary = prepare_dataset_beam(options, ["--direct_num_workers=2"])  # doctest: +SKIP
>>> summary["counts"]  # doctest: +SKIP
{'train': 576, 'val': 72, 'test': 72}
"""

import dataclasses
import json
import os
import tempfile
import time
from typing import Dict, Iterable, List, Sequence, Tuple

from absl import logging

from videofusion import fileio
from videofusion.ingest import beam_pipeline, clip_encoder, manifest, prepare
from videofusion.ingest.beam_pipeline import BeamSetupError  # noqa: F401 - what `prepare_dataset_beam` raises

PLAN_FILE = "beam-plan.jsonl"  # in prepare.STATE_DIR: one planned video per line
# (position in its shard, what it became, its TFRecord-framed records): one encoded video.
Encoded = Tuple[int, clip_encoder.EncodeResult, bytes]


def _write_plan(output_dir: str, run: prepare.RunPlan) -> Tuple[str, int]:
    """(path, number of videos) of the plan file: one JSON line per video of `run.todo`."""
    path = os.path.join(output_dir, prepare.STATE_DIR, PLAN_FILE)
    count = 0
    with fileio.atomic_open(path, "w", encoding="utf-8") as f:
        for plan in run.todo:
            for position, entry in enumerate(plan.entries):
                line = {"shard": plan.name, "position": position, "entry": dataclasses.asdict(entry)}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
    return path, count


def encode_planned_video(line: str, label_index: Dict[str, int],
                         params: clip_encoder.EncodeParams) -> Tuple[str, Encoded]:
    """One line of the plan file → `(shard name, (position, result, records))`, on a worker.

    The video is encoded by `clip_encoder.encode_video` into a temporary file of the worker, which is
    read back and removed; a video that cannot be used gives a result with `error` and no records.
    """
    from apache_beam.metrics import Metrics

    item = json.loads(line)
    entry = manifest.Entry(**item["entry"])
    handle, chunk = tempfile.mkstemp(prefix="videofusion-", suffix=".part")
    os.close(handle)
    records = b""
    started = time.monotonic()
    try:
        task = prepare.encode_task(entry, label_index[entry.label], params, chunk)
        result = clip_encoder.encode_video(task)
        if result.error is None:
            with open(chunk, "rb") as f:
                records = f.read()
    except Exception as error:  # noqa: BLE001 - one video's failure must not fail the bundle's others
        logging.exception("Encoding %s failed", entry.path)
        result = clip_encoder.EncodeResult(entry.path, entry.label, 0, 0.0, None,
                                           f"failed on a Beam worker: {type(error).__name__}: {error}")
    finally:
        if os.path.exists(chunk):
            os.remove(chunk)
    Metrics.counter(beam_pipeline.METRICS_NAMESPACE, "videos_skipped" if result.error else "videos_encoded").inc()
    Metrics.counter(beam_pipeline.METRICS_NAMESPACE, "clips").inc(result.clips)
    encode_ms = int(1000 * (time.monotonic() - started))
    Metrics.distribution(beam_pipeline.METRICS_NAMESPACE, "encode_ms").update(encode_ms)
    return item["shard"], (item["position"], dataclasses.replace(result, chunk_path=None), records)


def write_shard(keyed: Tuple[str, Iterable[Encoded]], output_dir: str, labels: List[str],
                shards: Dict[str, Tuple[str, int]]) -> str:
    """Writes one shard from its encoded videos, in plan order, with `prepare.ShardWriter`; returns its name.

    `shards` maps a shard's name to (fingerprint, number of videos).
    """
    from apache_beam.metrics import Metrics

    name, videos = keyed
    fingerprint, expected = shards[name]
    videos = sorted(videos, key=lambda video: video[0])
    positions = [position for position, _, _ in videos]
    if positions != list(range(expected)):
        raise RuntimeError(f"{name}: expected videos 0..{expected - 1} of the plan, got positions {positions}")
    writer = prepare.ShardWriter(output_dir, name, expected, fingerprint, labels)
    try:
        for _, result, records in videos:
            writer.add(result, records)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    Metrics.counter(beam_pipeline.METRICS_NAMESPACE, "shards_written").inc()
    logging.info("Wrote %s: %d videos, %d clips", name, writer.state["videos"], writer.state["clips"])
    return name


def _build(pipeline, plan_path: str, output_dir: str, run: prepare.RunPlan) -> None:
    beam = beam_pipeline.import_beam()
    shards = {plan.name: (run.fingerprints[plan.name], len(plan.entries)) for plan in run.todo}
    _ = (
        pipeline
        | "PlanFile" >> beam.Create([plan_path])
        | "ReadPlan" >> beam.FlatMap(beam_pipeline.read_plan)
        | "Spread" >> beam.Reshuffle()  # one worker reads the plan: without this, it would encode it all
        | "Encode" >> beam.Map(encode_planned_video, run.label_index(), run.params)
        | "ByShard" >> beam.GroupByKey()
        | "WriteShard" >> beam.Map(write_shard, output_dir, run.labels, shards)
    )


def run_pipeline(options: prepare.PrepareOptions, run: prepare.RunPlan, pipeline_opts) -> None:
    """Encodes and writes the shards of `run.todo` on the Beam runner of `pipeline_opts`
    (`beam_pipeline.pipeline_options`)."""
    plan_path, count = _write_plan(options.output_dir, run)
    logging.info("Beam (%s): %d videos into %d shards", beam_pipeline.runner_name(pipeline_opts), count,
                 len(run.todo))
    try:
        result = beam_pipeline.run(pipeline_opts, lambda pipeline: _build(pipeline, plan_path, options.output_dir,
                                                                          run))
    finally:
        fileio.remove(plan_path)
    beam_pipeline.log_metrics(result)


def prepare_dataset_beam(options: prepare.PrepareOptions, beam_args: Sequence[str] = ()) -> dict:
    """`prepare.prepare_dataset`, with the videos encoded and the shards written by Apache Beam.

    Args:
      options: as for the local runner (`workers` sets the DirectRunner's processes); paths may be URLs.
      beam_args: Beam pipeline options, e.g. `["--runner=FlinkRunner", "--flink_master=host:8081"]`.

    Returns:
      What it wrote to `dataset.json`.

    Raises:
      BeamSetupError: Apache Beam is not installed, or a path on Dataflow is local.
      manifest.ManifestError: the manifest or input folder itself cannot be read.
    """
    beam_pipeline.import_beam()
    pipeline_opts = beam_pipeline.pipeline_options(beam_args, options.num_workers())
    runner = beam_pipeline.runner_name(pipeline_opts)
    beam_pipeline.check_shared(runner, [options.output_dir], "--output")
    run = prepare.plan_run(options)
    beam_pipeline.check_shared(runner, [e.resolved for plan in run.todo for e in plan.entries], "the videos")
    if run.todo:
        run_pipeline(options, run, pipeline_opts)
    return prepare.finish_run(options, run)
