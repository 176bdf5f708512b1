"""Accelerators: what the first training step costs, how fast the model trains with its batches in memory
and how fast it trains from the prepared shards, per model × Keras backend × precision.

Rows: the default fusion model (`config.base_config`: appearance + motion CNNs and an LSTM for video,
a log-mel CNN for audio, cross-modal attention; frame backbone `pooled_cnn`) and the same with the
`mobilenet_v3_small` and `efficientnet_b0` backbones (random weights: neither compile time nor speed
depends on their values); under the TensorFlow backend (the strategy `train` picks, `train.strategy=auto`)
and the JAX backend; in float32 and mixed bfloat16. Each row runs in a fresh process (a process has one
Keras backend) through `train`'s own code: `train.start_run` builds the input and the model,
`optimization.compile_classifier` compiles it as `videofusion train` does, `model.fit` trains.

Figures per row:

- `build_s`: building the model and initialising its weights (under JAX every initialiser of a new
  shape is compiled: `build_compiles`);
- `first_batches_s`: the pipeline's first two batches (its start, which `train` waits for too);
- `first_step_s`: the first `fit` step on one batch held in memory: tracing, compiling (XLA under JAX,
  and under TensorFlow where Keras turns it on: `jit_compile` auto is on for a GPU, off for a CPU) and
  the step. Under JAX split by jax.monitoring's events into `trace_s` (Python → jaxpr), `lower_s`
  (jaxpr → StableHLO) and `compile_s` (XLA), over `compiles` programs;
- `device_clips_per_s` (JAX): steady `fit` steps on a batch put on the device once (TensorFlow's `fit`
  takes every batch from `tf.data`, in host memory: there the memory figure is the ceiling);
- `memory_clips_per_s`: steady `fit` steps over batches held in host memory (`tf.data` from tensors:
  nothing left to compute, each batch copied to the device);
- `shards_clips_per_s`: steady `fit` steps from the shards through `pipeline.training_epochs` (and
  `pipeline.model_inputs`), as `videofusion train` feeds it;
- `ratio_shards_vs_memory`: the headline, the same `fit` call path on both sides; `ratio_shards_vs_device`
  against the device-resident steps, the model's ceiling.

The rates are over the second of two `fit` epochs of `--steps` steps (the first warms the pipeline and
any retrace up), synchronised at the epoch's end. Sizes (`--size`): `tiny` (CI), `cpu` (8 frames of
64 px, batch 16: this 2-core machine) and `gpu` (16 frames of 112 px, batch 256 per device: the
issue's). The figures go to `--output` (markdown, with the date, the host's CPU and cores and the
device) and the last line of output is one JSON object.

On a GPU machine without TensorFlow (the one we measure on has JAX but no TensorFlow and cannot install
packages), the shards cannot be read: run `--write_device_inputs DIR` here, which writes a few of the
pipeline's batches (`inputs.npz`), the resolved config (`run.json`) and the JPEG frames of some clips
(`jpegs.npz`), and there `--device_inputs DIR --backends jax`: build, first step and the in-memory
rates are measured as above (the batches tiled to the batch size), and in place of the end-to-end rate
the host's JPEG decoding rate on all its cores (OpenCV, which that machine has), the input's bound.

    .venv/bin/python benchmarks/bench_accelerator.py --size cpu --output results/accelerator.md
    .venv/bin/python benchmarks/bench_accelerator.py --size tiny --models default --precisions float32
    .venv/bin/python benchmarks/bench_accelerator.py --size gpu --data_dir D --write_device_inputs carry/inputs
    KERAS_BACKEND=jax python3 benchmarks/bench_accelerator.py --size gpu --device_inputs carry/inputs \\
        --backends jax --output $OUT/accelerator.md
"""

import collections
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jpeg_decoding  # noqa: E402  (benchmarks/, beside this file; no TensorFlow)
import keras  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from videofusion import config as config_lib  # noqa: E402
from videofusion.contract.log_mel import LogMelSpec  # noqa: E402
from videofusion.models import InputShapes, build_classifier, optimization  # noqa: E402
from videofusion.training import compilation_cache  # noqa: E402

SIZES = {
    "tiny": dict(num_frames=4, image_size=32, batch_size=4, mel_bins=16, embed_dim=16),
    "cpu": dict(num_frames=8, image_size=64, batch_size=16, mel_bins=64, embed_dim=128),
    "gpu": dict(num_frames=16, image_size=112, batch_size=256, mel_bins=64, embed_dim=128),
}
MODELS = {"default": "pooled_cnn", "mobilenet_v3_small": "mobilenet_v3_small", "efficientnet_b0": "efficientnet_b0"}
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
BACKENDS = ("tensorflow", "jax")
INPUTS_FILE, RUN_FILE, JPEGS_FILE = "inputs.npz", "run.json", "jpegs.npz"
DEVICE_JPEG_FRAMES = 1600  # JPEG frames carried for the decoding rate: 16 of bench_input's 10-s clips at 10 fps
_JAX_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace_s",
               "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
               "/jax/core/compile/backend_compile_duration": "compile_s"}

FLAGS = flags.FLAGS
flags.DEFINE_enum("size", "cpu", list(SIZES), "Clip and batch sizes (see the module docstring).")
flags.DEFINE_list("models", list(MODELS), f"Rows: any of {', '.join(MODELS)}.")
flags.DEFINE_list("backends", list(BACKENDS), "Keras backends: tensorflow, jax.")
flags.DEFINE_list("precisions", list(PRECISIONS), "float32, bfloat16 (mixed).")
flags.DEFINE_string("data_dir", "datasets/demo/records", "Prepared data (`make data` writes the default).")
flags.DEFINE_integer("steps", 8, "Steps per timed epoch.")
flags.DEFINE_integer("batch_size", 0, "Batch per device (0: the size's).")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "train.jit_compile of every row.")
flags.DEFINE_boolean("rates", True, "Measure the rates; --norates: the build and the first step only.")
flags.DEFINE_string("compilation_cache", "", "train.compilation_cache of every row (\"\": none, every compile cold).")
flags.DEFINE_string("output", "", "Markdown file for the table (none: only the JSON line).")
flags.DEFINE_string("write_device_inputs", "", "Write the inputs of a --device_inputs run into this folder.")
flags.DEFINE_string("device_inputs", "", "Measure from these inputs, without TensorFlow (see the docstring).")
flags.DEFINE_integer("decode_processes", 0, "Processes for the JPEG decoding rate (0: every core).")
flags.DEFINE_string("row", "", "Internal: the JSON of one row, measured in this process.")


def bench_config(size: str, model: str, precision: str, data_dir: str, batch_size: int = 0,
                 jit_compile: str = "auto", cache: str = ""):
    """The experiment config of one row (`cache`: its `train.compilation_cache`)."""
    sizes = SIZES[size]
    config = config_lib.base_config()
    config.data.update(dict(dir=data_dir, num_frames=sizes["num_frames"], image_size=sizes["image_size"],
                            mel_bins=sizes["mel_bins"], stride=1))
    config.model.update(dict(frame_backbone=MODELS[model], embed_dim=sizes["embed_dim"]))
    config.train.update(dict(batch_size=batch_size or sizes["batch_size"], precision=PRECISIONS[precision],
                             validation_dashboards=False, compilation_cache=cache, jit_compile=jit_compile))
    return config


class _EpochTimer(keras.callbacks.Callback):
    """Each epoch's wall time, the end taken once the optimizer's step counter can be read (every step
    dispatched so far has finished)."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        self.seconds.append(time.perf_counter() - self._start)


class _JaxCompileTimes:
    """Seconds of JAX tracing, lowering and XLA compiling, and programs compiled, while active."""

    def __init__(self):
        self.totals: Dict[str, float] = collections.Counter()
        self.active = False
        if keras.config.backend() == "jax":
            import jax  # the JAX backend only

            jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, duration, **_):
        if self.active and event in _JAX_EVENTS:
            self.totals[_JAX_EVENTS[event]] += duration
            self.totals["compiles"] += event.endswith("backend_compile_duration")

    @contextlib.contextmanager
    def measuring(self):
        self.totals.clear()
        self.active = True
        yield self.totals
        self.active = False


def _steady_fit_rate(model, steps: int, clips_per_step: int, **fit_args) -> float:
    """Clips/s of the second of two `fit` epochs of `steps` steps."""
    timer = _EpochTimer()
    model.fit(steps_per_epoch=steps, epochs=2, callbacks=[timer], verbose=0, shuffle=False, **fit_args)
    return steps * clips_per_step / timer.seconds[1]


def _device_rate(model, batch, steps: int, clips_per_step: int):
    """Under JAX, `_steady_fit_rate` on `batch` put on the default device once, the same arrays every step
    (a generator of device arrays: Keras's JAX trainer hands them to the step as they are); None under
    TensorFlow, whose `fit` takes its batches from `tf.data`, in host memory (`memory_clips_per_s`)."""
    if keras.config.backend() != "jax":
        return None
    import jax

    # Uncommitted, as the step's other inputs are: a committed array would make JAX compile it again.
    on_device = jax.device_put(batch)

    def same_batch():
        while True:
            yield on_device

    return _steady_fit_rate(model, steps, clips_per_step, x=same_batch())


def _first_step(model, compile_times: _JaxCompileTimes, **fit_args) -> Dict[str, float]:
    """The first `fit` step's seconds (and under JAX its compile times); `fit_args` name one batch."""
    start = time.perf_counter()
    with compile_times.measuring() as totals:
        model.fit(steps_per_epoch=1, epochs=1, verbose=0, shuffle=False, **fit_args)
        keras.ops.convert_to_numpy(model.optimizer.iterations)
    return {"first_step_s": time.perf_counter() - start, **totals, "jit_compile": bool(model.jit_compile)}


def device_name() -> str:
    """The accelerator the backend trains on (its first device), or the CPU's model name."""
    if keras.config.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.device_kind} ({device.platform}, {len(jax.devices())} device(s))"
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{details.get('device_name', gpus[0].name)} (gpu, {len(gpus)} device(s))"
    return f"{machine.cpu_model()} (cpu)"


def measure_row(row: Dict) -> Dict:
    """One row's figures, under this process's Keras backend, from the shards (TensorFlow reads them)."""
    import tensorflow as tf

    from videofusion.data import pipeline
    from videofusion.training import strategy, train

    config = train.resolve_data_config(bench_config(row["size"], row["model"], row["precision"], row["data_dir"],
                                                    row["batch_size"], row["jit_compile"], row["compilation_cache"]))
    compile_times = _JaxCompileTimes()
    distribution = strategy.make_distribution(config.train.strategy)
    batch_size = config.train.batch_size * distribution.replicas
    with tempfile.TemporaryDirectory() as run_dir:
        with compile_times.measuring() as build:
            start = time.perf_counter()
            run = train.start_run(config, run_dir, distribution)
            figures = {"build_s": time.perf_counter() - start, "build_compiles": build["compiles"]}
        model = run.model
        with distribution.scope():
            optimization.compile_classifier(model, config, steps_per_epoch=row["steps"])
        shards = pipeline.model_inputs(run.data.train(0), model, run.data.class_weights)
        start = time.perf_counter()
        batches = list(shards.take(2).as_numpy_iterator())
        figures["first_batches_s"] = time.perf_counter() - start
        in_memory = tf.data.Dataset.from_tensors(batches[0]).concatenate(tf.data.Dataset.from_tensors(batches[1]))
        figures.update(_first_step(model, compile_times, x=in_memory))
        if not row["rates"]:
            return _finished(figures)
        figures["device_clips_per_s"] = _device_rate(model, batches[0], row["steps"], batch_size)
        figures["memory_clips_per_s"] = _steady_fit_rate(model, row["steps"], batch_size, x=in_memory.repeat())
        figures["shards_clips_per_s"] = _steady_fit_rate(model, row["steps"], batch_size, x=shards)
    return _finished(figures)


def _finished(figures: Dict) -> Dict:
    """`figures` with the ratios of its rates and the device's name."""
    if "shards_clips_per_s" in figures:
        figures["ratio_shards_vs_memory"] = figures["shards_clips_per_s"] / figures["memory_clips_per_s"]
        if figures["device_clips_per_s"]:
            figures["ratio_shards_vs_device"] = figures["shards_clips_per_s"] / figures["device_clips_per_s"]
    figures["device"] = device_name()
    return figures


def _tiled(arrays, count: int):
    """Each array of the nest `arrays` repeated along its first axis to `count` rows."""
    return {key: _tiled(value, count) for key, value in arrays.items()} if isinstance(arrays, dict) else \
        np.resize(arrays, (count, *arrays.shape[1:]))


def measure_row_from_device_inputs(row: Dict) -> Dict:
    """One row's figures from `--write_device_inputs`'s files, TensorFlow unused: the JAX path of a GPU
    machine that has no TensorFlow. No end-to-end rate: `decode_frames_per_s` bounds the input instead."""
    with open(os.path.join(row["device_inputs"], RUN_FILE), encoding="utf-8") as f:
        saved = json.load(f)
    config = config_lib.base_config()
    config.update(saved["config"])
    config.model.frame_backbone = MODELS[row["model"]]
    config.train.update(dict(precision=PRECISIONS[row["precision"]], jit_compile=row["jit_compile"],
                             batch_size=row["batch_size"] or config.train.batch_size))
    compilation_cache.use(row["compilation_cache"])
    keras.utils.set_random_seed(config.train.seed)
    keras.mixed_precision.set_global_policy(config.train.precision)
    shapes = saved["shapes"]
    shapes = InputShapes(**{**shapes, "log_mel": LogMelSpec(**shapes["log_mel"])})
    batch_size = config.train.batch_size
    with np.load(os.path.join(row["device_inputs"], INPUTS_FILE)) as stored:
        clips = {key: stored[key] for key in stored.files}
    steps = row["steps"]
    features = _tiled({key[2:]: value for key, value in clips.items() if key.startswith("x/")}, steps * batch_size)
    labels = _tiled(clips["labels"], steps * batch_size)
    compile_times = _JaxCompileTimes()
    with compile_times.measuring() as build:
        start = time.perf_counter()
        model = build_classifier(config, shapes, saved["num_classes"])
        figures = {"build_s": time.perf_counter() - start, "build_compiles": build["compiles"]}
    optimization.compile_classifier(model, config, steps_per_epoch=steps)
    first = {key: value[:batch_size] for key, value in features.items()}
    targets = {name: labels for name in model.output}
    first_targets = {name: labels[:batch_size] for name in model.output}
    figures.update(_first_step(model, compile_times, x=first, y=first_targets, batch_size=batch_size))
    if not row["rates"]:
        return _finished(figures)
    figures["device_clips_per_s"] = _device_rate(model, (first, first_targets), steps, batch_size)
    figures["memory_clips_per_s"] = _steady_fit_rate(model, steps, batch_size, x=features, y=targets,
                                                     batch_size=batch_size)
    return _finished(figures)


def write_device_inputs(folder: str, size: str, data_dir: str, clips: int = 16) -> None:
    """Writes what `--device_inputs` reads: `clips` training examples as the pipeline makes them, the
    resolved default config and its input shapes, and the shards' first `DEVICE_JPEG_FRAMES` JPEG frames."""
    from videofusion.contract import prepared_folder
    from videofusion.data import pipeline
    from videofusion.training import train

    config = train.resolve_data_config(bench_config(size, "default", "float32", data_dir))
    options = pipeline.PipelineOptions.from_config(config)
    features, labels = next(iter(pipeline.training_epochs(data_dir, options, clips, config.train.seed)))
    model_inputs = ("frames", "frame_mask", "waveform", "audio_present")
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, INPUTS_FILE), labels=labels.numpy(),
             **{f"x/{key}": features[key].numpy() for key in model_inputs})
    shapes = train.input_shapes(config, options.spec)
    labels_count = len(prepared_folder.read_dataset_info(data_dir)[prepared_folder.LABELS])
    with open(os.path.join(folder, RUN_FILE), "w", encoding="utf-8") as f:
        json.dump({"config": json.loads(config.to_json()), "num_classes": labels_count,
                   "shapes": {**vars(shapes), "log_mel": vars(shapes.log_mel)}}, f)
    jpegs = jpeg_decoding.shard_jpegs(data_dir, DEVICE_JPEG_FRAMES)
    np.savez(os.path.join(folder, JPEGS_FILE), data=np.frombuffer(b"".join(jpegs), np.uint8),
             offsets=np.cumsum([0] + [len(image) for image in jpegs]))
    logging.info("Wrote %d clips' batch inputs and %d JPEG frames to %s", clips, len(jpegs), folder)


def decode_rate(folder: str, processes: int) -> Dict[str, float]:
    """JPEG frames/s that `processes` processes decode with OpenCV from `--write_device_inputs`'s frames."""
    import multiprocessing

    with np.load(os.path.join(folder, JPEGS_FILE)) as stored:
        data, offsets = stored["data"].tobytes(), stored["offsets"]
    jpegs = [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        per_process = pool.map(jpeg_decoding.opencv_decode_rate, [jpegs] * processes)
    return {"decode_processes": processes, "decode_frames_per_s": sum(per_process),
            "decode_frames_per_core_s": float(np.median(per_process))}


def run_row(row: Dict) -> Dict:
    """Measures `row` in a process of its own (its Keras backend set before Keras is imported). A row that
    fails (a model that does not fit the device's memory at this batch, say) comes back with its error's
    last line, so that a one-shot run on a lent GPU keeps what the other rows measured."""
    env = {**os.environ, "KERAS_BACKEND": row["backend"]}
    logging.info("Row %s / %s / %s", row["model"], row["backend"], row["precision"])
    completed = subprocess.run([sys.executable, os.path.abspath(__file__), f"--row={json.dumps(row)}"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    log = completed.stderr.decode(errors="replace")
    sys.stderr.write(log)
    if completed.returncode:
        error = next((line for line in reversed(log.splitlines()) if line.strip()), f"exit {completed.returncode}")
        logging.error("Row %s / %s / %s failed: %s", row["model"], row["backend"], row["precision"], error)
        return {**row, "error": error.strip()}
    return {**row, **json.loads(completed.stdout.decode().strip().splitlines()[-1])}


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _figure(value) -> str:
    return "—" if value is None else f"{value:.3g}" if value < 10 else f"{value:.0f}"


def markdown(results: List[Dict], extra: Dict) -> str:
    """The results as the markdown table of `--output`."""
    header = ("| model | backend | precision | build s | first step s | (trace / lower / XLA s, programs) | "
              "device clips/s | memory clips/s | shards clips/s | shards ÷ memory | shards ÷ device |")
    device = next(r["device"] for r in results if "device" in r)
    lines = [f"# Accelerator benchmark ({extra['size']})", "",
             f"{extra['date']}; host {extra['cpu']}, {extra['cores']} cores; device {device}; "
             f"`{extra['command']}`", "", header, "|" + "---|" * 11]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | failed: {r['error'][:200]} |")
            continue
        jax_split = (f"{r['trace_s']:.1f} / {r['lower_s']:.1f} / {r['compile_s']:.1f}, {r['compiles']:.0f}"
                     if r["backend"] == "jax" else "")
        shards = [_figure(r.get(k)) for k in ("shards_clips_per_s", "ratio_shards_vs_memory", "ratio_shards_vs_device")]
        lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | {r['build_s']:.1f} | "
                     f"{r['first_step_s']:.1f} | {jax_split} | {_figure(r.get('device_clips_per_s'))} | "
                     f"{_figure(r.get('memory_clips_per_s'))} | {' | '.join(shards)} |")
    if "decode_frames_per_s" in extra:
        lines += ["", f"Host JPEG decoding (OpenCV, {extra['decode_processes']} processes): "
                  f"{extra['decode_frames_per_s']:.0f} frames/s, {extra['decode_frames_per_core_s']:.0f} per core; "
                  f"{extra['decode_frames_per_s'] / SIZES[extra['size']]['num_frames']:.0f} clips/s of "
                  f"{SIZES[extra['size']]['num_frames']} frames before any other input work."]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    if FLAGS.row:
        row = json.loads(FLAGS.row)
        figures = measure_row_from_device_inputs(row) if row.get("device_inputs") else measure_row(row)
        print(json.dumps(figures))
        return
    if FLAGS.write_device_inputs:
        write_device_inputs(FLAGS.write_device_inputs, FLAGS.size, FLAGS.data_dir)
        print(json.dumps({"device_inputs": FLAGS.write_device_inputs}))
        return
    for name, chosen, known in (("models", FLAGS.models, MODELS), ("backends", FLAGS.backends, BACKENDS),
                                ("precisions", FLAGS.precisions, PRECISIONS)):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise app.UsageError(f"--{name}: {', '.join(unknown)} not one of {', '.join(known)}")
    rows = [dict(size=FLAGS.size, model=m, backend=b, precision=p, steps=FLAGS.steps, data_dir=FLAGS.data_dir,
                 device_inputs=FLAGS.device_inputs, batch_size=FLAGS.batch_size, jit_compile=FLAGS.jit_compile,
                 rates=FLAGS.rates, compilation_cache=FLAGS.compilation_cache)
            for m in FLAGS.models for b in FLAGS.backends for p in FLAGS.precisions]
    extra = dict(size=FLAGS.size, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 cpu=machine.cpu_model(), cores=machine.host_cores(),
                 command=" ".join(["bench_accelerator.py", *sys.argv[1:]]))
    if FLAGS.device_inputs:
        extra.update(decode_rate(FLAGS.device_inputs, FLAGS.decode_processes or machine.host_cores()))
    results = []
    for row in rows:  # the table rewritten after each row: a run cut short keeps the rows it finished
        results.append(run_row(row))
        if FLAGS.output and any("error" not in result for result in results):
            _write(FLAGS.output, markdown(results, extra))
    if all("error" in result for result in results):
        raise RuntimeError(f"every row failed; the first: {results[0]['error']}")
    print(json.dumps({"rows": results, **extra}))


if __name__ == "__main__":
    app.run(main)
