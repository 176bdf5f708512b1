"""Training loop speed: `videofusion train`'s loop against a plain `model.fit` on batches held in memory.

Both sides train the same model object (`train._model`) in the same process, under the same strategy
and precision, with the experiment's batch size (`--config`, default `experiments/demo.py`, on the
prepared demo data), compiled once per run by train.py (`_fit` → `_compile`: the recipe's optimizer,
losses and metrics):

- `train`: `train._fit` itself, as `videofusion train` runs it: the real `tf.data` pipeline from the
  prepared shards (`train._datasets` → `pipeline.model_inputs`), validation after every epoch and all
  of train.py's callbacks (TensorBoard, the dashboards, `last.keras` and `best.keras` checkpoints, the
  NaN guard, `BackupAndRestore`), writing into a scratch workdir.
- `fit`: `model.fit` on one epoch of that pipeline's batches, materialised first and then fed from
  memory (`tf.data.Dataset.from_tensor_slices`; the same batches in the same order, the smaller last
  one included, of the same element spec), without validation or callbacks, right after a `train`
  run and without compiling again: the same optimizer, losses and metrics, and the same traced step.

Each side runs `--rounds` times, interleaved (train, fit, train, fit, …) so that load on the machine
hits both alike; each run is one `fit` of `--epochs` epochs whose first epoch (tracing, the pipeline
starting) is left out. Figures (medians over the runs):

- `train_clips_per_s` and `fit_clips_per_s`: training clips over the time of the epochs' training
  steps (from the epoch's start to its validation's start: the figure the dashboards' `clips/s` shows).
- `ratio_train_vs_fit`: their ratio, the share of the plain loop's speed the product's loop keeps.
  Goal ≥ 0.9 (reported, not asserted).
- `train_epoch_clips_per_s`, `ratio_train_epoch_vs_fit`: the same with the whole epoch's wall time on
  the `train` side (validation, dashboards and checkpoints included); `train_epoch_extra_s`: what
  these add to an epoch.
- With `--with_pipeline_fit`, a third side interleaved with them, `fit_pipeline`: the plain `model.fit`
  fed by the real pipeline. `ratio_fit_pipeline_vs_fit` is then what the pipeline costs (on a CPU-only
  machine it shares the cores with the model), `ratio_train_vs_fit_pipeline` what the rest of the
  product's loop (its callbacks) costs.

The prepared data is `--data_dir` (default `datasets/demo/records`, which `make data` writes); if it
has no dataset.json, the demo videos are generated into the `raw` folder next to it and prepared as
`make data` does. Private functions of train.py are used (`_set_up`, `_datasets`, `_model`, `_fit`)
so that the benchmark follows the product's code path; the timing callback is slipped into `_fit` by
wrapping `callbacks.training_callbacks`.

    .venv/bin/python benchmarks/bench_train.py             # 2 rounds x 2 epochs: ~8 min on 2 busy cores
    .venv/bin/python benchmarks/bench_train.py --rounds 1  # smoke run
    .venv/bin/python benchmarks/bench_train.py --rounds 3 --epochs 4 --with_pipeline_fit  # steadier, longer
    .venv/bin/python benchmarks/bench_train.py --config.train.batch_size=32

Most of a run is the first epochs, left out: every `train` run compiles the model again (as `_fit`
does), and its first epoch (tracing, the first validation) takes about 2-3 later epochs.

The last line of output is one JSON object with the figures and the settings.
"""

# train.py's private steps are called on purpose (see the docstring).
# pylint: disable=protected-access
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

from videofusion import callbacks as callbacks_lib  # noqa: E402
from videofusion import config as config_lib, pipeline, prepared_data, strategy as strategy_lib  # noqa: E402
from videofusion import text, train  # noqa: E402
from videofusion import workdir as workdir_lib  # noqa: E402

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
    if os.path.isfile(os.path.join(data_dir, prepared_data.DATASET_FILE)):
        return
    raw = os.path.join(os.path.dirname(os.path.abspath(data_dir)), "raw")
    logging.info("No prepared data in %s: generating %d demo videos into %s and preparing them",
                 data_dir, num_videos, raw)
    for args in (["demo-data", "--output", raw, "--num-videos", str(num_videos), "--seed", "0"],
                 ["prepare", "--manifest", os.path.join(raw, "manifest.csv"), "--output", data_dir,
                  "--fps", "10", "--short-side", "64", "--num-shards", "4"]):
        subprocess.run([sys.executable, "-m", "videofusion.cli", *args], check=True, stdout=subprocess.DEVNULL)


@dataclasses.dataclass
class _Epoch:
    start: float
    first_of_fit: bool  # left out: tracing, the pipeline starting
    steps_end: Optional[float] = None
    end: Optional[float] = None


class EpochTimes(keras.callbacks.Callback):
    """The epochs of every `fit` it is given to, grouped by run (`new_run`; `train._fit` may fit in phases).

    An epoch's training steps end where its validation starts (or where the epoch ends, without one);
    the epoch ends where the next starts (or where the `fit` ends), its end-of-epoch callbacks included.
    No per-batch hook, so that it changes nothing in how Keras dispatches the batch callbacks.
    """

    def __init__(self):
        super().__init__()
        self.runs: List[List[_Epoch]] = []
        self._new_fit = False

    def new_run(self) -> None:
        self.runs.append([])

    def on_train_begin(self, logs=None):
        self._new_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        self._close_epoch(now)
        self.runs[-1].append(_Epoch(now, first_of_fit=self._new_fit))
        self._new_fit = False

    def on_test_begin(self, logs=None):  # fit's validation: the epoch's training steps are over
        if self.runs and self.runs[-1] and self.runs[-1][-1].steps_end is None:
            self.runs[-1][-1].steps_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.runs[-1][-1].steps_end is None:
            self.runs[-1][-1].steps_end = time.perf_counter()

    def on_train_end(self, logs=None):
        self._close_epoch(time.perf_counter())

    def _close_epoch(self, now: float) -> None:
        if self.runs and self.runs[-1] and self.runs[-1][-1].end is None:
            self.runs[-1][-1].end = now

    def steady(self, run: int) -> Tuple[float, float, int]:
        """(seconds of training steps, wall seconds, epochs) of `run`'s epochs but the first of each fit."""
        epochs = [epoch for epoch in self.runs[run] if not epoch.first_of_fit]
        if not epochs:
            raise ValueError("every run needs at least 2 epochs per fit: the first is left out (--epochs)")
        return (sum(e.steps_end - e.start for e in epochs), sum(e.end - e.start for e in epochs), len(epochs))

    def first_epochs(self, run: int) -> float:
        """Wall seconds of the first epoch of each of `run`'s fits (left out of the figures)."""
        return sum(e.end - e.start for e in self.runs[run] if e.first_of_fit)


@contextlib.contextmanager
def timed_training_callbacks(timer: EpochTimes):
    """Makes `callbacks.training_callbacks` (which `train._fit` calls) put `timer` first in its list."""
    product = callbacks_lib.training_callbacks

    def with_timer(*args, **kwargs):
        return [timer, *product(*args, **kwargs)]

    callbacks_lib.training_callbacks = with_timer
    try:
        yield
    finally:
        callbacks_lib.training_callbacks = product


def in_memory(dataset: tf.data.Dataset) -> Tuple[tf.data.Dataset, int, int]:
    """(the batches of one pass over `dataset`, held in memory and served in the same order with the
    same element spec; their clips; their number)."""
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
    return memory.prefetch(tf.data.AUTOTUNE), sum(sizes), len(batches)


def set_up_run(config, run_dir: str):
    """(distribution, data, model, paths) of a run into `run_dir`, as `train.train` sets them up."""
    train._set_up(config)
    distribution = strategy_lib.make_distribution(config.train.strategy)
    options = pipeline.PipelineOptions.from_config(config, text.tokenizer_for_run(config, run_dir, build=True))
    labels = prepared_data.read_dataset_info(config.data.dir)[prepared_data.LABELS]
    data = train._datasets(config, options, distribution, labels)
    with distribution.scope():
        model = distribution.prepare_model(train._model(config, options.spec, len(labels)))
    paths = workdir_lib.RunPaths(run_dir)
    os.makedirs(paths.checkpoints, exist_ok=True)
    config_lib.save_run_config(config, run_dir)
    workdir_lib.save_labels(config.data.dir, run_dir)
    return distribution, data, model, paths


def run_rounds(config, run_dir: str, rounds: int, with_pipeline_fit: bool) -> Dict:
    """Interleaved runs of both sides (and of the `fit_pipeline` side); returns the figures."""
    distribution, data, model, paths = set_up_run(config, run_dir)
    real = pipeline.model_inputs(data.train, model, data.class_weights)
    start = time.perf_counter()
    memory, clips_per_epoch, steps = in_memory(real)
    logging.info("Materialised %d batches (%d clips) of the training pipeline in %.1f s", steps, clips_per_epoch,
                 time.perf_counter() - start)
    timers = {"train": EpochTimes(), "fit": EpochTimes(), "fit_pipeline": EpochTimes()}
    plain_fits = [("fit", memory)] + ([("fit_pipeline", real)] if with_pipeline_fit else [])
    dashboard_rates = []
    for round_ in range(1, rounds + 1):
        start = time.perf_counter()
        timers["train"].new_run()
        with timed_training_callbacks(timers["train"]):
            train._fit(model, config, data, paths, distribution)
        dashboard_rates += model.history.history.get("clips_per_second", [])[1:]
        steps_s, wall_s, epochs = timers["train"].steady(-1)
        logging.info("Round %d/%d, train: %.0f s; first epoch %.1f s; %d later epoch(s) %.1f s (steps), %.1f s "
                     "(wall)", round_, rounds, time.perf_counter() - start, timers["train"].first_epochs(-1), epochs,
                     steps_s, wall_s)
        for name, source in plain_fits:  # the model as `_fit` compiled it: optimizer, losses, metrics, traced step
            start = time.perf_counter()
            timers[name].new_run()
            model.fit(source, epochs=config.train.epochs, verbose=0, callbacks=[timers[name]])
            steps_s, _, epochs = timers[name].steady(-1)
            logging.info("Round %d/%d, %s: %.0f s; first epoch %.1f s; %d later epoch(s) %.1f s", round_, rounds,
                         name, time.perf_counter() - start, timers[name].first_epochs(-1), epochs, steps_s)
    if not with_pipeline_fit:
        del timers["fit_pipeline"]
    return {
        **summarise(timers, clips_per_epoch, rounds),
        "train_dashboard_clips_per_s": round(statistics.median(dashboard_rates), 1) if dashboard_rates else None,
        "parameters": model.count_params(),
        "replicas": distribution.replicas,
        "steps_per_epoch": steps,
        "clips_per_epoch": clips_per_epoch,
    }


def summarise(timers: Dict[str, EpochTimes], clips_per_epoch: int, rounds: int) -> Dict:
    """The figures of the sides' runs: medians over the runs, and each run's clips/s."""
    def rates(timer: EpochTimes, wall: bool = False) -> List[float]:
        return [clips_per_epoch * epochs / (wall_s if wall else steps_s)
                for steps_s, wall_s, epochs in map(timer.steady, range(rounds))]

    runs = {name: rates(timer) for name, timer in timers.items()}
    runs["train_epoch"] = rates(timers["train"], wall=True)
    median = {name: statistics.median(values) for name, values in runs.items()}
    extra = [(wall_s - steps_s) / epochs for steps_s, wall_s, epochs in map(timers["train"].steady, range(rounds))]
    figures = {
        "ratio_train_vs_fit": round(median["train"] / median["fit"], 3),
        "ratio_train_epoch_vs_fit": round(median["train_epoch"] / median["fit"], 3),
    }
    if "fit_pipeline" in median:  # what the pipeline costs, and what the rest of the loop does
        figures["ratio_fit_pipeline_vs_fit"] = round(median["fit_pipeline"] / median["fit"], 3)
        figures["ratio_train_vs_fit_pipeline"] = round(median["train"] / median["fit_pipeline"], 3)
    figures.update({f"{name}_clips_per_s": round(rate, 1) for name, rate in median.items()})
    figures.update({
        "train_epoch_extra_s": round(statistics.median(extra), 2),
        "train_first_epoch_s": round(statistics.median(map(timers["train"].first_epochs, range(rounds))), 1),
        "runs_clips_per_s": {name: [round(rate, 1) for rate in values] for name, values in runs.items()},
        "timed_epochs_per_run": timers["train"].steady(0)[2],
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
    logging.info("train: %s clips/s; fit: %s clips/s; ratio %.3f", figures["runs_clips_per_s"]["train"],
                 figures["runs_clips_per_s"]["fit"], figures["ratio_train_vs_fit"])
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
