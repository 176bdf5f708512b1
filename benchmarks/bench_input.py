"""Input candidates: what it costs a host core to hand the model a clip's frames at its resolution.

The model trains at `--image_size` (112 px); the prepared shards hold JPEG frames of a short side chosen
at `prepare` time (`--short-side`), and the input pipeline decodes them on the host's cores. The
candidates, each measured on the same clips prepared at several short sides (`--data_dirs`, the
`prepare` output of one set of videos per side):

- `decode <side>`: `tf.io.decode_jpeg` of frames stored at that side, as the pipeline decodes them
  (`pipeline.decode_frames`, in a `tf.function`, one clip at a time); the model's first layer then
  resizes the square crop to the training size on the accelerator;
- `decode <side> ÷2 (DCT)`: the same frames decoded at half size in the DCT domain (libjpeg's scaled
  IDCT, `tf.io.decode_jpeg(ratio=2)`): a 256-px store serving a 128-px model;
- `opencv <side>`: `cv2.imdecode`, the decoder a host without TensorFlow has (and the `opencv ÷2`
  counterpart, `IMREAD_REDUCED_COLOR_2`);
- `uint8 cache <image_size>`: frames stored raw at the training size, read back with `np.frombuffer`
  from memory (the page cache): what a frame cache costs once it is written, and its size per clip;
- and the whole pipeline (`pipeline.training_epochs`, all cores) on the data of each side: clips/s and
  CPU ms per clip.

Per-frame figures are frames per core-second: the CPU seconds of this process, all its threads
counted, the fastest of `--repeats` passes over the frames; the JPEG bytes per frame are given with them.

GPU decoding (NVIDIA DALI through `external_source`, since DALI's TFRecord reader cannot read
SequenceExample, NVIDIA/DALI#3824) needs an NVIDIA GPU and DALI's wheels, which this machine lacks; it
is not measured here.

    .venv/bin/python benchmarks/bench_input.py --data_dirs 112=/tmp/in/s112,128=/tmp/in/s128,256=/tmp/in/s256

The last line of output is one JSON object; `--output` writes the markdown table.
"""

import datetime
import json
import os
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS


def _define_flags():
    """Defined when run as a script only: `bench_accelerator` imports `opencv_decode_rate` from here."""
    flags.DEFINE_list("data_dirs", [], "SIDE=FOLDER pairs: the same videos prepared at each short side.")
    flags.DEFINE_integer("image_size", 112, "The model's training resolution.")
    flags.DEFINE_integer("num_frames", 16, "Frames per training clip.")
    flags.DEFINE_integer("frames", 800, "JPEG frames per measurement.")
    flags.DEFINE_integer("repeats", 3, "Passes over the frames (the fastest counts).")
    flags.DEFINE_integer("pipeline_batches", 20, "Batches of 16 clips timed through the pipeline per side.")
    flags.DEFINE_string("output", "", "Markdown file for the table.")

def opencv_decode_rate(jpegs: List[bytes], repeats: int = 3, flag: int = cv2.IMREAD_COLOR) -> float:
    """Frames per CPU second this process decodes `jpegs` with OpenCV (one thread), the fastest pass.

    >>> image = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    >>> opencv_decode_rate([image] * 10, repeats=1) > 0
    True
    """
    cv2.setNumThreads(1)
    arrays = [np.frombuffer(jpeg, np.uint8) for jpeg in jpegs]
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for array in arrays:
            cv2.imdecode(array, flag)
        best = min(best, time.process_time() - start)
    return len(arrays) / max(best, 1e-9)


def _jpegs(data_dir: str, count: int) -> List[bytes]:
    """The first `count` JPEG frames of the training shards of `data_dir`."""
    import tensorflow as tf

    from videofusion.contract import prepared_folder, record_schema

    frames: List[bytes] = []
    for record in tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train")):
        frames.extend(record_schema.parse_clip(record)[record_schema.IMAGES].numpy())
        if len(frames) >= count:
            break
    return frames[:count]


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
    return {"clips_per_s": batches * 16 / wall, "cpu_ms_per_clip": 1000 * cpu / (batches * 16)}


def measure(data_dirs: Dict[int, str]) -> Dict:
    """Every candidate's figures (see the module docstring)."""
    rows = []
    for side, data_dir in sorted(data_dirs.items()):
        jpegs = _jpegs(data_dir, FLAGS.frames)
        size = float(np.mean([len(j) for j in jpegs]))
        shape = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR).shape
        rows.append(dict(candidate=f"decode {side}", pixels=f"{shape[1]}×{shape[0]}", jpeg_bytes=size,
                         frames_per_core_s=tensorflow_decode_rate(jpegs, FLAGS.repeats)))
        rows.append(dict(candidate=f"opencv {side}", pixels=f"{shape[1]}×{shape[0]}", jpeg_bytes=size,
                         frames_per_core_s=opencv_decode_rate(jpegs, FLAGS.repeats)))
        if side >= 2 * FLAGS.image_size:
            half = f"{shape[1] // 2}×{shape[0] // 2}"
            rows.append(dict(candidate=f"decode {side} ÷2 (DCT)", pixels=half, jpeg_bytes=size,
                             frames_per_core_s=tensorflow_decode_rate(jpegs, FLAGS.repeats, ratio=2)))
            rows.append(dict(candidate=f"opencv {side} ÷2 (DCT)", pixels=half, jpeg_bytes=size,
                             frames_per_core_s=opencv_decode_rate(jpegs, FLAGS.repeats, cv2.IMREAD_REDUCED_COLOR_2)))
        logging.info("Side %d: %s", side, rows[-1])
    cache = frame_cache_rate(jpegs, FLAGS.image_size, FLAGS.repeats)
    rows.append(dict(candidate=f"uint8 cache {FLAGS.image_size}", pixels=f"{FLAGS.image_size}²",
                     jpeg_bytes=cache["bytes_per_frame"], frames_per_core_s=cache["frames_per_core_s"]))
    for row in rows:
        row["clips_per_core_s"] = row["frames_per_core_s"] / FLAGS.num_frames
        row["kb_per_clip"] = row["jpeg_bytes"] * FLAGS.num_frames / 1000
    pipelines = {side: pipeline_rate(data_dir, FLAGS.image_size, FLAGS.num_frames, FLAGS.pipeline_batches)
                 for side, data_dir in sorted(data_dirs.items())}
    return {"rows": rows, "pipeline": pipelines}


def markdown(figures: Dict, date: str) -> str:
    """The figures as markdown."""
    lines = [f"# Input candidates ({FLAGS.num_frames} frames at {FLAGS.image_size} px)", "", date, "",
             "| candidate | decoded pixels | bytes/frame stored | frames per core-s | clips per core-s | KB per clip |",
             "|---|---|---|---|---|---|"]
    for r in figures["rows"]:
        lines.append(f"| {r['candidate']} | {r['pixels']} | {r['jpeg_bytes']:.0f} | {r['frames_per_core_s']:.0f} | "
                     f"{r['clips_per_core_s']:.0f} | {r['kb_per_clip']:.0f} |")
    lines += ["", "| shards' short side | pipeline clips/s (all cores) | CPU ms per clip |", "|---|---|---|"]
    for side, p in figures["pipeline"].items():
        lines.append(f"| {side} | {p['clips_per_s']:.0f} | {p['cpu_ms_per_clip']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    data_dirs = {int(side): folder for side, folder in (pair.split("=", 1) for pair in FLAGS.data_dirs)}
    if not data_dirs:
        raise app.UsageError("--data_dirs: give SIDE=FOLDER pairs (the same videos prepared at each short side)")
    figures = measure(data_dirs)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if FLAGS.output:
        with open(FLAGS.output + ".tmp", "w", encoding="utf-8") as f:
            f.write(markdown(figures, date))
        os.replace(FLAGS.output + ".tmp", FLAGS.output)
    print(json.dumps({"date": date, "cores": os.cpu_count(), **figures}))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
