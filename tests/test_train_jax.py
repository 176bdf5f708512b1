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

import numpy as np
import pytest

from videofusion.ingest import demo_videos
from videofusion.training import compilation_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_ENV = {
    "KERAS_BACKEND": "jax",
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0 "
                 "--xla_llvm_disable_expensive_passes=true",
}

# `videofusion train` as the command line runs it, plus a callback that keeps the weights the fit starts
# from; then the saved model, loaded under JAX, scores the first two test clips (their views as
# `evaluate` and the SavedModel's `serve_examples` make them). Arguments: the JSON file to write, the
# flags of `videofusion train`.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    import numpy as np
    import tensorflow as tf
    from tests.train_in_process import run_train
    from videofusion import models
    from videofusion.contract import prepared_folder, tensors
    from videofusion.data import pipeline

    initial = {}

    class KeepInitialWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            initial.update({v.path: keras.ops.convert_to_numpy(v).copy() for v in self.model.trainable_variables})

    run_train(sys.argv[2:], [KeepInitialWeights()])
    keras.distribution.set_distribution(None)  # score on one device: a batch of one clip's views
    config, _, model = models.load_run("run")
    moved = {v.path: float(np.abs(keras.ops.convert_to_numpy(v) - initial[v.path]).max())
             for v in model.trainable_variables}
    options = pipeline.PipelineOptions.from_config(config)
    records = [r.numpy() for r in tf.data.TFRecordDataset(prepared_folder.shard_files(config.data.dir, "test")).take(2)]
    probabilities = []
    for record in records:
        views, _ = pipeline.eval_examples(tf.constant(record), tf.constant(0, tf.int64), options)
        per_view = model.predict_on_batch({k: views[k].numpy() for k in model.input})[tensors.CLASSES]
        probabilities.append(np.asarray(per_view).mean(axis=0).tolist())
    with open(sys.argv[1], "w") as f:
        json.dump({"moved": moved, "records": [r.hex() for r in records], "probabilities": probabilities}, f)
    """
)

# The SavedModel, under TensorFlow, on the same two records: `serve_examples`, and `serve` (the default
# signature, its defaults applied in Python) on their decoded frames and waveform.
SERVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from videofusion.contract import tensors, record_schema
    from videofusion.data import pipeline

    loaded = tf.saved_model.load(sys.argv[1])
    records = [bytes.fromhex(r) for r in json.load(open(sys.argv[2]))["records"]]
    examples = loaded.signatures["serve_examples"](examples=tf.constant(records))
    results = {"examples": examples[tensors.PROBABILITIES].numpy().tolist(), "media": [], "labels": []}
    for record in records:
        parsed = record_schema.parse_clip(tf.constant(record))
        served = loaded.serve(frames=pipeline.decode_frames(parsed[record_schema.IMAGES])[tf.newaxis],
                              waveform=parsed[record_schema.WAVEFORM][tf.newaxis])
        results["media"].append(served[tensors.PROBABILITIES].numpy()[0].tolist())
        results["labels"].append([label.decode() for label in served[tensors.TOP_K_LABELS].numpy()[0]])
    print(json.dumps(results))
    """
)


def run(*args, cwd, env):
    result = subprocess.run([sys.executable, "-m", "videofusion.cli", *args], cwd=cwd, capture_output=True,
                            text=True, env=dict(env, PYTHONPATH=REPO), timeout=600)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_jax_trained_run_exports_a_savedmodel_that_serves_its_probabilities(demo_records, tmp_path):
    """Trained under JAX, the weights move; the SavedModel exported from the run (under TensorFlow)
    gives the probabilities the JAX model gives on the same clips."""
    tensorflow_env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    trained = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, "jax.json", "--config",
         os.path.join(REPO, "experiments", "demo.py") + ":smoke", "--workdir", "run",
         f"--config.data.dir={demo_records}", "--config.model.video_encoder=frame_avg", "--config.model.fusion=concat"],
        cwd=tmp_path, capture_output=True, text=True, env=dict(tensorflow_env, PYTHONPATH=REPO, **JAX_ENV), timeout=600)
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "Keras backend jax: DataParallel over 2 device(s)" in trained.stderr
    assert "global batch 8 (2 replica(s))" in trained.stderr
    run_dir = tmp_path / "run"
    assert {"model.keras", "config.json", "labels.txt", "checkpoints"} <= set(os.listdir(run_dir))
    assert json.loads((run_dir / "config.json").read_text())["train"]["strategy"] == "auto"
    assert (run_dir / "labels.txt").read_text() == open(os.path.join(demo_records, "labels.txt")).read()
    jax = json.loads((tmp_path / "jax.json").read_text())
    unmoved = [path for path, change in jax["moved"].items() if change < 1e-6]
    assert jax["moved"] and not unmoved, f"trainable weights that training left as they were: {unmoved}"

    exported = run("export", "--workdir", "run", "--output", "exports", cwd=tmp_path, env=tensorflow_env)
    assert exported.stdout.strip() == os.path.join("exports", "1")
    served = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, "exports/1", "jax.json"], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(tensorflow_env, PYTHONPATH=REPO), timeout=300)
    assert served.returncode == 0, served.stderr[-4000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])
    probabilities = np.array(jax["probabilities"])
    assert probabilities.shape == (2, len(demo_videos.LABELS))
    np.testing.assert_allclose(result["examples"], probabilities, atol=1e-4)
    np.testing.assert_allclose(result["media"], probabilities, atol=1e-4)
    for labels in result["labels"]:
        assert len(labels) == 5 and set(labels) <= set(demo_videos.LABELS)


def test_jax_backend_refuses_tf_distribute_strategies():
    script = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        from videofusion.training import strategy
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


# `videofusion train` with listeners on JAX's compilation-cache events; prints how many programs asked the
# persistent cache and how many it had. Arguments: the flags of `videofusion train`.
CACHE_SCRIPT = textwrap.dedent(
    """
    import collections, json, sys
    import jax
    from tests.train_in_process import run_train

    events = collections.Counter()
    jax.monitoring.register_event_listener(lambda event, **_: events.update([event]))
    run_train(sys.argv[1:])
    print(json.dumps({"requests": events["/jax/compilation_cache/compile_requests_use_cache"],
                      "hits": events["/jax/compilation_cache/cache_hits"]}))
    """
)


@pytest.mark.slow
def test_a_second_jax_run_takes_every_compiled_program_from_the_compilation_cache(demo_records, tmp_path):
    """`train.compilation_cache`: the first run compiles and keeps its programs there (the random
    initialisers' and the training and validation steps'); a second run of the same experiment compiles
    none of them."""
    cache = tmp_path / "cache"
    flags = ["--config", os.path.join(REPO, "experiments", "demo.py") + ":smoke", f"--config.data.dir={demo_records}",
             f"--config.train.compilation_cache={cache}", "--config.train.validation_dashboards=False"]
    counts = []
    for workdir in ("first", "second"):
        result = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, *flags, "--workdir", workdir], cwd=tmp_path,
                                capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO, **JAX_ENV),
                                timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
        counts.append(json.loads(result.stdout.strip().splitlines()[-1]))
        if workdir == "first":
            assert os.listdir(cache), "the first run kept nothing in train.compilation_cache"
    first, second = counts
    assert first["requests"] >= 10 and first["hits"] == 0, first
    assert second == {"requests": first["requests"], "hits": first["requests"]}, (first, second)


def test_the_compilation_cache_is_jax_s_own_and_leaves_tensorflow_alone(tmp_path):
    """Under JAX, `use` points JAX's persistent cache at the folder (`~` expanded) for programs of any
    size; "" keeps `JAX_COMPILATION_CACHE_DIR`. Under TensorFlow (this process) it sets nothing."""
    script = textwrap.dedent(
        """
        import json, jax
        from videofusion.training import compilation_cache
        compilation_cache.use("")
        kept = jax.config.jax_compilation_cache_dir
        compilation_cache.use("~/jax-cache")
        print(json.dumps([kept, jax.config.jax_compilation_cache_dir,
                          jax.config.jax_persistent_cache_min_compile_time_secs]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                                     HOME=str(tmp_path), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "env")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [str(tmp_path / "env"), str(tmp_path / "jax-cache"), 0]
    import jax

    before = jax.config.jax_compilation_cache_dir
    compilation_cache.use(str(tmp_path / "tensorflow"))
    assert jax.config.jax_compilation_cache_dir == before
