"""Live streaming: does `videofusion stream` keep up in real time, and with what latency?

A stream of `--seconds` seconds is made of the demo videos (`--videos`, their H.264 and AAC copied, not
re-encoded, by FFmpeg's concat demuxer) and played at its own speed (as a camera delivers) through
`stream.Stream` with the export `--model`, once per hop of `--hops`. Per hop:

- `ratio_realtime_hop_H`: inference time per second of stream stepped over (below 1: it keeps up);
- `latency_p50_s_hop_H`, `latency_p95_s_hop_H`: from the arrival of a window's last frame to its result;
- `windows_hop_H`, `skipped_hop_H`: windows classified, and skipped because inference fell behind.

The export's metadata gives the window (the model's clip); `--window` overrides it (an export made
before the stride was recorded: the demo model's clip is 8 frames × stride 2 at 10 fps = 1.6 s).

    .venv/bin/python benchmarks/bench_stream.py --model exports/demo/1 --window 1.6 --output results/stream.md

The last line of output is one JSON object with the figures and the settings.
"""

import glob
import json
import os
import subprocess
import tempfile

import imageio_ffmpeg
from absl import app, flags

from videofusion import fileio
from videofusion.serving import stream

flags.DEFINE_string("model", "exports/demo/1", "An export: a SavedModel folder, or a LiteRT folder or .tflite file.")
flags.DEFINE_enum("variant", None, ["float32", "float16", "int8"], "With a LiteRT folder: the model to run.")
flags.DEFINE_float("window", None, "Seconds of a window (default: the export's clip).")
flags.DEFINE_string("videos", "datasets/demo/raw/videos/*.mp4", "Videos of the same size and codecs, concatenated.")
flags.DEFINE_float("seconds", 60.0, "Length of the stream.")
flags.DEFINE_list("hops", ["0.5", "1.0"], "Hops to measure, in seconds.")
flags.DEFINE_string("output", None, "Also write the figures as a Markdown table to this file.")
FLAGS = flags.FLAGS


def concatenated(pattern: str, seconds: float, directory: str) -> str:
    """An mp4 of the first videos matching `pattern` that make up `seconds` (streams copied)."""
    paths, total = [], 0.0
    for path in sorted(glob.glob(pattern)):
        if total >= seconds:
            break
        paths.append(os.path.abspath(path))
        total += stream_seconds(path)
    if total < seconds:
        raise SystemExit(f"{pattern}: {total:.1f} s of video, fewer than --seconds {seconds}")
    listing = os.path.join(directory, "videos.txt")
    with open(listing, "w", encoding="utf-8") as f:
        f.writelines(f"file '{path}'\n" for path in paths)
    output = os.path.join(directory, "stream.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "concat", "-safe", "0", "-i", listing,
                    "-c", "copy", output], check=True)
    return output


def stream_seconds(path: str) -> float:
    import av

    with av.open(path) as container:
        return container.duration / 1e6


def measure(source: str, model: stream.StreamModel, hop_s: float) -> dict:
    live = stream.Stream(source, model, stream.StreamOptions(hop_s=hop_s, top_k=1))
    try:
        for _ in live.results():
            pass
    finally:
        live.close()
    return live.summary.figures()


def table(figures: dict, hops) -> str:
    rows = ["| hop (s) | windows | skipped | real-time factor | latency p50 (s) | latency p95 (s) |",
            "|---|---|---|---|---|---|"]
    for hop in hops:
        rows.append(f"| {hop} | {figures[f'windows_hop_{hop}']} | {figures[f'skipped_hop_{hop}']} | "
                    f"{figures[f'ratio_realtime_hop_{hop}']} | {figures[f'latency_p50_s_hop_{hop}']} | "
                    f"{figures[f'latency_p95_s_hop_{hop}']} |")
    return "\n".join(rows) + "\n"


def main(_):
    model = stream.load_model(FLAGS.model, FLAGS.window, FLAGS.variant)
    figures = {"model": FLAGS.model, "variant": FLAGS.variant, "window_frames": model.window_frames,
               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as scratch:
        source = concatenated(FLAGS.videos, FLAGS.seconds, scratch)
        figures["stream_s"] = round(stream_seconds(source), 2)
        for hop in FLAGS.hops:
            result = measure(source, model, float(hop))
            for key in ("windows", "skipped", "ratio_realtime", "latency_p50_s", "latency_p95_s"):
                figures[f"{key}_hop_{hop}"] = result[key]
    if FLAGS.output:
        with fileio.atomic_open(FLAGS.output, "w", encoding="utf-8") as f:
            f.write(f"# Live streaming ({figures['stream_s']} s of demo videos at real speed, "
                    f"{FLAGS.model}, {figures['cpus']} CPUs)\n\n" + table(figures, FLAGS.hops))
    print(json.dumps(figures))


if __name__ == "__main__":
    app.run(main)
