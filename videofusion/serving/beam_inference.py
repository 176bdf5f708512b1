"""`predict` and `embed` on Apache Beam (`--runner beam`): the local runners' work, spread over workers.

The launcher (this process) plans the run as the local runner does (`embed.plan_run`: parts of
`videos_per_part` videos, or a prepared shard each, and those left to do; `predict` plans its files
alike), writes one line per video (or shard) to a plan file, and runs:

    read the plan → Reshuffle → decode each video into the records `prepare` would write (any worker)
      → RunInference: Beam's TensorFlow model handler (`beam_model.model_handler`), keyed by
        (part, video, record), batches of up to `BATCH_RECORDS` records, one model per worker process
      → CoGroupByKey(part) with the videos and the parts → each part in video order, written on a worker

Each video is then what the local runner makes of it, with the same functions: `embed` averages a
video's record vectors with `embed.average_records` and writes the part with
`embedding_folder.write_part` (fingerprint, rows, errors), after which the launcher writes
`embeddings.json` and `errors.jsonl` with `embed.finish`, so either runner resumes a run of the other;
`predict` averages a video's record probabilities and writes its parts' results
(`results.top_k_result`), which the launcher joins into the `--output` file, in input order, as the
local runner writes it (`results.write_results`). A file that can't be decoded is reported as locally
(`{"path", "error"}`, an `errors.jsonl` line); a video that fails in any other way on a worker is
reported with the exception, and the others go on.

Workers need `videofusion[beam]` and must open the model, the inputs and the output by the launcher's
paths (`beam_pipeline.check_shared`: on Dataflow, URLs only). Apache Beam is imported only inside
functions here, so `predict` and `embed` run without it.

Example:

>>> results = predict_beam("exports/demo/1", ["a.mp4", "b.mp4"], "predictions.jsonl")  # doctest: +SKIP
>>> next(results)  # doctest: +SKIP
{'path': 'a.mp4', 'top_k': [{'label': 'disk-left-high', 'score': 0.97}, ...]}
>>> embed_beam("exports/demo/1", "embeddings/demo", embed.EmbedInputs(manifest="m.csv"),
...            beam_args=["--runner=FlinkRunner", "--flink_master=host:8081"])["rows"]  # doctest: +SKIP
720
"""

import collections
import dataclasses
import functools
import itertools
import json
import os
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from videofusion import fileio
from videofusion.contract import tensors
from videofusion.ingest import beam_pipeline, clip_encoder, manifest, media
from videofusion.ingest.beam_pipeline import BeamSetupError
from videofusion.serving import beam_model, embed, embedding_folder, predict
from videofusion.serving.results import read_results, top_k_result, write_results

PLAN_FILE = "beam-plan.jsonl"
BATCH_RECORDS = 32  # RunInference's largest batch, in records (as the local embedder's batches)
VIDEOS = "videos"  # the decoding step's second output: one element per video
# A decoded video: (position in its part, row, records, error or None).
Decoded = Tuple[int, dict, List[bytes], Optional[str]]
# A gathered video: (row, per-record model outputs in record order, error or None).
Gathered = Tuple[dict, List[Dict[str, np.ndarray]], Optional[str]]


def _model_handler(model_path: str, load: Callable[[str], beam_model.RecordModel]):
    """`beam_model.model_handler` of `model_path`, whose model `load` gives on the workers."""
    try:
        return beam_model.model_handler(model_path, load, BATCH_RECORDS)
    except ImportError as error:  # Beam's TF handler imports tensorflow_hub
        raise BeamSetupError(f"Beam's TensorFlow model handler cannot be imported ({error}): pip install "
                             "'videofusion[beam]', or `make install-beam`") from error


# === On the workers ===


def _decode_entry(position: int, entry: manifest.Entry, params: clip_encoder.EncodeParams, caption: str) -> Decoded:
    try:
        records = predict.video_records(entry.resolved, params, entry.text or caption, entry.start, entry.end)
        return position, embed.entry_row(entry), records, None
    except media.MediaError as error:
        logging.warning("Skipped %s: %s", entry.path, error.reason)
        return position, embed.entry_row(entry), [], error.reason
    except Exception as error:  # noqa: BLE001 - one video's failure must not fail the bundle's others
        logging.exception("Decoding %s failed", entry.path)
        return position, embed.entry_row(entry), [], f"failed on a Beam worker: {type(error).__name__}: {error}"


def decode_planned(line: str, params: clip_encoder.EncodeParams, caption: str = ""):
    """One line of the plan file (a video, or a prepared shard) → its records, keyed `(part, position,
    index)`, and, tagged `VIDEOS`, `(part, (position, row, error, number of records))` for each video.

    `caption` is for the videos without their own text (`predict --caption`).
    """
    from apache_beam import pvalue
    from apache_beam.metrics import Metrics

    item = json.loads(line)
    started = time.monotonic()
    if "shard" in item:
        videos = (((position, row, records, None)
                   for position, (row, records) in enumerate(embed.shard_videos(item["shard"], item["split"]))))
    else:
        videos = [_decode_entry(item["position"], manifest.Entry(**item["entry"]), params, caption)]
    for position, row, records, error in videos:
        Metrics.counter(beam_pipeline.METRICS_NAMESPACE, "videos_skipped" if error else "videos_decoded").inc()
        Metrics.counter(beam_pipeline.METRICS_NAMESPACE, "records").inc(len(records))
        yield pvalue.TaggedOutput(VIDEOS, (item["part"], (position, row, error, len(records))))
        for index, record in enumerate(records):
            yield (item["part"], position, index), record
    Metrics.distribution(beam_pipeline.METRICS_NAMESPACE, "decode_ms").update(int(1000 * (time.monotonic() - started)))


def as_tensor(key, record: bytes):
    """A keyed record as the scalar string tensor that Beam's TF handler batches."""
    return key, tf.constant(record)


def by_part(key, result) -> Tuple[str, Tuple[int, int, Dict[str, np.ndarray]]]:
    """RunInference's `((part, position, index), PredictionResult)` → `(part, (position, index, outputs))`."""
    part, position, index = key
    return part, (position, index, result.inference)


def gather_part(name: str, grouped: dict) -> List[Gathered]:
    """A part's videos in plan order, each with its records' outputs in record order, from the
    CoGroupByKey of `part` (its number of videos, None for a shard), `videos` and `records`."""
    (expected,) = grouped["part"]
    videos = sorted(grouped[VIDEOS], key=lambda video: video[0])
    positions = [video[0] for video in videos]
    expected = len(videos) if expected is None else expected
    if positions != list(range(expected)):
        raise RuntimeError(f"{name}: expected videos 0..{expected - 1} of the plan, got positions {positions}")
    outputs = collections.defaultdict(dict)
    for position, index, output in grouped["records"]:
        outputs[position][index] = output
    gathered = []
    for position, row, error, count in videos:
        found = outputs[position]
        if sorted(found) != list(range(count)):
            raise RuntimeError(f"{name}: {row['path']} has {count} records but outputs of {sorted(found)}")
        gathered.append((row, [found[index] for index in range(count)], error))
    return gathered


def _stack(outputs: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Per-record outputs → `{name: [records, ...]}`, as the model returns a batch."""
    return {name: np.stack([output[name] for output in outputs]) for name in outputs[0]} if outputs else {}


def write_embedding_part(keyed: Tuple[str, dict], output_dir: str, spaces: Dict[str, int],
                         fingerprints: Dict[str, str]) -> str:
    """Writes one part of `embed`'s output as the local runner does (`embed.embed_part`); returns its name."""
    name, grouped = keyed
    videos = gather_part(name, grouped)
    done = [(row, outputs) for row, outputs, error in videos if error is None]
    errors = [{"path": row["path"], "reason": error} for row, _, error in videos if error is not None]
    rows, vectors = embed.average_records(done, _stack)  # `_stack` gets the videos' outputs, in order
    embedding_folder.write_part(output_dir, name, rows, vectors or embed.empty_vectors(spaces),
                                {"fingerprint": fingerprints[name], "errors": errors})
    return name


def part_results_path(output: str, part: str) -> str:
    """Where a part of `predict`'s results waits to be joined into `output` (beside it, hidden)."""
    directory, file_name = os.path.split(output)
    return os.path.join(directory, f".{file_name}.{part}.jsonl")


def write_prediction_part(keyed: Tuple[str, dict], output: str, labels: List[str], top_k: int) -> str:
    """Writes one part of `predict`'s results, in input order, as `predict.predict` gives them."""
    name, grouped = keyed
    results = []
    for row, outputs, error in gather_part(name, grouped):
        if error is not None:
            results.append({"path": row["path"], "error": error})
        else:
            probabilities = _stack(outputs)[tensors.PROBABILITIES].mean(axis=0)  # as `Predictor.probabilities`
            results.append(top_k_result(row["path"], probabilities, labels, top_k))
    write_results(results, part_results_path(output, name))
    return name


# === The launcher ===


def _write_plan(path: str, parts: Sequence[embed.Part]) -> int:
    """Writes the plan file: a line per video of the parts (per shard for a shard); returns the lines."""
    count = 0
    with fileio.atomic_open(path, "w", encoding="utf-8") as f:
        for part in parts:
            lines = ([{"part": part.name, "shard": part.shard, "split": part.split}] if part.shard is not None else
                     [{"part": part.name, "position": i, "entry": dataclasses.asdict(entry)}
                      for i, entry in enumerate(part.entries)])
            f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
            count += len(lines)
    return count


def _build(pipeline, plan_path: str, params: clip_encoder.EncodeParams, caption: str, parts: List[embed.Part],
           handler, write: Callable[[Tuple[str, dict]], str]) -> None:
    beam = beam_pipeline.import_beam()
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    decoded = (
        pipeline
        | "PlanFile" >> beam.Create([plan_path])
        | "ReadPlan" >> beam.FlatMap(beam_pipeline.read_plan)
        | "Spread" >> beam.Reshuffle()  # one worker reads the plan: without this, it would decode it all
        | "Decode" >> beam.FlatMap(decode_planned, params, caption).with_outputs(VIDEOS, main="records")
    )
    outputs = (
        decoded.records
        | "AsTensors" >> beam.MapTuple(as_tensor)
        | "RunInference" >> RunInference(KeyedModelHandler(handler))
        | "ByPart" >> beam.MapTuple(by_part)
    )
    planned = pipeline | "Parts" >> beam.Create([(part.name, part.size()) for part in parts])
    _ = (
        {"part": planned, VIDEOS: decoded[VIDEOS], "records": outputs}
        | "ByPartAndVideo" >> beam.CoGroupByKey()
        | "WritePart" >> beam.Map(write)
    )


def _run(pipeline_opts, plan_path: str, parts: List[embed.Part], params: clip_encoder.EncodeParams, caption: str,
         handler, write: Callable[[Tuple[str, dict]], str]) -> None:
    """Runs the pipeline of `parts` to its end; the plan file is removed however it ends."""
    count = _write_plan(plan_path, parts)
    logging.info("Beam (%s): %d plan lines in %d parts", beam_pipeline.runner_name(pipeline_opts), count, len(parts))
    try:
        result = beam_pipeline.run(pipeline_opts, lambda pipeline: _build(pipeline, plan_path, params, caption, parts,
                                                                          handler, write))
    finally:
        fileio.remove(plan_path)
    beam_pipeline.log_metrics(result)


def _inputs_of(parts: Sequence[embed.Part]) -> List[str]:
    """The files that the workers read for `parts`: their shards and videos."""
    return [path for part in parts
            for path in ([part.shard] if part.shard is not None else [entry.resolved for entry in part.entries])]


def predict_beam(model_dir: str, paths: Sequence[str], output: str, top_k: int = 5, caption: str = "",
                 beam_args: Sequence[str] = (), workers: int = 0,
                 videos_per_part: int = embedding_folder.DEFAULT_VIDEOS_PER_PART) -> Iterator[dict]:
    """`predict.predict` on Beam: writes the results to `output` (JSON lines, in the order of `paths`, the
    file `results.write_results` writes) and returns them, read back from it.

    Args:
      model_dir: an export (`exports/NAME/VERSION`); on a cluster, a path the workers open too.
      paths: the videos. output: the results' file (with its parts beside it while the pipeline runs).
      top_k, caption: as for `predict.predict`.
      beam_args: Beam pipeline options; by default the DirectRunner with `workers` processes (0: one per core).
      videos_per_part: videos per part of the results, each written by one worker.

    Raises:
      BeamSetupError: Beam or its TF model handler is not installed, or a path on Dataflow is local.
      FileNotFoundError: `model_dir` is not an export. ValueError: a caption for a model that reads no text.
    """
    beam_pipeline.import_beam()
    pipeline_opts = beam_pipeline.pipeline_options(beam_args, workers or os.cpu_count() or 1)
    runner = beam_pipeline.runner_name(pipeline_opts)
    beam_pipeline.check_shared(runner, [output], "--output")
    beam_pipeline.check_shared(runner, [model_dir], "--model")
    beam_pipeline.check_shared(runner, list(paths), "the videos")
    predictor = predict.Predictor(model_dir)
    predictor.check_caption(caption)
    parts = embed.plan_parts(embed.EmbedInputs(videos=tuple(paths)), videos_per_part).parts
    part_files = [part_results_path(output, part.name) for part in parts]
    try:
        if parts:
            write = functools.partial(write_prediction_part, output=output, labels=predictor.labels, top_k=top_k)
            _run(pipeline_opts, part_results_path(output, "beam-plan"), parts,
                 predictor.params, caption, _model_handler(model_dir, beam_model.load_classifier), write)
        write_results(itertools.chain.from_iterable(map(read_results, part_files)), output)
    finally:
        for path in part_files:
            if fileio.exists(path):
                fileio.remove(path)
    return read_results(output)


def embed_beam(model_path: str, output_dir: str, inputs: embed.EmbedInputs,
               videos_per_part: int = embedding_folder.DEFAULT_VIDEOS_PER_PART, workers: int = 0,
               beam_args: Sequence[str] = ()) -> dict:
    """`embed.embed` on Beam: the same folder (parts, `embeddings.json`, `errors.jsonl`), and either runner
    resumes the other's run; returns what it wrote to `embeddings.json`.

    `workers` sets the DirectRunner's processes (0: one per core); `beam_args` are Beam's pipeline options.
    Raises `BeamSetupError` (Beam or its TF model handler missing, a local path on Dataflow), and what
    `embed.embed` raises.
    """
    beam_pipeline.import_beam()
    pipeline_opts = beam_pipeline.pipeline_options(beam_args, workers or os.cpu_count() or 1)
    runner = beam_pipeline.runner_name(pipeline_opts)
    beam_pipeline.check_shared(runner, [output_dir], "--output")
    beam_pipeline.check_shared(runner, [model_path], "--model")
    embedder, plan, todo = embed.plan_run(model_path, output_dir, inputs, videos_per_part)
    beam_pipeline.check_shared(runner, _inputs_of([part for part, _ in todo]), "the videos")
    if todo:
        write = functools.partial(write_embedding_part, output_dir=output_dir, spaces=embedder.spaces,
                                  fingerprints={part.name: fingerprint for part, fingerprint in todo})
        _run(pipeline_opts, os.path.join(output_dir, embedding_folder.STATE_DIR, PLAN_FILE), [p for p, _ in todo],
             embedder.params, "", _model_handler(model_path, beam_model.load_embedder), write)
    return embed.finish(output_dir, embedder, plan, inputs)
