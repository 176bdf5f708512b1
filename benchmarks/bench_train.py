"""Training loop speed: `videofusion train`'s loop against a plain `model.fit` on batches held in memory.

Both sides train the same model object (`train.start_run`) in the same process, under the same strategy
and precision, with the experiment's batch size (`--config`, default `experiments/demo.py`, on the
prepared demo data), compiled once per run by train.py (`train.fit` → `_compile`: the recipe's
optimizer, losses and metrics):

- `train`: `train.fit` itself, as `videofusion train` runs it: the real `tf.data` pipeline from the
  prepared shards (`pipeline.training_epochs` → `pipeline.model_inputs`), validation after every epoch
  and all of train.py's callbacks (TensorBoard, the dashboards, `last.keras` and `best.keras`
  checkpoints, the NaN guard, the backup), writing into a scratch workdir.
- `fit`: `model.fit` on one epoch of that pipeline's batches, materialised first and then fed from
  memory (`tf.data.Dataset.from_tensor_slices`; the same batches in the same order, the smaller last
  one included, of the same element spec), without validation or callbacks, right after a `train`
  run and without compiling again: the same optimizer, losses and metrics, and the same traced step.

Each side runs `--rounds` times, interleaved (train, fit, train, fit, …); each run is one `fit` of
`--epochs` epochs whose first epoch (tracing, the pipeline starting) is left out. An epoch's speed is
its training clips over everything the user waits for in it but its validation: from the epoch's start
to the next epoch's start (or the end of the `fit`), its training steps and its end-of-epoch callbacks
(checkpoints, the backup, TensorBoard, the dashboards) included, the validation pass (from its
`on_test_begin` to its `on_test_end`) taken out. Figures:

- `train_clips_per_s` and `fit_clips_per_s`: each side's fastest timed epoch, and `ratio_train_vs_fit`
  their ratio, the share of the plain loop's speed the product's loop keeps. Goal ≥ 0.9 (reported,
  not asserted). The fastest, because other processes only ever slow an epoch down: on the shared
  2-core machine, an epoch during which they kept one core busy ran at half speed, on either side,
  while the CPU seconds per step stayed the same (`cpu_s_per_step`, `others_cores` show it).
- `ratio_train_vs_fit_median` (and `*_median_clips_per_s`): the same over the medians of the epochs.
- `ratio_train_steps_vs_fit` (`train_steps_clips_per_s`): the `train` side's training steps alone, from
  the epoch's start to its validation's start (the figure the dashboards' `clips/s` shows), over the
  same `fit` figure: the end-of-epoch callbacks off the clock, and the pipeline free to prefetch the
  next epoch's batches while they and the validation run.
- `train_epoch_extra_s`: what the end-of-epoch callbacks add to an epoch, `validation_s`: what its
  validation takes (medians, not in the figures above).
- `others_cores`: the CPU cores that other processes used during each side's timed epochs (median;
  from /proc/stat, over the training steps), `cpu_s_per_step`: this process's CPU seconds per training
  step (median, over the training steps), and `ratio_train_vs_fit_cpu` the ratio of the latter (fit's
  over train's): what the product's loop spends per step beyond the plain fit, its input pipeline above
  all, which on a CPU-only machine decodes on the cores the model trains on; unlike the wall-time
  ratios, others' load hardly moves it.
- With `--with_pipeline_fit`, a third side interleaved with them, `fit_pipeline`: the plain `model.fit`
  fed by the real pipeline. `ratio_fit_pipeline_vs_fit` is then what the pipeline costs (on a CPU-only
  machine it shares the cores with the model), `ratio_train_vs_fit_pipeline` what the rest of the
  product's loop (its callbacks) costs.

The prepared data is `--data_dir` (default `datasets/demo/records`, which `make data` writes); if it
has no dataset.json, the demo videos are generated into the `raw` folder next to it and prepared as
`make data` does. The benchmark follows the product's code path through train.py's own steps:
`train.start_run` sets the run up, `train.fit(run, extra_callbacks=[timer])` trains.

    .venv/bin/python benchmarks/bench_train.py             # 2 rounds x 2 epochs: 3-5 min on 2 cores
    .venv/bin/python benchmarks/bench_train.py --rounds 1  # smoke run
    .venv/bin/python benchmarks/bench_train.py --rounds 3 --epochs 4 --with_pipeline_fit  # steadier, longer
    .venv/bin/python benchmarks/bench_train.py --config.train.batch_size=32

Most of a run is the first epochs, left out: every `train` run compiles the model again (as `train.fit`
does), and its first epoch (tracing, the first validation) takes about 2-3 later epochs.

The last line of output is one JSON object with the figures and the settings.
"""

import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from videofusion.contract import prepared_folder  # noqa: E402
from videofusion.data import pipeline  # noqa: E402
from videofusion.training import strategy as strategy_lib  # noqa: E402
from videofusion.training import train  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(REPO, "experiments", "demo.py"), "Experiment file; --config.KEY=VALUE overrides.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join(REPO, "datasets", "demo", "records"),
                                "Prepared data (made from the demo videos if it has no dataset.json).")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 720, "Demo videos to generate when the data is made here.")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Runs of each side, interleaved.")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Epochs per run; the first is left out of the timings.")
_WITH_PIPELINE_FIT = flags.DEFINE_boolean(
    "with_pipeline_fit", False, "Also time a plain `model.fit` on the real pipeline (interleaved, a third side).")
_WORK_DIR = flags.DEFINE_string("work_dir", "", "Scratch workdir of the `train` side (default: a temporary one).")


def ensure_data(data_dir: str, num_videos: int) -> None:
    """Writes the demo videos into `data_dir/../raw` and prepares them into `data_dir`, as `make data`
    does, unless `data_dir` already holds prepared data."""
    if os.path.isfile(os.path.join(data_dir, prepared_folder.DATASET_FILE)):
        return
    raw = os.path.join(os.path.dirname(os.path.abspath(data_dir)), "raw")
    logging.info("No prepared data in %s: generating %d demo videos into %s and preparing them",
                 data_dir, num_videos, raw)
    for args in (["demo-data", "--output", raw, "--num-videos", str(num_videos), "--seed", "0"],
                 ["prepare", "--manifest", os.path.join(raw, "manifest.csv"), "--output", data_dir,
                  "--fps", "10", "--short-side", "64", "--num-shards", "4"]):
        subprocess.run([sys.executable, "-m", "videofusion.cli", *args], check=True, stdout=subprocess.DEVNULL)


def busy_cpu_seconds() -> Optional[float]:
    """CPU seconds the whole machine has spent busy (all cores, from /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(value) for value in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class _Clock:
    """Wall time, this process's CPU time and the machine's busy CPU time, read together."""

    wall: float
    cpu: float
    busy: Optional[float]

    @classmethod
    def now(cls) -> "_Clock":
        return cls(time.perf_counter(), time.process_time(), busy_cpu_seconds())


@dataclasses.dataclass
class _Epoch:
    start: _Clock
    first_of_fit: bool  # left out: tracing, the pipeline starting
    steps_end: Optional[_Clock] = None  # where the validation starts (or the epoch's end, without one)
    validation_s: float = 0.0
    end: Optional[float] = None  # where the next epoch starts, or the fit ends

    @property
    def steps_s(self) -> float:
        return self.steps_end.wall - self.start.wall

    @property
    def waited_s(self) -> float:
        """The whole epoch but its validation: steps and end-of-epoch callbacks."""
        return self.end - self.start.wall - self.validation_s

    @property
    def others_cores(self) -> Optional[float]:
        """Cores other processes kept busy during the training steps."""
        if self.start.busy is None:
            return None
        others = (self.steps_end.busy - self.start.busy) - (self.steps_end.cpu - self.start.cpu)
        return max(0.0, others) / self.steps_s


class EpochTimes(keras.callbacks.Callback):
    """The epochs of every `fit` it is given to (`train.fit` may fit in phases); the timed ones are all but
    the first of each fit. Give it first in the callbacks (`train.fit` puts `extra_callbacks` first), so
    that an epoch's clock starts before the other callbacks' `on_epoch_begin`.

    An epoch's training steps end where its validation starts (or where the epoch ends, without one);
    the epoch ends where the next starts (or where the `fit` ends: after every callback's `on_epoch_end`),
    its end-of-epoch callbacks included. No per-batch hook, so that it changes nothing in how Keras
    dispatches the batch callbacks.
    """

    def __init__(self):
        super().__init__()
        self.epochs: List[_Epoch] = []
        self._new_fit = False
        self._validation_start: Optional[float] = None

    def on_train_begin(self, logs=None):
        self._new_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        now = _Clock.now()
        self._close_epoch(now.wall)
        self.epochs.append(_Epoch(now, first_of_fit=self._new_fit))
        self._new_fit = False

    def on_test_begin(self, logs=None):  # fit's validation: the epoch's training steps are over
        if self.epochs and self.epochs[-1].end is None:
            if self.epochs[-1].steps_end is None:
                self.epochs[-1].steps_end = _Clock.now()
            self._validation_start = time.perf_counter()

    def on_test_end(self, logs=None):
        if self._validation_start is not None:
            self.epochs[-1].validation_s += time.perf_counter() - self._validation_start
            self._validation_start = None

    def on_epoch_end(self, epoch, logs=None):
        if self.epochs[-1].steps_end is None:
            self.epochs[-1].steps_end = _Clock.now()

    def on_train_end(self, logs=None):
        self._close_epoch(time.perf_counter())

    def _close_epoch(self, now: float) -> None:
        if self.epochs and self.epochs[-1].end is None:
            self.epochs[-1].end = now

    @property
    def timed(self) -> List[_Epoch]:
        """The epochs but the first of each fit."""
        timed = [epoch for epoch in self.epochs if not epoch.first_of_fit]
        if not timed:
            raise ValueError("every run needs at least 2 epochs per fit: the first is left out (--epochs)")
        return timed

    def first_epochs_s(self) -> List[float]:
        """Wall seconds of the first epoch of each fit (left out of the figures)."""
        return [epoch.end - epoch.start.wall for epoch in self.epochs if epoch.first_of_fit]


def in_memory(dataset: tf.data.Dataset) -> Tuple[tf.data.Dataset, int, int]:
    """(the batches of one pass over `dataset`, held in memory and served in the same order with the
    same element spec and options; their clips; their number).

    The same options: the pipeline's datasets run without tf.data's autotuning thread
    (`pipeline._without_autotune_thread`), and with it, Keras's deleting this finite dataset's
    iterator at the end of every epoch waited, inside the timed steps, for that thread's sleep to
    end (18.8 s of one epoch's 40.9 s, measured).
    """
    batches = list(dataset.as_numpy_iterator())
    sizes = [len(tf.nest.flatten(batch)[0]) for batch in batches]
    full = next((i for i, size in enumerate(sizes) if size != sizes[0]), len(sizes))  # leading full batches
    stacked = tf.nest.map_structure(lambda *parts: np.stack(parts), *batches[:full])
    memory = tf.data.Dataset.from_tensor_slices(stacked)
    for batch in batches[full:]:
        memory = memory.concatenate(tf.data.Dataset.from_tensors(batch))
    # Served like the pipeline's batches, whose leading dimension is unknown (a smaller last batch):
    # an empty dataset of empty batches relaxes it when every batch has the same size.
    empty = tf.nest.map_structure(lambda part: part[:0], batches[0])
    memory = memory.concatenate(tf.data.Dataset.from_tensors(empty).take(0))
    if memory.element_spec != dataset.element_spec:
        logging.warning("In-memory element spec %s differs from the pipeline's %s", memory.element_spec,
                        dataset.element_spec)
    return memory.prefetch(tf.data.AUTOTUNE).with_options(dataset.options()), sum(sizes), len(batches)


def run_rounds(config, run_dir: str, rounds: int, with_pipeline_fit: bool) -> Dict:
    """Interleaved runs of both sides (and of the `fit_pipeline` side); returns the figures."""
    run = train.start_run(config, run_dir, strategy_lib.make_distribution(config.train.strategy))
    model = run.model
    real = pipeline.model_inputs(run.data.train(0).take(run.data.steps_per_epoch), model, run.data.class_weights)
    start = time.perf_counter()
    memory, clips_per_epoch, steps = in_memory(real)
    logging.info("Materialised %d batches (%d clips) of the training pipeline in %.1f s", steps, clips_per_epoch,
                 time.perf_counter() - start)
    timers = {"train": EpochTimes(), "fit": EpochTimes()}
    sources = {"fit": memory}
    if with_pipeline_fit:
        timers["fit_pipeline"], sources["fit_pipeline"] = EpochTimes(), real
    dashboard_rates = []
    for round_ in range(1, rounds + 1):
        for name, timer in timers.items():
            start = time.perf_counter()
            if name == "train":
                train.fit(run, extra_callbacks=[timer])
                dashboard_rates += model.history.history.get("clips_per_second", [])[1:]
            else:  # the model as `train.fit` compiled it: optimizer, losses, metrics, traced step
                model.fit(sources[name], epochs=config.train.epochs, verbose=0, callbacks=[timer])
            logging.info("Round %d/%d, %s: %.0f s; timed epochs so far (clips/s): %s", round_, rounds, name,
                         time.perf_counter() - start, [round(clips_per_epoch / e.waited_s, 1) for e in timer.timed])
    return {
        **summarise(timers, clips_per_epoch, steps),
        "train_dashboard_clips_per_s": round(statistics.median(dashboard_rates), 1) if dashboard_rates else None,
        "parameters": model.count_params(),
        "replicas": run.distribution.replicas,
        "steps_per_epoch": steps,
        "clips_per_epoch": clips_per_epoch,
    }


def summarise(timers: Dict[str, EpochTimes], clips_per_epoch: int, steps: int) -> Dict:
    """The figures (see the module's docstring) of the sides' timed epochs."""
    rates = {name: [clips_per_epoch / epoch.waited_s for epoch in timer.timed] for name, timer in timers.items()}
    rates["train_steps"] = [clips_per_epoch / epoch.steps_s for epoch in timers["train"].timed]
    best = {name: max(values) for name, values in rates.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    figures = {
        "ratio_train_vs_fit": round(best["train"] / best["fit"], 3),
        "ratio_train_vs_fit_median": round(median["train"] / median["fit"], 3),
        "ratio_train_steps_vs_fit": round(best["train_steps"] / best["fit"], 3),
    }
    if "fit_pipeline" in best:  # what the pipeline costs, and what the rest of the loop does
        figures["ratio_fit_pipeline_vs_fit"] = round(best["fit_pipeline"] / best["fit"], 3)
        figures["ratio_train_vs_fit_pipeline"] = round(best["train"] / best["fit_pipeline"], 3)
    figures.update({f"{name}_clips_per_s": round(rate, 1) for name, rate in best.items()})
    figures.update({f"{name}_median_clips_per_s": round(rate, 1) for name, rate in median.items()})
    others = {name: [e.others_cores for e in timer.timed if e.others_cores is not None]
              for name, timer in timers.items()}
    cpu_per_step = {name: statistics.median((e.steps_end.cpu - e.start.cpu) / steps for e in timer.timed)
                    for name, timer in timers.items()}
    train_epochs = timers["train"].timed
    figures.update({
        "ratio_train_vs_fit_cpu": round(cpu_per_step["fit"] / cpu_per_step["train"], 3),
        "others_cores": {name: round(statistics.median(v), 2) if v else None for name, v in others.items()},
        "cpu_s_per_step": {name: round(value, 3) for name, value in cpu_per_step.items()},
        "train_epoch_extra_s": round(statistics.median(e.waited_s - e.steps_s for e in train_epochs), 2),
        "validation_s": round(statistics.median(e.validation_s for e in train_epochs), 2),
        "train_first_epoch_s": round(statistics.median(timers["train"].first_epochs_s()), 1),
        "epochs_clips_per_s": {name: [round(rate, 1) for rate in values] for name, values in rates.items()},
        "timed_epochs_per_side": len(train_epochs),
    })
    return figures


def main(_):
    if _EPOCHS.value < 2:
        raise app.UsageError("--epochs must be at least 2: the first epoch of every run is left out")
    ensure_data(_DATA_DIR.value, _NUM_VIDEOS.value)
    config = _CONFIG.value
    config.data.dir = _DATA_DIR.value
    config.train.epochs = _EPOCHS.value
    config = train.resolve_data_config(config)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        run_dir = _WORK_DIR.value or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_train_"))
        figures = run_rounds(config, run_dir, _ROUNDS.value, _WITH_PIPELINE_FIT.value)
    logging.info("train: %s clips/s; fit: %s clips/s; ratio %.3f", figures["epochs_clips_per_s"]["train"],
                 figures["epochs_clips_per_s"]["fit"], figures["ratio_train_vs_fit"])
    print(json.dumps({
        **figures,
        "rounds": _ROUNDS.value,
        "epochs_per_run": _EPOCHS.value,
        "batch_size": config.train.batch_size,
        "config": {key: str(config[section][key]) for section, key in (
            ("model", "modalities"), ("model", "video_encoder"), ("model", "fusion"), ("model", "embed_dim"),
            ("data", "num_frames"), ("data", "image_size"), ("train", "precision"), ("train", "jit_compile"),
            ("train", "strategy"))},
        "data_dir": config.data.dir,
        "backend": keras.backend.backend(),
        "cpu_cores": os.cpu_count(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "wall_s": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    app.run(main)
