"""`KERAS_BACKEND=jax videofusion train` on CPU, then `videofusion export` under TensorFlow and the
SavedModel served in a fresh process: the JAX path from the same tf.data pipeline to the usual export.

JAX is shown two CPU devices, so that `keras.distribution.DataParallel` splits every batch between them
(the smoke config's 12 training clips in global batches of 8, then the 4 left over), as it would over
the GPUs of one machine. XLA's CPU compiler is told to optimize less: it compiles each random
initializer and step function in a fraction of the time, and changes nothing but the speed here."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from videofusion import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_ENV = {
    "KERAS_BACKEND": "jax",
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0 "
                 "--xla_llvm_disable_expensive_passes=true",
}

SERVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from videofusion import names, pipeline, prepared_data, records

    loaded = tf.saved_model.load(sys.argv[1])
    serve = loaded.serve  # serving_default, its defaults applied in Python
    files = prepared_data.shard_files(sys.argv[2], "test")
    results = []
    for serialized in tf.data.TFRecordDataset(files).take(2):
        parsed = records.parse_clip(serialized)
        served = serve(frames=pipeline.decode_frames(parsed[records.IMAGES])[tf.newaxis],
                       waveform=parsed[records.WAVEFORM][tf.newaxis])
        probabilities = served[names.PROBABILITIES].numpy()[0]
        results.append({"sum": float(probabilities.sum()), "classes": len(probabilities),
                        "labels": [label.decode() for label in served[names.TOP_K_LABELS].numpy()[0]]})
    print(json.dumps(results))
    """
)


def run(*args, cwd, env):
    result = subprocess.run([sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, capture_output=True,
                            text=True, env=dict(env, PYTHONPATH=REPO), timeout=600)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_jax_trained_run_exports_a_savedmodel_that_serves(demo_records, tmp_path):
    tensorflow_env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    trained = run("train", "--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", "run",
                  f"--config.data.dir={demo_records}", "--config.model.video_encoder=frame_avg",
                  "--config.model.fusion=concat", cwd=tmp_path, env=dict(tensorflow_env, **JAX_ENV))
    assert "Keras backend jax: DataParallel over 2 device(s)" in trained.stderr
    assert "global batch 8 (2 replica(s))" in trained.stderr
    run_dir = tmp_path / "run"
    assert {"model.keras", "config.json", "labels.txt", "checkpoints"} <= set(os.listdir(run_dir))
    assert json.loads((run_dir / "config.json").read_text())["train"]["strategy"] == "auto"
    assert (run_dir / "labels.txt").read_text() == open(os.path.join(demo_records, "labels.txt")).read()

    exported = run("export", "--workdir", "run", "--output", "exports", cwd=tmp_path, env=tensorflow_env)
    assert exported.stdout.strip() == os.path.join("exports", "1")
    served = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, "exports/1", demo_records], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(tensorflow_env, PYTHONPATH=REPO), timeout=300)
    assert served.returncode == 0, served.stderr[-4000:]
    for clip in json.loads(served.stdout.strip().splitlines()[-1]):
        assert clip["classes"] == len(demo.LABELS) and abs(clip["sum"] - 1) < 1e-4
        assert len(clip["labels"]) == 5 and set(clip["labels"]) <= set(demo.LABELS)


def test_jax_backend_refuses_tf_distribute_strategies():
    script = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        from videofusion import strategy
        try:
            strategy.make_distribution("mirrored")
        except ValueError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu"), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train.strategy='mirrored' is a tf.distribute strategy" in result.stdout
