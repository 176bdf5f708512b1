"""The models import `keras` only: one fusion model, with its on-device frame and audio augmentation,
builds and trains under the JAX backend (finite losses, every trainable weight moved) and survives a `.keras`
save and load there, in a fresh process, without TensorFlow ever being imported.

Its outputs come from `predict_on_batch` (one compiled function), not from calling the model eagerly,
which under JAX compiles every operation on its own (about as long as the whole fit, here); and XLA's
CPU compiler is told to optimize less (as in tests/test_train_jax.py). Both change nothing but the speed."""

import json
import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

SCRIPT = textwrap.dedent(
    """
    import json, math, os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import keras, numpy as np
    from videofusion.contract import tensors
    from videofusion.config import base_config
    from videofusion.contract.log_mel import LogMelSpec
    from videofusion.models import FrameAugment, InputShapes, SpecAugment, build_model

    cfg = base_config().model
    cfg.update(dict(embed_dim=16, num_heads=2, num_layers=1, video_encoder="transformer", fusion="bottleneck",
                    modality_dropout=0.2, aux_loss_weight=0.3))
    augment = FrameAugment(random_resized_crop=True, flip=True, brightness=0.2, contrast=0.2)
    shapes = InputShapes(4, 16, 3440, LogMelSpec(16000, 8, 25.0, 10.0, 60.0, 7600.0), frame_size=24)
    model = build_model(cfg, shapes, 3, frame_augment=augment, audio_augment=SpecAugment(2, 0.1, 2, 2), seed=0)
    model.compile(optimizer="adam", loss={k: "sparse_categorical_crossentropy" for k in model.output})
    rng = np.random.default_rng(0)
    x = {tensors.FRAMES: rng.integers(0, 256, size=(4, 4, 24, 24, 3), dtype=np.uint8),
         tensors.FRAME_MASK: np.ones((4, 4), "float32"),
         tensors.WAVEFORM: 0.1 * rng.normal(size=(4, 3440)).astype("float32"),
         tensors.AUDIO_PRESENT: np.ones((4, 1), "float32")}
    before = [np.array(v) for v in model.trainable_variables]
    history = model.fit(x, {k: np.array([0, 1, 2, 0]) for k in model.output}, epochs=2, verbose=0)
    unchanged = [v.path for v, b in zip(model.trainable_variables, before) if np.array_equal(np.array(v), b)]
    probabilities = np.asarray(model.predict_on_batch(x)[tensors.CLASSES])
    tensorflow_imported = "tensorflow" in sys.modules  # before saving: Keras's model.save imports it when installed
    path = os.path.join(sys.argv[1], "model.keras")
    model.save(path)
    reloaded = np.asarray(keras.models.load_model(path).predict_on_batch(x)[tensors.CLASSES])
    print(json.dumps({"backend": keras.config.backend(), "tensorflow_imported": tensorflow_imported,
                      "finite": all(math.isfinite(loss) for loss in history.history["loss"]),
                      "unchanged": unchanged, "num_variables": len(before),
                      "reload_gap": float(np.abs(reloaded - probabilities).max()),
                      "row_sums": probabilities.sum(axis=1).tolist()}))
    """
)


def test_fusion_model_trains_under_jax(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", XLA_FLAGS=XLA_FLAGS))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and not report["tensorflow_imported"]
    assert report["finite"] and report["num_variables"] > 50 and report["unchanged"] == []
    assert all(abs(total - 1) < 1e-4 for total in report["row_sums"])
    assert report["reload_gap"] < 1e-5
