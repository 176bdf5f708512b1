"""Ingest: a manifest (or class folders) of videos → sharded TFRecords and reports, in parallel, resumable.

1. plan: read the inputs, fix the label vocabulary and each video's split (the `split` column, else a hash
   of the path), and give every video a shard (round robin over the split's videos, in input order);
2. encode: worker processes decode videos in parallel (`clip_encoder.encode_video`); results come back
   in plan order, so the shards are identical whatever the number of workers;
3. write: each shard is written under a temporary name; when its last video is in, its statistics go to
   `.prepare/<shard>.json` and the shard is renamed into place. A rerun of the same command skips the
   shards that are complete (same plan fingerprint) and redoes the rest, so a killed run resumes
   without duplicate or truncated records;
4. report: `labels.txt`, `dataset.json` (counts per split and label, duration, parameters, version) and
   `errors.jsonl` (one line per skipped input: path, reason) — the contract with everything after
   ingest, `prepared_folder.py`.

Steps 1, 3 and 4 (`plan_run`, `ShardWriter`, `finish_run`) and the per-video work (`encode_task`,
`clip_encoder.encode_video`) are shared with the Apache Beam runner (`beam_runner.py`, `--runner beam`),
which does step 2 on a Beam cluster instead of in local processes: both write the same shards.

The inputs and the output folder may be URLs that `tf.io.gfile` opens (`gs://…`; `fileio`): the state,
reports and shards are then written there, each under a temporary name and renamed (on GCS a copy and
a delete) when complete, while worker processes write each video's records to a local temporary
folder. A worker imports TensorFlow only when it opens a URL.

Example:

>>> summary = prepare_dataset(PrepareOptions(manifest="datasets/demo/raw/manifest.csv",
...                                          output_dir="datasets/demo/records"))  # doctest: +SKIP
>>> summary["counts"]["train"]  # doctest: +SKIP
336
"""

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from typing import Dict, Iterator, List, Optional

from absl import logging

import videofusion
from videofusion import fileio, progress
from videofusion.contract import prepared_folder, record_schema
from videofusion.ingest import clip_encoder, manifest, recipes

STATE_DIR = ".prepare"  # per-shard statistics of complete shards, and chunks of videos in progress
_SHARD_PATTERN = re.compile(r"^(train|val|test)-\d{5}-of-\d{5}\.tfrecord$")


@dataclasses.dataclass
class PrepareOptions:
    """The parameters of one `prepare` run; the command line's flags take their defaults from here."""

    output_dir: str
    manifest: Optional[str] = None
    input_dir: Optional[str] = None
    unlabeled_dir: Optional[str] = None  # videos without labels, besides the labeled source (for pretraining)
    recipe: Optional[str] = None  # a dataset recipe (`recipes.RECIPES`) reading the dataset at `recipe_root`
    recipe_root: Optional[str] = None
    recipe_split: Optional[int] = None  # the official split number, for datasets that have several
    fps: float = prepared_folder.DEFAULT_FPS
    short_side: int = prepared_folder.DEFAULT_SHORT_SIDE
    sample_rate: int = prepared_folder.DEFAULT_SAMPLE_RATE
    max_clip_seconds: float = prepared_folder.DEFAULT_MAX_CLIP_SECONDS
    num_shards: int = 4
    workers: int = 0  # 0: one per CPU core
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    jpeg_quality: int = prepared_folder.DEFAULT_JPEG_QUALITY

    def num_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def encode_params(self) -> clip_encoder.EncodeParams:
        return clip_encoder.EncodeParams(
            fps=self.fps,
            short_side=self.short_side,
            sample_rate=self.sample_rate,
            max_clip_seconds=self.max_clip_seconds or None,
            jpeg_quality=self.jpeg_quality,
            # Parallel workers already use every core; decoder threads on top only contend.
            decoder_threads=1 if self.num_workers() > 1 else 0,
        )


@dataclasses.dataclass
class ShardPlan:
    """The videos that go into one shard, in order."""

    split: str
    index: int
    count: int
    entries: List[manifest.Entry]

    @property
    def name(self) -> str:
        return prepared_folder.shard_name(self.split, self.index, self.count)


@dataclasses.dataclass
class RunPlan:
    """What a run writes, fixed before any video is decoded; the local and the Beam runner start from it."""

    labels: List[str]  # the label vocabulary, index = position
    plans: List[ShardPlan]  # every shard of the output
    fingerprints: Dict[str, str]  # shard name → fingerprint of what it holds
    todo: List[ShardPlan]  # the shards to write (the others are complete from an earlier run)
    problems: List[manifest.Problem]  # inputs skipped before decoding
    params: clip_encoder.EncodeParams

    def label_index(self) -> Dict[str, int]:
        """{label: index}, and the unlabeled entries' "" → `record_schema.UNLABELED_INDEX`."""
        return {"": record_schema.UNLABELED_INDEX, **{label: i for i, label in enumerate(self.labels)}}


def read_inputs(options: PrepareOptions):
    """(entries, problems) from the manifest, the class folders or a dataset recipe, and the unlabeled
    videos of `options.unlabeled_dir`."""
    entries, problems = _read_labeled_inputs(options)
    if options.unlabeled_dir is not None:
        unlabeled, unusable = manifest.read_unlabeled_folder(options.unlabeled_dir)
        entries, problems = entries + unlabeled, problems + unusable
    return entries, problems


def _read_labeled_inputs(options: PrepareOptions):
    if sum(source is not None for source in (options.manifest, options.input_dir, options.recipe)) != 1:
        raise manifest.ManifestError("give exactly one of a manifest (--manifest), --input-dir or --recipe")
    if options.recipe is None and (options.recipe_root is not None or options.recipe_split is not None):
        raise manifest.ManifestError("--root and --split go with --recipe")
    if options.manifest is not None:
        return manifest.read_manifest(options.manifest)
    if options.input_dir is not None:
        return manifest.read_class_folders(options.input_dir)
    return recipes.read(options.recipe, options.recipe_root, options.recipe_split)


def plan_shards(entries: List[manifest.Entry], options: PrepareOptions) -> List[ShardPlan]:
    """Every video's split and shard; a split gets at most `num_shards` shards, none if it is empty."""
    plans = []
    for split in prepared_folder.SPLITS:
        in_split = [
            e for e in entries
            if manifest.entry_split(e, options.val_fraction, options.test_fraction) == split
        ]
        count = min(options.num_shards, len(in_split))
        plans += [ShardPlan(split, i, count, in_split[i::count]) for i in range(count)]
    return plans


def _fingerprint(plan: ShardPlan, labels: List[str], params: clip_encoder.EncodeParams, stats: dict) -> str:
    """Changes whenever what the shard would contain changes (inputs, their files' `stats`, or parameters)."""
    content = {
        "version": [record_schema.SCHEMA_VERSION, plan.name],
        "params": {k: v for k, v in dataclasses.asdict(params).items() if k != "decoder_threads"},
        "labels": labels,
        "entries": [[dataclasses.asdict(e), stats[e.resolved]] for e in plan.entries],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


def _state_path(output_dir: str, shard_name: str) -> str:
    return os.path.join(output_dir, STATE_DIR, shard_name + ".json")


def _completed_state(output_dir: str, plan: ShardPlan, fingerprint: str) -> Optional[dict]:
    """The saved statistics of `plan` if its shard is complete and from the same plan."""
    state_path = _state_path(output_dir, plan.name)
    if not (fileio.isfile(state_path) and fileio.isfile(os.path.join(output_dir, plan.name))):
        return None
    state = fileio.read_json(state_path)
    return state if state.get("fingerprint") == fingerprint else None


def _clean_output_dir(output_dir: str, plans: List[ShardPlan]) -> None:
    """Removes temporary files of killed runs and shards that belong to no shard of this plan."""
    for chunk in fileio.glob(os.path.join(output_dir, STATE_DIR, "*.part")):
        fileio.remove(chunk)
    wanted = {plan.name for plan in plans}
    for name in fileio.listdir(output_dir):
        path = os.path.join(output_dir, name)
        stale_temp = name.startswith(".") and ".tmp-" in name
        foreign_shard = _SHARD_PATTERN.match(name) and name not in wanted
        if stale_temp or foreign_shard:
            logging.warning("Removing %s (%s)", path, "unfinished" if stale_temp else "not in this plan")
            fileio.remove(path)


class ShardWriter:
    """Writes one shard under a temporary name (videos' records, appended) and commits it with its stats.

    Both runners write their shards with it: the local one as its worker processes finish videos, the
    Beam one (`beam_runner`) on the worker that gets the shard's videos. `commit` saves the statistics to
    `.prepare/<shard>.json`, then renames the shard into place; `abort` removes the temporary file.

    >>> import tempfile; out = tempfile.mkdtemp()
    >>> writer = ShardWriter(out, "train-00000-of-00001.tfrecord", 1, fingerprint="f", labels=["cat"])
    >>> writer.add(clip_encoder.EncodeResult("a.mp4", "cat", 1, 2.0, None), records=b"...")
    >>> writer.commit(); sorted(os.listdir(out))
    ['.prepare', 'train-00000-of-00001.tfrecord']
    """

    def __init__(self, output_dir: str, name: str, num_videos: int, fingerprint: str, labels: List[str]):
        self._output_dir, self._name = output_dir, name
        self._final = os.path.join(output_dir, name)
        self._file = fileio.open_file(fileio.temp_name(self._final), "wb")
        self.state = {
            "fingerprint": fingerprint,
            "clips": 0,
            "videos": 0,
            "duration_s": 0.0,
            "label_clips": {label: 0 for label in labels},
            "unlabeled_clips": 0,
            "errors": [],
        }
        self.pending = num_videos

    def add(self, result: clip_encoder.EncodeResult, records: Optional[bytes] = None) -> None:
        """Counts `result` and appends its TFRecord-framed records: `records`, else its chunk file."""
        self.pending -= 1
        if result.error is not None:
            logging.warning("Skipping %s: %s", result.path, result.error)
            self.state["errors"].append({"path": result.path, "reason": result.error})
            return
        if records is not None:
            self._file.write(records)
        else:
            with open(result.chunk_path, "rb") as chunk:
                shutil.copyfileobj(chunk, self._file)
            os.remove(result.chunk_path)
        self.state["clips"] += result.clips
        self.state["videos"] += 1
        self.state["duration_s"] += result.duration_s
        if result.label:
            self.state["label_clips"][result.label] += result.clips
        else:
            self.state["unlabeled_clips"] += result.clips

    def commit(self) -> None:
        self._file.close()
        fileio.write_json(_state_path(self._output_dir, self._name), self.state)
        fileio.rename(fileio.temp_name(self._final), self._final)

    def abort(self) -> None:
        self._file.close()
        if fileio.exists(fileio.temp_name(self._final)):
            fileio.remove(fileio.temp_name(self._final))


def _start_method() -> str:
    """How worker processes start: forked on Linux, with the modules they need (PyAV, OpenCV, numpy)
    already imported here, so that each starts in milliseconds; started afresh ("spawn": half a CPU
    second of imports each, which took a run's fixed cost from 0.85 to about 2 CPU seconds, where
    decoding `bench_prepare`'s 16 clips of 10 s takes 6.5) where forking is unsafe: once this process
    has imported TensorFlow (`fileio` does for URLs), whose threads and locks a forked child would
    inherit half-way, and on other systems."""
    if sys.platform == "linux" and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


def _results(tasks: List[clip_encoder.EncodeTask], workers: int) -> Iterator[clip_encoder.EncodeResult]:
    """`encode_video` over `tasks`, in order, in `workers` processes (in this one if 1)."""
    if workers == 1 or len(tasks) <= 1:
        yield from map(clip_encoder.encode_video, tasks)
        return
    context = multiprocessing.get_context(_start_method())
    with context.Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(clip_encoder.encode_video, tasks, chunksize=1)


def encode_task(entry: manifest.Entry, label_index: int, params: clip_encoder.EncodeParams,
                chunk_path: Optional[str] = None) -> clip_encoder.EncodeTask:
    """The `clip_encoder` task of one planned video; both runners make theirs here."""
    return clip_encoder.EncodeTask(
        path=entry.path, resolved=entry.resolved, label=entry.label, label_index=label_index,
        caption=entry.text, start=entry.start, end=entry.end, params=params, chunk_path=chunk_path,
    )


@contextlib.contextmanager
def _chunk_folder(output_dir: str) -> Iterator[str]:
    """Where workers write each video's records: `.prepare/` of a local output folder; for a URL, a
    local temporary folder (workers write local files, and a file per video on GCS would be slow)."""
    if not fileio.is_url(output_dir):
        yield os.path.join(output_dir, STATE_DIR)
        return
    with tempfile.TemporaryDirectory(prefix="videofusion-chunks-") as folder:
        yield folder


def _encode_and_write(options: PrepareOptions, run: RunPlan, chunks: str) -> None:
    """The local runner: `run.todo`'s videos in worker processes (their records go to files in the folder
    `chunks`), each shard committed when complete."""
    label_index = run.label_index()
    tasks, owners = [], []
    for plan in run.todo:
        for e in plan.entries:
            chunk = os.path.join(chunks, f"{plan.name}.{len(tasks)}.part")
            tasks.append(encode_task(e, label_index[e.label], run.params, chunk))
            owners.append(plan)
    bar = progress.RateProgress(len(tasks), desc="prepare", unit="video")
    writer = None
    for plan, result in zip(owners, _results(tasks, options.num_workers())):
        if writer is None:
            writer = ShardWriter(options.output_dir, plan.name, len(plan.entries), run.fingerprints[plan.name],
                                 run.labels)
        writer.add(result)
        bar.update(seconds=result.duration_s)
        if writer.pending == 0:
            writer.commit()
            writer = None
    bar.close()


def _write_reports(options, labels, plans, states, problems) -> dict:
    out = options.output_dir
    with fileio.atomic_open(os.path.join(out, prepared_folder.LABELS_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{label}\n" for label in labels))
    errors = [dataclasses.asdict(p) for p in problems] + [e for s in states for e in s["errors"]]
    with fileio.atomic_open(os.path.join(out, prepared_folder.ERRORS_FILE), "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors))
    counts = {split: 0 for split in prepared_folder.SPLITS}
    videos = {split: 0 for split in prepared_folder.SPLITS}
    label_counts = {split: {label: 0 for label in labels} for split in prepared_folder.SPLITS}
    unlabeled = {split: 0 for split in prepared_folder.SPLITS}
    for plan, state in zip(plans, states):
        counts[plan.split] += state["clips"]
        unlabeled[plan.split] += state.get("unlabeled_clips", 0)  # shards written before 0.3 have none
        videos[plan.split] += state["videos"]
        for label, n in state["label_clips"].items():
            label_counts[plan.split][label] += n
    parameters = dataclasses.asdict(options)
    summary = {
        prepared_folder.SCHEMA_VERSION: record_schema.SCHEMA_VERSION,
        prepared_folder.VIDEOFUSION_VERSION: videofusion.__version__,
        prepared_folder.COUNTS: counts,
        prepared_folder.VIDEOS: videos,
        prepared_folder.LABEL_COUNTS: label_counts,
        prepared_folder.UNLABELED_COUNTS: unlabeled,
        prepared_folder.NUM_ERRORS: len(errors),
        prepared_folder.TOTAL_DURATION_S: round(sum(s["duration_s"] for s in states), 3),
        prepared_folder.FPS: options.fps,
        prepared_folder.SHORT_SIDE: options.short_side,
        prepared_folder.SAMPLE_RATE: options.sample_rate,
        prepared_folder.SHARDS: {split: sum(p.split == split for p in plans) for split in prepared_folder.SPLITS},
        prepared_folder.PARAMETERS: parameters,
    }
    fileio.write_json(os.path.join(out, prepared_folder.DATASET_FILE), summary)
    return summary


def plan_run(options: PrepareOptions) -> RunPlan:
    """Reads the inputs, fixes every video's shard and finds the shards still to write (step 1).

    Also removes what killed runs left in the output folder. Raises `manifest.ManifestError` when the
    inputs themselves cannot be read.
    """
    entries, problems = read_inputs(options)
    labels = manifest.label_vocabulary(entries)
    plans = plan_shards(entries, options)
    fileio.makedirs(os.path.join(options.output_dir, STATE_DIR))
    _clean_output_dir(options.output_dir, plans)
    params = options.encode_params()
    paths = [e.resolved for plan in plans for e in plan.entries]
    stats = dict(zip(paths, fileio.stat_all(paths)))
    fingerprints = {plan.name: _fingerprint(plan, labels, params, stats) for plan in plans}
    todo = [p for p in plans if _completed_state(options.output_dir, p, fingerprints[p.name]) is None]
    if len(todo) < len(plans):
        logging.info("Resuming: %d of %d shards are already complete", len(plans) - len(todo), len(plans))
    return RunPlan(labels, plans, fingerprints, todo, problems, params)


def finish_run(options: PrepareOptions, run: RunPlan) -> dict:
    """Writes the reports from the committed shards' statistics (step 4); returns `dataset.json`'s content."""
    states = [_completed_state(options.output_dir, p, run.fingerprints[p.name]) for p in run.plans]
    missing = [p.name for p, state in zip(run.plans, states) if state is None]
    if missing:
        raise RuntimeError(f"{options.output_dir}: the run ended without writing the shards {missing}")
    summary = _write_reports(options, run.labels, run.plans, states, run.problems)
    logging.info(
        "Wrote %s clips from %s videos to %s; %d inputs skipped (see %s)",
        summary[prepared_folder.COUNTS], summary[prepared_folder.VIDEOS], options.output_dir,
        summary[prepared_folder.NUM_ERRORS], os.path.join(options.output_dir, prepared_folder.ERRORS_FILE),
    )
    return summary


def prepare_dataset(options: PrepareOptions) -> dict:
    """Runs (or resumes) the whole ingest on this machine; returns what it wrote to `dataset.json`.

    `beam_runner.prepare_dataset_beam` does the same work as an Apache Beam pipeline.

    Raises:
      manifest.ManifestError: the manifest or input folder itself cannot be read.
    """
    run = plan_run(options)
    with _chunk_folder(options.output_dir) as chunks:
        _encode_and_write(options, run, chunks)
    return finish_run(options, run)
