"""`make bench`: runs every speed benchmark in `benchmarks/` and writes `results/benchmarks.md`.

Each benchmark measures its figure and its reference side by side in one run and prints one JSON
object as its last line; this script runs them one after the other (never two at once: they would
slow each other), and writes per benchmark the command, its wall time and every figure, ratios first,
with the machine (CPU model, cores) and the date. Sizes are chosen so that the whole run takes under
20 minutes on 2 cores; each script's docstring says how to run it at full size.

The accuracy benchmark `bench_appearance.py` is not run here: it trains three models (about 40
minutes on 2 cores); `make bench-appearance` runs it.

    .venv/bin/python benchmarks/run_benchmarks.py --output results/benchmarks.md
    .venv/bin/python benchmarks/run_benchmarks.py --output /tmp/b.md --only bench_pipeline

Example:

>>> print(figures_table({"ratio_x_vs_y": 1.25, "x_per_s": 10.0}))
| figure | value |
|---|---|
| ratio_x_vs_y | 1.25 |
| x_per_s | 10.0 |
"""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import Dict, List

import machine  # noqa: E402  (benchmarks/, beside this file)
from absl import app, flags, logging

from videofusion import fileio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name → arguments (after `python benchmarks/<name>.py`), sized for the 15-minute budget on 2 cores.
BENCHMARKS = {
    "bench_prepare": ["--repeats", "2", "--long_seconds", "120"],
    "bench_pipeline": ["--clips", "128", "--seconds", "10", "--repeats", "3", "--steps", "8"],
    "bench_device_preprocessing": ["--batch_size", "8", "--steps", "6"],
    "bench_train": ["--rounds", "2", "--epochs", "2"],
    "bench_serving": ["--calls", "30", "--batch_calls", "8"],
}

_OUTPUT = flags.DEFINE_string("output", "results/benchmarks.md", "The Markdown report to write.")
_ONLY = flags.DEFINE_list("only", list(BENCHMARKS), f"Benchmarks to run, of {', '.join(BENCHMARKS)}.")


def run_benchmark(name: str, args: List[str]) -> tuple:
    """(command line, wall seconds, figures) of `benchmarks/<name>.py args`; raises if it failed."""
    command = [sys.executable, os.path.join("benchmarks", f"{name}.py"), *args]
    logging.info("Running %s", " ".join(command))
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{name} exited with status {result.returncode}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{name} printed nothing on stdout; expected a JSON line")
    return shlex.join(["python", *command[1:]]), seconds, json.loads(lines[-1])


def figures_table(figures: Dict) -> str:
    """A Markdown table of `figures`, the ratios (each against its reference of the same run) first."""
    ordered = sorted(figures.items(), key=lambda item: (not item[0].startswith("ratio_"), item[0]))
    rows = [f"| {key} | {json.dumps(value) if isinstance(value, (dict, list)) else value} |" for key, value in ordered]
    return "\n".join(["| figure | value |", "|---|---|"] + rows)


def report(results: List[tuple], when: datetime.datetime) -> str:
    """The whole Markdown report."""
    lines = [
        "# Benchmarks",
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on {machine.cpu_model()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, by `make bench` (`benchmarks/run_benchmarks.py`). Every ratio compares "
        "a figure with its reference measured in the same run, side by side; each script's docstring says "
        "what its reference is and what the goal is.",
    ]
    for name, command, seconds, figures in results:
        lines += ["", f"## {name}", "", f"`{command}` ({seconds:.0f} s)", "", figures_table(figures)]
    return "\n".join(lines) + "\n"


def main(_):
    unknown = sorted(set(_ONLY.value) - set(BENCHMARKS))
    if unknown:
        raise app.UsageError(f"unknown benchmarks {unknown}: choose from {', '.join(BENCHMARKS)}")
    when = datetime.datetime.now(datetime.timezone.utc)
    results = []
    for name in _ONLY.value:
        command, seconds, figures = run_benchmark(name, BENCHMARKS[name])
        results.append((name, command, seconds, figures))
        logging.info("%s: %s", name, {k: v for k, v in figures.items() if k.startswith("ratio_")})
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with fileio.atomic_open(_OUTPUT.value, "w", encoding="utf-8") as f:
        f.write(report(results, when))
    logging.info("Wrote %s", _OUTPUT.value)


if __name__ == "__main__":
    app.run(main)
