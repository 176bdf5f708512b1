"""`videofusion embed`: a model and videos → one embedding per video in each of the model's spaces.

Inputs: prepared shards (`--data DIR`, the splits asked for; a video is its consecutive records, as
`prepare` wrote them, so a video cut into several records gets one vector), a manifest, class folders or
video files (decoded as `prepare` decodes them, with the model's decoding parameters). A video's vector
is the mean of its records' vectors, each the mean over its evaluation views (`embedders.py`).

The work is planned into parts before anything is decoded (a shard each, or `videos_per_part` videos
in input order), and each part is written whole (`embedding_folder.write_part`) with a fingerprint of
the model and of its inputs (names, sizes, modification times); run again, `embed` skips the parts
whose fingerprint is unchanged and redoes the others, so a killed run resumes where it stopped. A video
that can't be decoded is reported in `errors.jsonl` (and logged) and skipped; the others go on. The local
runner decodes videos in threads (PyAV decodes outside the GIL) while the model embeds the batch before;
the Apache Beam runner (`beam_inference.py`) runs the same parts on a cluster.

Example:

>>> inputs = EmbedInputs(data_dir="datasets/demo/records")
>>> summary = embed("exports/demo/1", "embeddings/demo", inputs)  # doctest: +SKIP
>>> summary["rows"], summary["spaces"]  # doctest: +SKIP
(720, {'fused': 128})
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

import videofusion
from videofusion import fileio, progress
from videofusion.contract import prepared_folder, record_schema
from videofusion.ingest import manifest, media
from videofusion.serving import embedders, embedding_folder


@dataclasses.dataclass(frozen=True)
class EmbedInputs:
    """What to embed: one of prepared shards (`data_dir`, `splits`), a manifest, class folders or files."""

    data_dir: Optional[str] = None
    splits: Tuple[str, ...] = prepared_folder.SPLITS
    manifest: Optional[str] = None
    input_dir: Optional[str] = None
    videos: Tuple[str, ...] = ()

    def describe(self) -> dict:
        """What `embeddings.json` records of the input."""
        if self.data_dir:
            return {"data_dir": self.data_dir, "splits": list(self.splits)}
        if self.manifest:
            return {"manifest": self.manifest}
        if self.input_dir:
            return {"input_dir": self.input_dir}
        return {"videos": len(self.videos)}


@dataclasses.dataclass
class Part:
    """One unit of work: a shard file, or videos (manifest entries) in input order."""

    name: str
    shard: Optional[str] = None
    split: Optional[str] = None
    entries: List[manifest.Entry] = dataclasses.field(default_factory=list)

    def fingerprint(self, model: embedders.ModelInfo) -> str:
        """A hash of the model and of what the part reads (names, sizes, modification times)."""
        if self.shard is not None:
            inputs = [self.shard, fileio.stat(self.shard)]
        else:
            stats = fileio.stat_all([entry.resolved for entry in self.entries])
            inputs = [[dataclasses.asdict(entry), stat] for entry, stat in zip(self.entries, stats)]
        identity = {"model": [model.path, model.kind, model.version], "inputs": inputs,
                    "format": embedding_folder.FORMAT_VERSION}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()

    def size(self) -> Optional[int]:
        """Videos in the part (None for a shard: counted as it is read)."""
        return None if self.shard is not None else len(self.entries)


@dataclasses.dataclass
class Plan:
    """Every part of the output, and the inputs that were skipped before any decoding."""

    parts: List[Part]
    problems: List[manifest.Problem]


def plan_parts(inputs: EmbedInputs, videos_per_part: int = embedding_folder.DEFAULT_VIDEOS_PER_PART) -> Plan:
    """The parts of `inputs`; raises `FileNotFoundError` / `manifest.ManifestError` for inputs that can't be read."""
    if inputs.data_dir:
        shards = [(split, path) for split in inputs.splits for path in _shards_or_none(inputs.data_dir, split)]
        if not shards:
            raise FileNotFoundError(f"{inputs.data_dir}: no shards of {', '.join(inputs.splits)}: is it a folder "
                                    "that `videofusion prepare` wrote?")
        return Plan([Part(embedding_folder.part_name(i), shard=path, split=split)
                     for i, (split, path) in enumerate(shards)], [])
    if inputs.manifest:
        entries, problems = manifest.read_manifest(inputs.manifest)
    elif inputs.input_dir:
        entries, problems = manifest.read_class_folders(inputs.input_dir)
    else:
        entries, problems = [manifest.Entry(path, path, "") for path in inputs.videos], []
    chunks = [entries[i:i + videos_per_part] for i in range(0, len(entries), videos_per_part)]
    return Plan([Part(embedding_folder.part_name(i), entries=chunk) for i, chunk in enumerate(chunks)], problems)


def _shards_or_none(data_dir: str, split: str) -> List[str]:
    try:
        return prepared_folder.shard_files(data_dir, split)
    except FileNotFoundError:  # a split that holds no video
        return []


def video_id(path: str, start_s: Optional[float]) -> str:
    """A video's id: its path, with `@<start seconds>` when it starts later than the file.

    >>> video_id("videos/a.mp4", None), video_id("videos/a.mp4", 12.5)
    ('videos/a.mp4', 'videos/a.mp4@12.5')
    """
    return f"{path}@{start_s:g}" if start_s else path


def _context(record: bytes) -> dict:
    """The context fields of a serialized clip that name its video (no frame is decoded)."""
    context = tf.train.SequenceExample.FromString(record).context.feature

    def text(key):
        values = context[key].bytes_list.value if key in context else []
        return values[0].decode("utf-8") if values else ""

    def integer(key):
        values = context[key].int64_list.value if key in context else []
        return int(values[0]) if values else 0

    return {"path": text(record_schema.FILENAME), "label": text(record_schema.LABEL_TEXT),
            "start_us": integer(record_schema.START_US), "end_us": integer(record_schema.END_US)}


def shard_videos(shard: str, split: Optional[str]) -> Iterator[Tuple[dict, List[bytes]]]:
    """(row, records) of each video of a shard: its consecutive records of one file, each starting where
    the one before ended."""
    row, records, end_us = None, [], None
    for record in tf.data.TFRecordDataset(shard).as_numpy_iterator():
        context = _context(record)
        if row is not None and context["path"] == row["path"] and context["start_us"] == end_us:
            records.append(record)
        else:
            if row is not None:
                yield row, records
            row = {"id": video_id(context["path"], context["start_us"] / 1e6), "path": context["path"],
                   "label": context["label"] or None, "split": split}
            records = [record]
        end_us = context["end_us"]
    if row is not None:
        yield row, records


def entry_row(entry: manifest.Entry) -> dict:
    """The row of a video that a manifest entry names (its `clips` are added once it is embedded).

    >>> entry_row(manifest.Entry("a.mp4", "/data/a.mp4", "cat", split="test", start=2.0))
    {'id': 'a.mp4@2', 'path': 'a.mp4', 'label': 'cat', 'split': 'test'}
    """
    return {"id": video_id(entry.path, entry.start), "path": entry.path, "label": entry.label or None,
            "split": entry.split}


def empty_vectors(spaces: Dict[str, int]) -> Dict[str, np.ndarray]:
    """`{space: [0, dim]}`: the vectors of a part without a video."""
    return {space: np.zeros((0, dim), np.float32) for space, dim in spaces.items()}


def _entry_videos(embedder: embedders.Embedder, entries: Sequence[manifest.Entry], workers: int,
                  errors: List[dict]) -> Iterator[Tuple[dict, List[bytes]]]:
    """(row, records) of each entry that decodes, in order, decoded by `workers` threads at most 2 × `workers`
    videos ahead (a part of long videos is not held in memory at once); the others go to `errors`."""

    def decode(entry):
        try:
            return embedder.records(entry.resolved, entry.text or "", entry.start, entry.end), None
        except media.MediaError as error:
            return None, error.reason

    workers = max(workers, 1)
    pending = iter(entries)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        ahead = collections.deque((entry, pool.submit(decode, entry))
                                  for entry in itertools.islice(pending, 2 * workers))
        while ahead:
            entry, future = ahead.popleft()
            following = next(pending, None)
            if following is not None:
                ahead.append((following, pool.submit(decode, following)))
            records, reason = future.result()
            if reason is not None:
                logging.warning("Skipped %s: %s", entry.path, reason)
                errors.append({"path": entry.path, "reason": reason})
                continue
            yield entry_row(entry), records


def part_videos(embedder: embedders.Embedder, part: Part, workers: int,
                errors: List[dict]) -> Iterator[Tuple[dict, List[bytes]]]:
    """(row, records) of each video of `part` that can be used (the others go to `errors`)."""
    if part.shard is not None:
        return shard_videos(part.shard, part.split)
    return _entry_videos(embedder, part.entries, workers, errors)


def average_records(videos: Sequence[Tuple[dict, List[bytes]]],
                    embed_records: Callable[[List[bytes]], Dict[str, np.ndarray]]) -> Tuple[List[dict], Dict]:
    """Rows (with `clips`) and `{space: [videos, dim]}`: each video's vector the mean of its records'."""
    records = [record for _, video_records in videos for record in video_records]
    per_record = embed_records(records) if records else {}
    owner = np.repeat(np.arange(len(videos)), [len(video_records) for _, video_records in videos])
    counts = np.bincount(owner, minlength=len(videos))[:, None]
    vectors = {}
    for space, matrix in per_record.items():
        sums = np.zeros((len(videos), matrix.shape[1]), np.float64)
        np.add.at(sums, owner, matrix)
        vectors[space] = (sums / counts).astype(np.float32)
    rows = [{**row, "clips": len(video_records)} for row, video_records in videos]
    return rows, vectors


def embed_part(embedder: embedders.Embedder, part: Part, workers: int = 1,
               on_video: Callable[[], None] = lambda: None, batch_videos: int = 16) -> Tuple[List[dict], Dict, List]:
    """(rows, `{space: [rows, dim]}`, errors) of one part; videos are embedded `batch_videos` at a time."""
    errors: List[dict] = []
    rows, chunks, batch = [], [], []

    def flush():
        batch_rows, batch_vectors = average_records(batch, embedder.embed_records)
        rows.extend(batch_rows)
        chunks.append(batch_vectors)
        batch.clear()

    for video in part_videos(embedder, part, workers, errors):
        batch.append(video)
        on_video()
        if len(batch) == batch_videos:
            flush()
    if batch:
        flush()
    chunks = [chunk for chunk in chunks if chunk]
    vectors = ({space: np.concatenate([chunk[space] for chunk in chunks]) for space in embedder.spaces} if chunks
               else empty_vectors(embedder.spaces))
    return rows, vectors, errors


def _check_model(output_dir: str, model: embedders.ModelInfo) -> None:
    """Refuses a folder whose finished embeddings came from another model (a rerun of the same may resume)."""
    path = os.path.join(output_dir, embedding_folder.SUMMARY_FILE)
    if fileio.isfile(path):
        before = fileio.read_json(path)["model"]
        if [before["path"], before["version"]] != [model.path, model.version]:
            raise FileExistsError(
                f"{output_dir} holds embeddings of {before['path']} (version {before['version']}), not of "
                f"{model.path} (version {model.version}): choose another --output, or remove it"
            )


def finish(output_dir: str, embedder: embedders.Embedder, plan: Plan, inputs: EmbedInputs) -> dict:
    """Writes `errors.jsonl` and `embeddings.json` from the parts' states; removes parts not in `plan`;
    returns the summary."""
    states = {part.name: embedding_folder.part_state(output_dir, part.name) for part in plan.parts}
    missing = [name for name, state in states.items() if state is None]
    if missing:
        raise RuntimeError(f"{output_dir}: parts {', '.join(missing[:5])} were not written")
    planned = {part.name for part in plan.parts}
    state_dir = os.path.join(output_dir, embedding_folder.STATE_DIR)
    for name in fileio.listdir(state_dir) if fileio.isdir(state_dir) else []:
        stale = name.removesuffix(".json")
        if name.endswith(".json") and stale not in planned:
            embedding_folder.remove_part(output_dir, stale, embedder.spaces)
    errors = [{"path": p.path, "reason": p.reason} for p in plan.problems]
    errors += [error for part in plan.parts for error in states[part.name]["errors"]]
    with fileio.atomic_open(os.path.join(output_dir, embedding_folder.ERRORS_FILE), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(error, ensure_ascii=False) + "\n" for error in errors)
    summary = {
        "format": embedding_folder.FORMAT_VERSION,
        "model": dataclasses.asdict(embedder.info),
        "spaces": embedder.spaces,
        "parts": [{"name": part.name, "rows": states[part.name]["rows"]} for part in plan.parts],
        "rows": sum(state["rows"] for state in states.values()),
        "errors": len(errors),
        "input": inputs.describe(),
        "videofusion_version": videofusion.__version__,
    }
    fileio.write_json(os.path.join(output_dir, embedding_folder.SUMMARY_FILE), summary)
    logging.info("%s: %d videos in %d parts, spaces %s; %d inputs skipped (%s)", output_dir, summary["rows"],
                 len(plan.parts), embedder.spaces, len(errors), embedding_folder.ERRORS_FILE)
    return summary


def todo_parts(output_dir: str, embedder: embedders.Embedder, plan: Plan) -> List[Tuple[Part, str]]:
    """(part, fingerprint) of the parts of `plan` not yet complete in `output_dir` with that fingerprint."""
    todo = []
    for part in plan.parts:
        fingerprint = part.fingerprint(embedder.info)
        state = embedding_folder.part_state(output_dir, part.name)
        if state is None or state["fingerprint"] != fingerprint:
            todo.append((part, fingerprint))
    return todo


def plan_run(model_path: str, output_dir: str, inputs: EmbedInputs,
             videos_per_part: int) -> Tuple[embedders.Embedder, Plan, List[Tuple[Part, str]]]:
    """(the model's embedder, every part, the parts left to do with their fingerprints) of a run of either
    runner; refuses an output folder that holds another model's embeddings."""
    embedder = embedders.load_embedder(model_path)
    _check_model(output_dir, embedder.info)
    plan = plan_parts(inputs, videos_per_part)
    todo = todo_parts(output_dir, embedder, plan)
    logging.info("%s: %d of %d parts to embed (the others are complete)", output_dir, len(todo), len(plan.parts))
    return embedder, plan, todo


def embed(model_path: str, output_dir: str, inputs: EmbedInputs,
          videos_per_part: int = embedding_folder.DEFAULT_VIDEOS_PER_PART, workers: int = 0) -> dict:
    """Embeds `inputs` with the model at `model_path` (export or run folder) into `output_dir`; resumes a
    run that stopped; returns what it wrote to `embeddings.json`.

    `workers` threads decode videos (0: one per CPU core).
    """
    embedder, plan, todo = plan_run(model_path, output_dir, inputs, videos_per_part)
    sizes = [part.size() for part, _ in todo]
    bar = progress.RateProgress(None if None in sizes else sum(sizes), desc="embed", unit="video")
    for part, fingerprint in todo:
        rows, vectors, errors = embed_part(embedder, part, workers or os.cpu_count() or 1, on_video=bar.update)
        embedding_folder.write_part(output_dir, part.name, rows, vectors, {"fingerprint": fingerprint,
                                                                          "errors": errors})
    bar.close()
    return finish(output_dir, embedder, plan, inputs)
