"""Input candidates: what it costs a host core to hand the model a clip's frames at its resolution.

The model trains at `--image_size` (112 px); the prepared shards hold JPEG frames of a short side chosen
at `prepare` time (`--short-side`), and the input pipeline decodes them on the host's cores. The
candidates, each measured on the same clips prepared at several short sides (`--sides`: bench_prepare's
textured clips, made and prepared once beside its cache; or `--data_dirs`, folders prepared elsewhere):

- `decode <side>`: `tf.io.decode_jpeg` of frames stored at that side, as the pipeline decodes them
  (`pipeline.decode_frames`, in a `tf.function`, one clip at a time); the model's first layer then
  resizes the square crop to the training size on the accelerator;
- `decode <side> ÷2 (DCT)`: the same frames decoded at half size in the DCT domain (libjpeg's scaled
  IDCT, `tf.io.decode_jpeg(ratio=2)`): a 256-px store serving a 128-px model;
- `opencv <side>`: `cv2.imdecode`, the decoder a host without TensorFlow has (and the `opencv ÷2`
  counterpart, `IMREAD_REDUCED_COLOR_2`);
- `uint8 cache <image_size>`: frames stored raw at the training size, read back with `np.frombuffer`
  from memory: what a frame cache costs once it is written, and its size per clip;
- and the whole pipeline (`pipeline.training_epochs`, all cores) on the data of each side, and at the
  training size in shorter records (`prepare --max-clip-seconds`): clips/s and CPU ms per clip. A record
  holds every frame and the audio of its span, which the pipeline reads, copies and parses to use 16
  frames: its cost grows with the record's length.

Per-frame figures are frames per core-second: the CPU seconds of this process, all its threads
counted, the fastest of `--decode_repeats` passes over the frames; the JPEG bytes per frame are given with them.

GPU decoding (NVIDIA DALI through `external_source`, since DALI's TFRecord reader cannot read
SequenceExample, NVIDIA/DALI#3824) needs an NVIDIA GPU and DALI's wheels, which this machine lacks; it
is not measured here.

    .venv/bin/python benchmarks/bench_input.py --output results/input.md
    .venv/bin/python benchmarks/bench_input.py --data_dirs 112=/tmp/in/s112,128=/tmp/in/s128 --sides 112,128

The last line of output is one JSON object; `--output` writes the markdown table.
"""

import datetime
import json
import os
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bench_prepare  # noqa: E402  (benchmarks/, beside this file: the textured clips and their flags)
import cv2  # noqa: E402
import jpeg_decoding  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("sides", ["112", "128", "256"], "Short sides to prepare the clips at.")
flags.DEFINE_list("data_dirs", [], "SIDE=FOLDER pairs: the same videos already prepared at each short side "
                  "(default: bench_prepare's --num_clips textured clips, prepared beside them).")
flags.DEFINE_integer("image_size", 112, "The model's training resolution.")
flags.DEFINE_integer("num_frames", 16, "Frames per training clip.")
flags.DEFINE_integer("frames", 800, "JPEG frames per measurement.")
flags.DEFINE_integer("decode_repeats", 3, "Passes over the frames (the fastest counts).")
flags.DEFINE_integer("pipeline_batches", 20, "Batches of 16 clips timed through the pipeline per side.")
flags.DEFINE_float("short_records_seconds", 3.2, "Also prepare the --image_size side in records of at most this "
                   "long (prepare --max-clip-seconds), for the pipeline's cost per record length (0: no).")
flags.DEFINE_string("output", "", "Markdown file for the table.")

def tensorflow_decode_rate(jpegs: List[bytes], repeats: int, ratio: int = 1, clip: int = 16) -> float:
    """Frames per CPU second of `tf.io.decode_jpeg` on `jpegs`, `clip` at a time in a `tf.function`, as
    `pipeline.decode_frames` decodes a clip (`ratio` 2: the DCT-domain half-size decode)."""
    import tensorflow as tf

    @tf.function
    def decode(batch):
        return tf.stack([tf.io.decode_jpeg(batch[i], channels=3, ratio=ratio) for i in range(clip)])

    batches = [tf.constant(jpegs[i:i + clip]) for i in range(0, len(jpegs) - clip + 1, clip)]
    decode(batches[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for batch in batches:
            decode(batch)
        best = min(best, time.process_time() - start)
    return len(batches) * clip / best


def frame_cache_rate(jpegs: List[bytes], image_size: int, repeats: int) -> Dict[str, float]:
    """Reading frames stored raw at `image_size` (square crops of the decoded `jpegs`) from memory."""
    squares = []
    for jpeg in jpegs:
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        side = min(frame.shape[:2])
        squares.append(cv2.resize(frame[:side, :side], (image_size, image_size), interpolation=cv2.INTER_AREA))
    stored = [square.tobytes() for square in squares]
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for raw in stored:
            np.frombuffer(raw, np.uint8).reshape(image_size, image_size, 3).copy()
        best = min(best, time.process_time() - start)
    return {"frames_per_core_s": len(stored) / best, "bytes_per_frame": image_size * image_size * 3}


def pipeline_rate(data_dir: str, image_size: int, num_frames: int, batches: int) -> Dict[str, float]:
    """Clips/s and CPU ms per clip of `pipeline.training_epochs` (all cores) on `data_dir`."""
    from videofusion import config as config_lib
    from videofusion.data import pipeline
    from videofusion.training import train

    config = config_lib.base_config()
    config.data.update(dict(dir=data_dir, num_frames=num_frames, image_size=image_size, stride=1))
    config = train.resolve_data_config(config)
    options = pipeline.PipelineOptions.from_config(config)
    iterator = iter(pipeline.training_epochs(data_dir, options, 16, seed=0))
    for _ in range(3):
        next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    from videofusion.contract import prepared_folder

    files = prepared_folder.shard_files(data_dir, "train")
    records = prepared_folder.read_dataset_info(data_dir)[prepared_folder.COUNTS]["train"]
    return {"clips_per_s": batches * 16 / wall, "cpu_ms_per_clip": 1000 * cpu / (batches * 16),
            "record_mb": sum(os.path.getsize(f) for f in files) / records / 1e6}


def measure(data_dirs: Dict[tuple, str]) -> Dict:
    """Every candidate's figures (see the module docstring); `data_dirs` keyed by (short side, record
    seconds or None)."""
    rows = []
    sides = sorted({side: data_dir for (side, _), data_dir in sorted(data_dirs.items(), key=str)}.items())
    for side, data_dir in sides:
        jpegs = jpeg_decoding.shard_jpegs(data_dir, FLAGS.frames)
        size = float(np.mean([len(j) for j in jpegs]))
        shape = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR).shape
        pixels = f"{shape[1]}×{shape[0]}"
        rows.append(dict(candidate=f"decode {side}", pixels=pixels, jpeg_bytes=size,
                         frames_per_core_s=tensorflow_decode_rate(jpegs, FLAGS.decode_repeats)))
        rows.append(dict(candidate=f"opencv {side}", pixels=pixels, jpeg_bytes=size,
                         frames_per_core_s=jpeg_decoding.opencv_decode_rate(jpegs, FLAGS.decode_repeats)))
        if side >= 2 * FLAGS.image_size:
            half = f"{shape[1] // 2}×{shape[0] // 2}"
            rows.append(dict(candidate=f"decode {side} ÷2 (DCT)", pixels=half, jpeg_bytes=size,
                             frames_per_core_s=tensorflow_decode_rate(jpegs, FLAGS.decode_repeats, ratio=2)))
            reduced = jpeg_decoding.opencv_decode_rate(jpegs, FLAGS.decode_repeats, cv2.IMREAD_REDUCED_COLOR_2)
            rows.append(dict(candidate=f"opencv {side} ÷2 (DCT)", pixels=half, jpeg_bytes=size,
                             frames_per_core_s=reduced))
        logging.info("Side %d: %s", side, rows[-1])
    cache = frame_cache_rate(jpegs, FLAGS.image_size, FLAGS.decode_repeats)
    rows.append(dict(candidate=f"uint8 cache {FLAGS.image_size}", pixels=f"{FLAGS.image_size}²",
                     jpeg_bytes=cache["bytes_per_frame"], frames_per_core_s=cache["frames_per_core_s"]))
    for row in rows:
        row["clips_per_core_s"] = row["frames_per_core_s"] / FLAGS.num_frames
        row["kb_per_clip"] = row["jpeg_bytes"] * FLAGS.num_frames / 1000
    pipelines = []
    for (side, seconds), data_dir in sorted(data_dirs.items(), key=str):
        figures = pipeline_rate(data_dir, FLAGS.image_size, FLAGS.num_frames, FLAGS.pipeline_batches)
        pipelines.append(dict(side=side, record_seconds=seconds, **figures))
    return {"rows": rows, "pipeline": pipelines}


def markdown(figures: Dict, date: str) -> str:
    """The figures as markdown."""
    lines = [f"# Input candidates ({FLAGS.num_frames} frames at {FLAGS.image_size} px)", "", date, "",
             "| candidate | decoded pixels | bytes/frame stored | frames per core-s | clips per core-s | KB per clip |",
             "|---|---|---|---|---|---|"]
    for r in figures["rows"]:
        lines.append(f"| {r['candidate']} | {r['pixels']} | {r['jpeg_bytes']:.0f} | {r['frames_per_core_s']:.0f} | "
                     f"{r['clips_per_core_s']:.0f} | {r['kb_per_clip']:.0f} |")
    lines += ["", "| shards' short side | seconds per record | MB per record | pipeline clips/s (all cores) | "
              "CPU ms per clip |", "|---|---|---|---|---|"]
    for p in figures["pipeline"]:
        seconds = "—" if p["record_seconds"] is None else f"{p['record_seconds']:g}"
        lines.append(f"| {p['side']} | {seconds} | {p['record_mb']:.2f} | {p['clips_per_s']:.0f} | "
                     f"{p['cpu_ms_per_clip']:.1f} |")
    return "\n".join(lines) + "\n"


def prepared_sides(sides: List[int]) -> Dict[tuple, str]:
    """bench_prepare's textured clips (--num_clips × --clip_seconds, --clip_width × --clip_height, made
    once in its --cache_dir) prepared at 10 fps at each short side, whole (one record per clip), and at
    --image_size in records of --short_records_seconds; in the same folder (once). Keys: (side, record
    seconds)."""
    from videofusion.contract import prepared_folder
    from videofusion.ingest import prepare

    manifest = bench_prepare.make_videos("clip", FLAGS.num_clips, FLAGS.clip_seconds, FLAGS.clip_width,
                                         FLAGS.clip_height, FLAGS.clip_preset)
    variants = [(side, FLAGS.clip_seconds) for side in sides]
    if FLAGS.short_records_seconds:
        variants.append((FLAGS.image_size, FLAGS.short_records_seconds))
    folders = {}
    for side, seconds in variants:
        folders[side, seconds] = os.path.join(os.path.dirname(manifest), f"prepared-{side}-{seconds:g}s")
        if not os.path.isfile(os.path.join(folders[side, seconds], prepared_folder.DATASET_FILE)):
            prepare.prepare_dataset(prepare.PrepareOptions(
                manifest=manifest, output_dir=folders[side, seconds], fps=10, short_side=side,
                max_clip_seconds=seconds, num_shards=2, val_fraction=0, test_fraction=0))
    return folders


def main(argv):
    del argv
    data_dirs = {(int(side), None): folder for side, folder in (pair.split("=", 1) for pair in FLAGS.data_dirs)}
    data_dirs = data_dirs or prepared_sides([int(side) for side in FLAGS.sides])
    figures = measure(data_dirs)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if FLAGS.output:
        with open(FLAGS.output + ".tmp", "w", encoding="utf-8") as f:
            f.write(markdown(figures, date))
        os.replace(FLAGS.output + ".tmp", FLAGS.output)
    print(json.dumps({"date": date, "cores": machine.host_cores(), **figures}))


if __name__ == "__main__":
    app.run(main)
