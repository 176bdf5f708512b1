"""Benchmark of `videofusion prepare`: its speed next to decoding the same files, and its peak memory.

What it measures, in one run, on the same machine:

1. speed: it writes `--num_clips` synthetic H.264 (x264 `--clip_preset`, moving textured picture) + AAC
   (48 kHz stereo) mp4 clips, then times, interleaved and `--repeats` times each (median kept, after an
   untimed warm-up that also fills the page cache):
     a. `videofusion prepare --workers N` over all of them (a fresh output folder each time);
     b. `decode`, the reference: every clip demuxed and decoded, every video and audio frame, by PyAV
        (the FFmpeg build prepare decodes with), one decoder thread per video as prepare's workers use,
        the clips shared out over N worker processes started as prepare starts its own, the frames
        dropped (`_DECODE_ONLY`): prepare's decoding and nothing else;
     c. `ffmpeg -threads 1 -i CLIP -f null -` for every clip, N at a time (a pool of N processes);
   and reports `ratio_prepare_vs_decode` = prepare wall time / decode wall time, and the same of CPU
   seconds (`ratio_prepare_vs_decode_cpu`). Goal: ≤ 1.1, i.e. prepare costs little more than decoding
   the files once (its scaling, JPEG, resampling and record writing are cheap next to decoding).
   `ratio_prepare_vs_ffmpeg_cli` (and `_cpu`) compare with the ffmpeg command line, the earlier
   reference, kept for comparison though not the same work: `-threads 1` sets its decoders' threads,
   but ffmpeg (7 and later) still runs the demuxer, each decoder, filter graph, encoder and the muxer
   in threads of their own (13 threads for one clip), so one clip runs on up to 2 cores where a prepare
   worker runs on one, and on a loaded machine its threads draw more CPU time than prepare's; it is
   also another FFmpeg build (the static ffmpeg of imageio-ffmpeg), and it converts the audio to
   16-bit PCM for its null output.
   Where prepare's time goes beyond decoding (`stages_cpu_s_per_video_minute`, `stage_shares`): one
   worker's thread CPU seconds per minute of video, measured in this process on `--stage_clips` clips
   (each clip's fastest of `--repeats` runs): the decoding (demuxing and decoding alone, as in
   `decode`), FFmpeg's scaling and colour conversion of the kept frames, their JPEG encoding, the
   audio's downmixing and resampling, the records (protobuf, TFRecord framing), and the rest (the
   Python loop of `media.py`: sampling by timestamp, segments). The stages' own timers miss what they
   cost the decoder by evicting its data from the CPU caches, which lands in the rest.
   With `--beam` (the default; needs `make install-beam`) another side is timed in the same rounds:
     d. `videofusion prepare --runner beam --workers N`: the Beam DirectRunner, N worker processes;
   and `ratio_beam_vs_local` = its wall time / that of a. (no goal: the figure is recorded). Where the
   difference goes: `beam_fixed_seconds` is an empty pipeline of the same shape on the same runner
   (importing Beam, building and pickling the pipeline, starting the job service and N worker processes,
   which import Beam and videofusion, and stopping them), `beam_import_seconds` the import of Beam
   alone, and `beam_rest_cpu_seconds` what is left, which grows with the videos: the records of every
   video go from the worker that encodes it through the runner (gRPC, in memory between stages) to the
   worker that writes its shard (`beam_records_mib` in all), where the local runner copies a file once.
   The split is made on CPU seconds (`*_cpu_seconds`), which other load on the machine hardly changes;
   the local runner's own start (its worker pool) is not subtracted, so the rest can come out below 0.
2. memory: it writes one long 1920x1080 H.264 + AAC video (`--long_seconds`, x264 ultrafast, cached in
   `--cache_dir`) and runs `videofusion prepare --workers 1` on it, polling `/proc/<pid>/status` of every
   process of the tree. `peak_rss_mib_long_video` is the sum over the tree's processes of each one's own
   peak (VmHWM): exact for the single process that `--workers 1` runs, an upper bound otherwise. The
   sampled peak of the tree's summed VmRSS and `wait4`'s ru_maxrss are reported beside it as checks.
   Goal: < 1024 MiB, whatever the video's length.

Run from the repository root (needs `ffmpeg`: on PATH, or the static build that `make install-bench`
installs with the pinned `imageio-ffmpeg` wheel):

    .venv/bin/python benchmarks/bench_prepare.py
    .venv/bin/python benchmarks/bench_prepare.py --num_clips 4 --clip_seconds 2 --long_seconds 20 --repeats 1
    .venv/bin/python benchmarks/bench_prepare.py --nobeam --long_seconds 20 --repeats 5   # speed only, steadier

Progress goes to the log (stderr); the last line of stdout is one JSON object with every figure.
"""

import collections
import concurrent.futures
import csv
import functools
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import av
import cv2
import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_clips", 16, "Clips for the speed comparison.")
flags.DEFINE_float("clip_seconds", 10.0, "Length of each clip.")
flags.DEFINE_integer("clip_width", 640, "Clip width in pixels.")
flags.DEFINE_integer("clip_height", 360, "Clip height in pixels.")
flags.DEFINE_string("clip_preset", "medium", "x264 preset of the clips (medium: x264's default).")
flags.DEFINE_integer("video_fps", 30, "Frame rate of the generated videos.")
flags.DEFINE_integer("workers", os.cpu_count() or 1, "prepare --workers, and parallel ffmpeg processes.")
flags.DEFINE_integer("repeats", 3, "Timed runs of each side (median kept).")
flags.DEFINE_integer("stage_clips", 4, "Clips whose per-stage CPU time is measured (0: none).")
flags.DEFINE_boolean("beam", True, "Also time `prepare --runner beam` (the DirectRunner) on the same clips.")
flags.DEFINE_float("long_seconds", 600.0, "Length of the long 1080p video for the memory check.")
flags.DEFINE_float("poll_seconds", 0.02, "Interval between two looks at the process tree's memory.")
flags.DEFINE_string("cache_dir", "/tmp/bench_prepare/cache", "Generated videos (reused by later runs).")
flags.DEFINE_string("work_dir", "/tmp/bench_prepare/work", "prepare's outputs and logs (wiped).")
flags.DEFINE_string(
    "videofusion", os.path.join(os.path.dirname(sys.executable), "videofusion"), "The CLI to time."
)

_AUDIO_RATE = 48000
_AUDIO_CHUNK = 1024


def _require_ffmpeg() -> str:
    """`ffmpeg` on PATH, else the static build of the `imageio-ffmpeg` wheel (`make bench` installs it)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is not None:
        return ffmpeg
    try:
        import imageio_ffmpeg
    except ImportError:
        sys.exit("bench_prepare: no `ffmpeg` on PATH and no imageio-ffmpeg: `make install-bench`, or install "
                 "ffmpeg (on Debian: apt-get install -y ffmpeg)")
    return imageio_ffmpeg.get_ffmpeg_exe()


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """uint8 RGB `[height, width, 3]`: smooth noise at several scales, like a textured scene."""
    picture = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((128, 90.0), (32, 45.0), (8, 25.0), (2, 8.0)):
        small = rng.normal(0, 1, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        picture += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(picture + 128, 0, 255).astype(np.uint8)


def _frames(seed: int, seconds: float, width: int, height: int, fps: int):
    """Yields uint8 RGB frames: a camera panning over a texture while a disc moves across it."""
    rng = np.random.default_rng(seed)
    margin = max(width, height) // 4
    scene = _texture(rng, height + 2 * margin, width + 2 * margin)
    speed, phase = rng.uniform(0.3, 0.6, 2), rng.uniform(0, 2 * np.pi, 2)
    radius = height // 8
    for index in range(int(round(seconds * fps))):
        t = index / fps
        x, y = (margin * (1 + np.sin(speed * t * 2 * np.pi + phase))).astype(int)
        frame = scene[y : y + height, x : x + width].copy()
        centre = (int(width * (0.5 + 0.4 * np.sin(1.3 * t))), int(height * (0.5 + 0.3 * np.cos(0.9 * t))))
        cv2.circle(frame, centre, radius, (250, 220, 40), -1)
        yield frame


def _audio(start: int, count: int) -> np.ndarray:
    """float32 `[2, count]` from sample `start` at 48 kHz: two gliding tones and a little noise."""
    t = (start + np.arange(count)) / _AUDIO_RATE
    left = 0.2 * np.sin(2 * np.pi * (300 + 50 * np.sin(0.5 * t)) * t)
    right = 0.2 * np.sin(2 * np.pi * (700 + 80 * np.sin(0.3 * t)) * t)
    noise = np.random.default_rng(start).normal(0, 0.01, (2, count))
    return (np.stack([left, right]) + noise).astype(np.float32)


def write_video(path: str, seed: int, seconds: float, width: int, height: int, fps: int, preset: str):
    """Writes an H.264 + AAC mp4 with PyAV, audio interleaved with the video, via a temporary name."""
    temp = path + ".tmp.mp4"
    with av.open(temp, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": preset})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=_AUDIO_RATE, layout="stereo")
        written = 0
        for index, rgb in enumerate(_frames(seed, seconds, width, height, fps)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            while written < (index + 1) * _AUDIO_RATE / fps:
                samples = _audio(written, _AUDIO_CHUNK)
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = _AUDIO_RATE, written
                container.mux(audio.encode(frame))
                written += _AUDIO_CHUNK
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    os.replace(temp, path)


def _write_manifest(folder: str, names) -> str:
    manifest = os.path.join(folder, "manifest.csv")
    with open(manifest + ".tmp", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        writer.writerows([name, ("even", "odd")[i % 2], "train"] for i, name in enumerate(names))
    os.replace(manifest + ".tmp", manifest)
    return manifest


def make_videos(name: str, count: int, seconds: float, width: int, height: int, preset: str) -> str:
    """The manifest of `count` generated videos under `--cache_dir/<name>-<parameters>/`, made once."""
    fps = FLAGS.video_fps
    folder = os.path.join(FLAGS.cache_dir, f"{name}-{count}x{seconds:g}s-{width}x{height}-{fps}fps-{preset}")
    manifest = os.path.join(folder, "manifest.csv")
    if os.path.isfile(manifest):
        logging.info("Reusing the videos in %s", folder)
        return manifest
    os.makedirs(folder, exist_ok=True)
    started = time.monotonic()
    names = [f"{name}-{i:03d}.mp4" for i in range(count)]
    for i, file_name in enumerate(names):
        write_video(os.path.join(folder, file_name), i, seconds, width, height, fps, preset)
    logging.info("Wrote %d × %g s %dx%d videos to %s in %.1f s", count, seconds, width, height, folder,
                 time.monotonic() - started)
    return _write_manifest(folder, names)


def _video_paths(manifest: str):
    with open(manifest, newline="") as f:
        return [os.path.join(os.path.dirname(manifest), row["path"]) for row in csv.DictReader(f)]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _prepare_command(manifest: str, output: str, workers: int, runner: str = "local"):
    return [FLAGS.videofusion, "prepare", "--manifest", manifest, "--output", output,
            "--workers", str(workers), "--runner", runner]


def _check_prepared(output: str, expected_videos: int, log_path: str):
    """Fails loudly if prepare failed or skipped a video (a fast failure must not pass for speed)."""
    info_path = os.path.join(output, "dataset.json")
    info = {}
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
    if info.get("num_errors", 1) or sum(info.get("videos", {}).values()) != expected_videos:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"prepare did not encode all {expected_videos} videos (see {log_path}):\n{tail}")


def run_prepare(manifest: str, workers: int, tag: str, runner: str = "local") -> tuple:
    """(wall seconds, CPU seconds of the whole tree) of one prepare run into a fresh folder."""
    output = os.path.join(FLAGS.work_dir, f"out-{tag}")
    shutil.rmtree(output, ignore_errors=True)
    log_path = os.path.join(FLAGS.work_dir, f"prepare-{tag}.log")
    cpu, started = _children_cpu_s(), time.monotonic()
    with open(log_path, "w") as log:
        subprocess.run(_prepare_command(manifest, output, workers, runner), stdout=log, stderr=log, check=False)
    wall, cpu = time.monotonic() - started, _children_cpu_s() - cpu
    _check_prepared(output, len(_video_paths(manifest)), log_path)
    return wall, cpu


def _ffmpeg_decode(ffmpeg: str, path: str):
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
               "-threads", "1", "-i", path, "-f", "null", "-"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def run_ffmpeg(ffmpeg: str, paths, workers: int) -> tuple:
    """(wall seconds, CPU seconds) of decoding every file with `ffmpeg -threads 1`, `workers` at a time."""
    cpu, started = _children_cpu_s(), time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda path: _ffmpeg_decode(ffmpeg, path), paths))
    return time.monotonic() - started, _children_cpu_s() - cpu


# The reference: what prepare decodes, as prepare decodes it (`media._decode`: PyAV, the video's and the
# audio's packets of one demuxer, `thread_count` decoder threads), in a pool of worker processes started
# as prepare starts its own (`prepare._start_method`: forked on Linux) and fed one video at a time, the
# frames dropped. It imports PyAV only: prepare's own start (its imports) counts against prepare.
_DECODE_ONLY = """
import multiprocessing
import sys

import av


def decode(path, threads):
    with av.open(path) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        video.codec_context.thread_count = threads
        for packet in container.demux(video, *container.streams.audio[:1]):
            packet.decode()


if __name__ == "__main__":
    workers, paths = int(sys.argv[1]), sys.argv[2:]
    threads = 1 if workers > 1 else 0  # prepare's EncodeParams.decoder_threads
    if workers == 1:
        for path in paths:
            decode(path, threads)
    else:
        method = "fork" if sys.platform == "linux" else "spawn"
        with multiprocessing.get_context(method).Pool(min(workers, len(paths))) as pool:
            list(pool.starmap(decode, [(path, threads) for path in paths], chunksize=1))
"""


def run_decode(paths, workers: int) -> tuple:
    """(wall seconds, CPU seconds) of the reference `_DECODE_ONLY` over `paths` with `workers` processes."""
    script = os.path.join(FLAGS.work_dir, "decode_only.py")
    if not os.path.isfile(script):
        with open(script, "w") as f:
            f.write(_DECODE_ONLY)
    cpu, started = _children_cpu_s(), time.monotonic()
    subprocess.run([sys.executable, script, str(workers), *paths], check=True)
    return time.monotonic() - started, _children_cpu_s() - cpu


def _warm_up(ffmpeg: str, manifest: str, paths, workers: int):
    """Reads every file (page cache), then runs each side once untimed (shared libraries, .pyc files)."""
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    logging.info("Warm-up: decode %.1f s, ffmpeg %.1f s, prepare %.1f s (untimed)", run_decode(paths, workers)[0],
                 run_ffmpeg(ffmpeg, paths, workers)[0], run_prepare(manifest, workers, "warm-up")[0])
    if FLAGS.beam:
        logging.info("Warm-up: prepare --runner beam %.1f s (untimed)",
                     run_prepare(manifest, workers, "warm-up-beam", "beam")[0])


def measure_speed(ffmpeg: str, manifest: str, workers: int, repeats: int) -> dict:
    """Times prepare, the decode reference and the ffmpeg pool over the same clips, interleaved, each round
    in another order."""
    paths = _video_paths(manifest)
    _warm_up(ffmpeg, manifest, paths, workers)
    sides = {"prepare": lambda: run_prepare(manifest, workers, "speed"),
             "decode": lambda: run_decode(paths, workers),
             "ffmpeg": lambda: run_ffmpeg(ffmpeg, paths, workers)}
    if FLAGS.beam:
        sides["beam"] = lambda: run_prepare(manifest, workers, "beam", "beam")
    names = list(sides)
    runs = {side: [] for side in names}
    for repeat in range(repeats):
        for side in names[repeat % len(names):] + names[:repeat % len(names)]:
            wall, cpu = sides[side]()
            runs[side].append((wall, cpu))
            logging.info("Run %d/%d %-7s: %6.2f s wall, %6.2f s CPU, load average %.2f",
                         repeat + 1, repeats, side, wall, cpu, os.getloadavg()[0])
    video_s = len(paths) * FLAGS.clip_seconds
    result = {"num_clips": len(paths), "clip_seconds": FLAGS.clip_seconds, "workers": workers,
              "repeats": repeats}
    for side, values in runs.items():
        result[f"{side}_seconds"] = round(statistics.median(w for w, _ in values), 3)
        result[f"{side}_cpu_seconds"] = round(statistics.median(c for _, c in values), 3)
        result[f"{side}_seconds_all"] = [round(w, 3) for w, _ in values]
        result[f"{side}_video_seconds_per_second"] = round(video_s / result[f"{side}_seconds"], 2)
    # CPU seconds hardly depend on other load on the machine, which slows the parallel sides most.
    for reference, name in (("decode", "decode"), ("ffmpeg", "ffmpeg_cli")):
        result[f"ratio_prepare_vs_{name}"] = round(result["prepare_seconds"] / result[f"{reference}_seconds"], 3)
        result[f"ratio_prepare_vs_{name}_cpu"] = round(
            result["prepare_cpu_seconds"] / result[f"{reference}_cpu_seconds"], 3)
    if FLAGS.beam:
        result["ratio_beam_vs_local"] = round(result["beam_seconds"] / result["prepare_seconds"], 3)
        result["ratio_beam_vs_local_cpu"] = round(result["beam_cpu_seconds"] / result["prepare_cpu_seconds"], 3)
    return result


def _stage_timers(stages: collections.Counter):
    """Wraps the functions of prepare's per-video work that make each stage, adding their thread CPU
    seconds to `stages`; returns a function that unwraps them."""
    from videofusion.contract import record_schema
    from videofusion.ingest import clip_encoder, media, tfrecord_writer

    # `drain` runs within `push` and `finish` (not wrapped, so not counted twice; the one more call for
    # a span with an end falls in the rest).
    wrapped = [(media, "_picture", "scale_colour"), (clip_encoder, "encode_bgr_jpeg", "jpeg"),
               (media.AudioTrack, "push", "audio"), (media.AudioTrack, "finish", "audio"),
               (media.AudioTrack, "take", "audio"), (record_schema, "encode_clip_parts", "records"),
               (tfrecord_writer, "frame_parts", "records")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in wrapped]

    def timed(function, stage):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                stages[stage] += time.thread_time() - start
        return wrapper

    for (owner, name, stage), (_, _, function) in zip(wrapped, originals):
        setattr(owner, name, timed(function, stage))
    return lambda: [setattr(owner, name, function) for owner, name, function in originals]


def _decode_only_seconds(path: str) -> float:
    """Thread CPU seconds of the reference's decoding of `path` (one decoder thread), in this process."""
    start = time.thread_time()
    with av.open(path) as container:
        video = container.streams.video[0]
        video.thread_type, video.codec_context.thread_count = "AUTO", 1
        for packet in container.demux(video, *container.streams.audio[:1]):
            packet.decode()
    return time.thread_time() - start


def measure_stages(paths, repeats: int) -> dict:
    """Thread CPU seconds per minute of video of each stage of prepare's per-video work (one worker,
    `clip_encoder.encode_video` as prepare's workers run it), each clip's fastest of `repeats` runs."""
    from videofusion.ingest import clip_encoder, manifest, prepare

    params = prepare.PrepareOptions(output_dir="", workers=FLAGS.workers).encode_params()
    best = collections.defaultdict(dict)
    for _ in range(repeats):
        for index, path in enumerate(paths):
            stages = collections.Counter(decode=_decode_only_seconds(path))
            restore = _stage_timers(stages)
            try:
                start = time.thread_time()
                task = prepare.encode_task(manifest.Entry(path=path, resolved=path, label="a"), 0, params,
                                           os.path.join(FLAGS.work_dir, "stages.part"))
                if clip_encoder.encode_video(task).error is not None:
                    raise RuntimeError(f"prepare's worker could not encode {path}")
                stages["total"] = time.thread_time() - start
            finally:
                restore()
            for stage, seconds in stages.items():
                best[index][stage] = min(best[index].get(stage, seconds), seconds)
    minutes = len(paths) * FLAGS.clip_seconds / 60
    totals = {stage: sum(clip[stage] for clip in best.values()) / minutes for stage in best[0]}
    totals["rest"] = totals["total"] - sum(v for k, v in totals.items() if k != "total")
    order = ["decode", "scale_colour", "jpeg", "audio", "records", "rest"]
    return {
        "stages_cpu_s_per_video_minute": {stage: round(totals.get(stage, 0.0), 3) for stage in order + ["total"]},
        "stage_shares": {stage: round(totals.get(stage, 0.0) / totals["total"], 3) for stage in order},
        "stage_clips": len(paths),
    }


# The shape of the Beam runner's pipeline (spread, work, group, write) with nothing to do; its steps refer
# to videofusion.ingest.beam_runner, so that every worker imports it (and PyAV, OpenCV) as in a real run.
_EMPTY_PIPELINE = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from videofusion.ingest import beam_runner
workers = int(sys.argv[1])
options = PipelineOptions([f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"])
with beam.Pipeline(options=options) as pipeline:
    _ = (pipeline | beam.Create(range(4 * workers)) | beam.Reshuffle()
         | beam.Map(lambda i: (i % workers, beam_runner.PLAN_FILE)) | beam.GroupByKey()
         | beam.Map(lambda group: (group[0], beam_runner.METRICS_NAMESPACE)))
"""


def _python_seconds(*args: str) -> tuple:
    """(wall seconds, CPU seconds of the tree) of `python ARGS` in a new process (output discarded)."""
    cpu, started = _children_cpu_s(), time.monotonic()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started, _children_cpu_s() - cpu


def _median_python_seconds(repeats: int, *args: str) -> tuple:
    runs = [_python_seconds(*args) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def measure_beam_overhead(speed: dict, workers: int, repeats: int) -> dict:
    """Where the Beam runner's extra time goes: a fixed part (an empty pipeline of the same shape on the
    same runner, Beam's import within it) and the rest per video (records through the runner). The CPU
    seconds, which other load on the machine hardly changes, split it more reliably than wall time."""
    fixed, fixed_cpu = _median_python_seconds(repeats, "-c", _EMPTY_PIPELINE, str(workers))
    with_beam, _ = _median_python_seconds(repeats, "-c", "import videofusion.ingest.prepare, apache_beam")
    without, _ = _median_python_seconds(repeats, "-c", "import videofusion.ingest.prepare")
    output = os.path.join(FLAGS.work_dir, "out-beam")
    records = sum(os.path.getsize(os.path.join(output, name)) for name in os.listdir(output)
                  if name.endswith(".tfrecord"))
    extra_cpu = speed["beam_cpu_seconds"] - speed["prepare_cpu_seconds"]
    return {
        "beam_overhead_seconds": round(speed["beam_seconds"] - speed["prepare_seconds"], 3),
        "beam_overhead_cpu_seconds": round(extra_cpu, 3),
        "beam_fixed_seconds": round(fixed, 3),
        "beam_fixed_cpu_seconds": round(fixed_cpu, 3),
        "beam_import_seconds": round(with_beam - without, 3),
        "beam_rest_cpu_seconds": round(extra_cpu - fixed_cpu, 3),
        "beam_records_mib": round(records / 2**20, 1),
    }


def _process_tree(root: int):
    """`root` and all its descendants that are alive now (from the parent ids in /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _memory_kib(pid: int) -> tuple:
    """(VmRSS, VmHWM) of `pid` in KiB; (0, 0) once it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1])
    except OSError:
        pass
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def watch_memory(command, log_path: str, poll_s: float) -> dict:
    """Runs `command`, sampling its process tree's memory every `poll_s` until it exits."""
    peak_hwm, peak_tree_rss, samples = {}, 0, 0
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            tree_rss = 0
            for member in _process_tree(process.pid):
                rss, hwm = _memory_kib(member)
                tree_rss += rss
                peak_hwm[member] = max(peak_hwm.get(member, 0), hwm)
            peak_tree_rss, samples = max(peak_tree_rss, tree_rss), samples + 1
            time.sleep(poll_s)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.monotonic() - started,
        "processes_seen": len(peak_hwm),
        "samples": samples,
        "sum_vmhwm_mib": sum(peak_hwm.values()) / 1024,
        "sampled_tree_vmrss_mib": peak_tree_rss / 1024,
        # ru_maxrss is in KiB on Linux: the max over the process and the children it reaped.
        "wait4_ru_maxrss_mib": usage.ru_maxrss / 1024,
    }


def measure_memory(manifest: str) -> dict:
    """Peak memory (and speed) of `prepare --workers 1` on the long video."""
    output = os.path.join(FLAGS.work_dir, "out-memory")
    shutil.rmtree(output, ignore_errors=True)
    log_path = os.path.join(FLAGS.work_dir, "prepare-memory.log")
    watched = watch_memory(_prepare_command(manifest, output, 1), log_path, FLAGS.poll_seconds)
    _check_prepared(output, 1, log_path)
    logging.info(
        "Long video: %.1f s of prepare; peak RSS %.0f MiB (sum of VmHWM over %d processes), sampled tree "
        "VmRSS %.0f MiB over %d samples, wait4 ru_maxrss %.0f MiB",
        watched["seconds"], watched["sum_vmhwm_mib"], watched["processes_seen"],
        watched["sampled_tree_vmrss_mib"], watched["samples"], watched["wait4_ru_maxrss_mib"],
    )
    return {
        "peak_rss_mib_long_video": round(watched["sum_vmhwm_mib"], 1),
        "peak_rss_method": "sum over the process tree of each process's VmHWM, polled from /proc",
        "long_video_sampled_tree_vmrss_mib": round(watched["sampled_tree_vmrss_mib"], 1),
        "long_video_wait4_ru_maxrss_mib": round(watched["wait4_ru_maxrss_mib"], 1),
        "long_video_processes": watched["processes_seen"],
        "long_video_seconds": FLAGS.long_seconds,
        "long_prepare_seconds": round(watched["seconds"], 3),
        "long_video_seconds_per_second": round(FLAGS.long_seconds / watched["seconds"], 2),
    }


def main(argv):
    del argv
    ffmpeg = _require_ffmpeg()
    if FLAGS.beam and importlib.util.find_spec("apache_beam") is None:
        sys.exit("bench_prepare: --beam needs Apache Beam: `make install-beam` (or pass --nobeam)")
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    load_before = os.getloadavg()
    logging.info("%d CPUs, load average %.2f %.2f %.2f", os.cpu_count(), *load_before)
    clips = make_videos("clip", FLAGS.num_clips, FLAGS.clip_seconds, FLAGS.clip_width, FLAGS.clip_height,
                        FLAGS.clip_preset)
    long_video = make_videos("long", 1, FLAGS.long_seconds, 1920, 1080, "ultrafast")
    result = measure_speed(ffmpeg, clips, FLAGS.workers, FLAGS.repeats)
    logging.info("Speed: prepare %.2f s, decode %.2f s, ratio %.3f (goal <= 1.1), CPU seconds ratio %.3f; "
                 "ffmpeg %.2f s, ratio %.3f, CPU seconds ratio %.3f",
                 result["prepare_seconds"], result["decode_seconds"], result["ratio_prepare_vs_decode"],
                 result["ratio_prepare_vs_decode_cpu"], result["ffmpeg_seconds"], result["ratio_prepare_vs_ffmpeg_cli"],
                 result["ratio_prepare_vs_ffmpeg_cli_cpu"])
    if FLAGS.stage_clips:
        result.update(measure_stages(_video_paths(clips)[: FLAGS.stage_clips], max(2, FLAGS.repeats)))
        logging.info("CPU seconds per minute of video, one worker: %s", result["stages_cpu_s_per_video_minute"])
    if FLAGS.beam:
        result.update(measure_beam_overhead(result, FLAGS.workers, FLAGS.repeats))
        logging.info("Beam DirectRunner: %.2f s, %.3f × the local runner, %.2f s more (%.2f CPU s); an empty "
                     "pipeline takes %.2f s (%.2f CPU s; Beam's import %.2f s); the rest, %.2f CPU s, moves %.1f "
                     "MiB of records", result["beam_seconds"], result["ratio_beam_vs_local"],
                     result["beam_overhead_seconds"], result["beam_overhead_cpu_seconds"],
                     result["beam_fixed_seconds"], result["beam_fixed_cpu_seconds"], result["beam_import_seconds"],
                     result["beam_rest_cpu_seconds"], result["beam_records_mib"])
    result.update(measure_memory(long_video))
    logging.info("Memory: peak RSS %.0f MiB on %g s of 1080p (goal < 1024)",
                 result["peak_rss_mib_long_video"], FLAGS.long_seconds)
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    result.update(cpus=os.cpu_count(), load_average_before=load_before, load_average_after=os.getloadavg(),
                  ffmpeg=version, pyav=av.__version__)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    app.run(main)
