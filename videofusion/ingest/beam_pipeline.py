"""What every Apache Beam pipeline of videofusion shares: `prepare --runner beam` (`beam_runner.py`) and
`predict`/`embed` on Beam (`serving/beam_inference.py`).

Importing Beam with an error that says how to install it, the pipeline options (the DirectRunner with
`workers` processes unless `--beam-options` say otherwise), refusing local paths on Dataflow, reading a
plan file on a worker, and running a pipeline to its end with its metrics logged. Apache Beam is an
optional extra: nothing here imports it outside a function.

Example:

>>> options = pipeline_options(["--runner=FlinkRunner"], workers=4)  # doctest: +SKIP
>>> runner_name(options)  # doctest: +SKIP
'FlinkRunner'
>>> check_shared("DataflowRunner", ["/data/a.mp4"], "the videos")  # doctest: +SKIP
Traceback (most recent call last):
BeamSetupError: /data/a.mp4: Dataflow's workers share no disk with this machine, so the videos must be URLs ...
"""

import time
from typing import Callable, Iterator, Sequence

from absl import logging

from videofusion import fileio

METRICS_NAMESPACE = "videofusion"


class BeamSetupError(Exception):
    """A Beam runner cannot run as asked (Beam is not installed, or a local path on Dataflow)."""


def import_beam():
    """The `apache_beam` module; `BeamSetupError` saying how to install it if it is missing."""
    try:
        import apache_beam
    except ImportError as error:
        raise BeamSetupError(
            f"--runner beam needs Apache Beam ({error}): pip install 'videofusion[beam]', or `make install-beam`"
        ) from error
    return apache_beam


def check_shared(runner: str, paths: Sequence[str], what: str) -> None:
    """Refuses local `paths` on Dataflow, whose workers cannot open them (other runners may share a mount)."""
    local = [path for path in paths if not fileio.is_url(path)]
    if local and runner.lower().removesuffix("runner") == "dataflow":
        raise BeamSetupError(
            f"{local[0]}: Dataflow's workers share no disk with this machine, so {what} must be URLs such as "
            f"gs://bucket/… ({len(local)} local path{'s' if len(local) > 1 else ''})"
        )


def pipeline_options(beam_args: Sequence[str], workers: int):
    """Beam's `PipelineOptions` from `--beam-options`' arguments; by default the DirectRunner with
    `workers` processes (`--direct_num_workers`, multi-processing), which later arguments override."""
    from apache_beam.options.pipeline_options import PipelineOptions

    defaults = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return PipelineOptions(defaults + list(beam_args))


def runner_name(pipeline_opts) -> str:
    """The runner that `pipeline_opts` name (the DirectRunner when none)."""
    return pipeline_opts.get_all_options()["runner"] or "DirectRunner"


def read_plan(path: str) -> Iterator[str]:
    """The lines of a plan file, read through `fileio` (on the worker that gets the file's path)."""
    with fileio.open_file(path, encoding="utf-8") as f:
        yield from (line for line in f if line.strip())


def run(pipeline_opts, build: Callable[[object], None]):
    """Builds a pipeline with `build(pipeline)`, runs it to its end and returns its result; raises
    `RuntimeError` if it ends in any other state than DONE."""
    beam = import_beam()
    from apache_beam.runners.runner import PipelineState

    started = time.monotonic()
    pipeline = beam.Pipeline(options=pipeline_opts)
    build(pipeline)
    result = pipeline.run()
    state = result.wait_until_finish()
    logging.info("Beam pipeline %s in %.1f s", state, time.monotonic() - started)
    if state != PipelineState.DONE:
        raise RuntimeError(f"the Beam pipeline ended in state {state}; see the runner's logs")
    return result


def log_metrics(result) -> None:
    """Logs the counters and distributions (mean, max) of `METRICS_NAMESPACE` that the runner kept."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except NotImplementedError:  # runners that keep no metrics
        return
    counters = {c.key.metric.name: c.committed for c in metrics["counters"]}
    spreads = {d.key.metric.name: f"mean {d.committed.mean:.0f}, max {d.committed.max}"
               for d in metrics["distributions"] if d.committed and d.committed.count}
    logging.info("Beam: %s; %s", counters, spreads or "no distribution")
