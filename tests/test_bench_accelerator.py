"""`benchmarks/bench_accelerator.py` at its tiny size: every figure for both Keras backends from the
prepared shards, and its JAX path on a machine without TensorFlow (as on the GPU machine we measure on),
from the inputs it writes here."""

import json
import os
import subprocess
import sys

import pytest

from tests.test_train_jax import JAX_ENV

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "bench_accelerator.py")
RATES = ("memory_clips_per_s", "shards_clips_per_s", "ratio_shards_vs_memory")


def bench(*args, cwd, pythonpath=REPO, backend="tensorflow"):
    """Runs the benchmark with `args` (the parent process under `backend`); returns its JSON line."""
    env = dict(os.environ, PYTHONPATH=pythonpath, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               XLA_FLAGS=JAX_ENV["XLA_FLAGS"].replace("--xla_force_host_platform_device_count=2 ", ""))
    result = subprocess.run([sys.executable, SCRIPT, "--size=tiny", "--models=default", "--precisions=float32",
                             "--steps=2", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_both_backends_measured_from_the_shards_into_the_table(demo_records, tmp_path):
    figures = bench(f"--data_dir={demo_records}", "--output=accelerator.md", cwd=tmp_path)
    rows = {row["backend"]: row for row in figures["rows"]}
    assert set(rows) == {"tensorflow", "jax"} and figures["cores"] >= 1
    for row in rows.values():
        assert row["build_s"] > 0 and row["first_step_s"] > 0 and "(cpu)" in row["device"]
        assert all(row[key] > 0 for key in RATES), row
    jax = rows["jax"]
    assert jax["compiles"] >= 1 and 0 < jax["compile_s"] < jax["first_step_s"] and jax["device_clips_per_s"] > 0
    assert rows["tensorflow"]["device_clips_per_s"] is None  # its fit reads tf.data in host memory
    table = (tmp_path / "accelerator.md").read_text()
    assert "| default | tensorflow | float32 |" in table and "| default | jax | float32 |" in table


@pytest.mark.slow
def test_the_jax_path_runs_without_tensorflow_from_the_inputs_written_here(demo_records, tmp_path):
    bench(f"--data_dir={demo_records}", "--write_device_inputs=inputs", cwd=tmp_path)
    assert sorted(os.listdir(tmp_path / "inputs")) == ["inputs.npz", "jpegs.npz", "run.json"]
    without_tensorflow = tmp_path / "no_tensorflow" / "tensorflow"
    without_tensorflow.mkdir(parents=True)
    (without_tensorflow / "__init__.py").write_text('raise ImportError("no TensorFlow on this machine")\n')
    figures = bench("--device_inputs=inputs", "--backends=jax", "--decode_processes=1", "--output=gpu.md",
                    cwd=tmp_path, pythonpath=f"{without_tensorflow.parent}{os.pathsep}{REPO}", backend="jax")
    (row,) = figures["rows"]
    assert row["memory_clips_per_s"] > 0 and row["device_clips_per_s"] > 0 and row["compiles"] >= 1
    assert "shards_clips_per_s" not in row  # no TensorFlow to read the shards with
    assert figures["decode_frames_per_s"] > 0 and figures["decode_processes"] == 1
    assert "Host JPEG decoding (OpenCV, 1 processes)" in (tmp_path / "gpu.md").read_text()
