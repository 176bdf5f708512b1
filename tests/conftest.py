"""Shared fixtures: tiny real videos (written with PyAV), a tiny prepared demo dataset and a tiny set whose
picture and sound agree."""

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from videofusion.ingest import demo_videos, prepare  # noqa: E402

TONE_HZ = 440.0


def free_ports(count: int) -> list:
    """`count` TCP ports on 127.0.0.1 that nothing listened on a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tone(frequency_hz: float, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A float32 sine tone at amplitude 0.5."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def model_input_shapes(num_frames, image_size, mel_frames=20, mel_bins=8, **kwargs):
    """The `InputShapes` of a small model: audio windows whose log-mel (25 ms every 10 ms at 16 kHz) has
    `mel_frames` steps of `mel_bins` bins."""
    from videofusion.contract.log_mel import LogMelSpec
    from videofusion.models import InputShapes

    log_mel = LogMelSpec(16000, mel_bins, 25.0, 10.0, 60.0, 7600.0)
    return InputShapes(num_frames, image_size, log_mel.window + (mel_frames - 1) * log_mel.hop, log_mel, **kwargs)


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 RGB frames whose brightness encodes the frame index (frame i has value 4*i + 10)."""
    values = (10 + 4 * np.arange(num_frames)).clip(0, 255).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, height, width, 3)).copy()


def write_video(path, num_frames=50, fps=25, height=48, width=64, audio_seconds=2.0, tone_hz=TONE_HZ):
    """Writes a real H.264 (+ AAC when `audio_seconds`) mp4 and returns its path as a string."""
    samples = tone(tone_hz, audio_seconds) if audio_seconds else None
    demo_videos.write_mp4(str(path), gradient_frames(num_frames, height, width), fps, samples, 16000)
    return str(path)


@pytest.fixture(scope="session")
def tone_video(tmp_path_factory):
    """2 s, 25 fps, 64×48 H.264 + a 440 Hz AAC tone."""
    return write_video(tmp_path_factory.mktemp("media") / "tone.mp4")


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """36 demo videos of 32×32 pixels, 1 s, and their manifest (demo_videos.demo_split: 12 train, 12 val, 12
    test, each one video of every class)."""
    return demo_videos.write_demo_dataset(str(tmp_path_factory.mktemp("demo_raw")), num_videos=36, seed=0, size=32,
                                   duration_s=1.0)


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory, demo_raw):
    """The 36 demo videos prepared at 10 fps (10 frames each), short side 32, two shards per split."""
    output = str(tmp_path_factory.mktemp("demo_records"))
    prepare.prepare_dataset(
        prepare.PrepareOptions(manifest=demo_raw, output_dir=output, short_side=32, num_shards=2)
    )
    return output


# A tiny set whose picture and sound agree (tests/test_pretrain.py): each clip is a colour (one of 8, with
# per-pixel noise) and a tone (one of 8 pitches, ±3 %), colour k always with pitch k, as real H.264/AAC mp4s.
PALETTE = [(230, 40, 40), (40, 200, 40), (40, 60, 230), (230, 220, 40), (220, 40, 220), (40, 220, 220),
           (250, 250, 250), (120, 70, 20)]
TONES_HZ = [250, 350, 500, 700, 1000, 1400, 2000, 2800]
AGREEING_TRAIN, AGREEING_VAL = 48, 24


def write_agreeing_set(root: str, seed: int = 0) -> str:
    """`AGREEING_TRAIN` + `AGREEING_VAL` clips of 1 s, 10 fps, 32×32 (clip i: colour and pitch i % 8) and their
    manifest; training clips 8-15, 24-31 and 40-47 have no label."""
    rows = []
    for i in range(AGREEING_TRAIN + AGREEING_VAL):
        rng = np.random.default_rng([seed, i])
        level = i % len(PALETTE)
        colour = np.array(PALETTE[level], np.float32)
        frames = np.clip(colour + rng.normal(0, 25, (10, 32, 32, 3)), 0, 255).astype(np.uint8)
        t = np.arange(16000) / 16000
        tone = rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * TONES_HZ[level] * rng.uniform(0.97, 1.03) * t)
        samples = (tone + rng.normal(0, 0.02, t.shape)).astype(np.float32)
        path = f"videos/{i:03d}.mp4"
        os.makedirs(os.path.join(root, "videos"), exist_ok=True)
        demo_videos.write_mp4(os.path.join(root, path), frames, 10, samples, 16000)
        split = "train" if i < AGREEING_TRAIN else "val"
        label = "" if split == "train" and (i // len(PALETTE)) % 2 else f"level{level}"
        rows.append(f"{path},{label},{split}")
    manifest = os.path.join(root, "manifest.csv")
    with open(manifest, "w", encoding="utf-8") as f:
        f.write("path,label,split\n" + "\n".join(rows) + "\n")
    return manifest


@pytest.fixture(scope="session")
def agreeing_records(tmp_path_factory):
    """The agreeing set prepared (short side 32, two shards per split)."""
    raw = str(tmp_path_factory.mktemp("agreeing_raw"))
    output = str(tmp_path_factory.mktemp("agreeing_records"))
    prepare.prepare_dataset(prepare.PrepareOptions(manifest=write_agreeing_set(raw), output_dir=output,
                                                   short_side=32, num_shards=2))
    return output



SMOKE_RUN_EPOCHS = 2  # test_dashboards.py checks one logged point per epoch: two make a series


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, demo_records):
    """A finished run of the smoke config on `demo_records`, `SMOKE_RUN_EPOCHS` epochs: the frame-averaging
    encoder with concatenation (half the tracing of the default), evaluated on 2 clips × 3 crops per
    video, top-3. Tests read it (its files, its TensorBoard logs; they may evaluate it) and write their
    own outputs elsewhere: test_export, test_evaluate_outputs and test_dashboards share the one training."""
    from videofusion.config import demo_config
    from videofusion.training import train

    config = demo_config("smoke")
    config.data.dir = demo_records
    config.train.epochs = SMOKE_RUN_EPOCHS
    config.model.update(dict(video_encoder="frame_avg", fusion="concat"))
    config.eval.update(dict(num_clips=2, num_crops=3, top_k=3))
    workdir = str(tmp_path_factory.mktemp("smoke_run") / "run")
    train.train(config, workdir)
    return workdir


# The order of the tests for pytest-xdist's `--dist worksteal` (`make test`). Worksteal hands each
# worker a contiguous share of the collected tests (with 2 workers: the first half, the second half)
# and, when a worker has run its share, moves the last half of the longest remaining share over to it.
# In collection (alphabetical) order the first half held both end-to-end tests, the distributed
# trainings, the export and the dashboards, which then ran one after the other on one worker. Here the
# long tests are dealt out between the shares (the longest first, each to the share with the fewest
# seconds so far) and run first within their share; the short ones follow, in collection order, and
# are what the other worker takes over at the end.
#
# (seconds, the tests: node ids or prefixes of node ids; the longest prefix that matches a test wins).
# Tests that share an expensive fixture of module or session scope form one entry, so that one worker
# builds it; an entry that takes some tests of a module leaves none behind that shares a module-scoped
# fixture with them. The seconds are `--durations` of a run with 2 workers on a loaded machine
# (test_learning's: twice its 153 s alone): only their sizes relative to one another matter. A test not
# listed counts as short; one that takes more than about 10 s belongs here.
LONG_TESTS = [
    (300, ("tests/test_learning.py",)),
    (390, ("tests/test_export.py", "tests/test_dashboards.py", "tests/test_evaluate_outputs.py",
           "tests/test_embed_search.py", "tests/test_stream.py")),  # smoke_run
    (220, ("tests/test_end_to_end.py::test_text_model_serves_captions",)),
    (210, ("tests/test_models.py",)),
    (200, ("tests/test_frame_backbones.py",)),  # its weight_files; the training test is an entry of its own
    (190, ("tests/test_end_to_end.py::test_demo_to_served_prediction",)),
    (190, ("tests/test_resume.py",)),
    (165, ("tests/test_recipe.py",)),
    (135, ("tests/test_distribution.py::test_two_worker_processes_train_the_smoke_config_to_equal_weights",)),
    (95, ("tests/test_distribution.py::test_mirrored_strategy_over_two_cpu_devices_trains_the_smoke_config",)),
    (100, ("tests/test_run_from_0_2_0.py",)),
    (90, ("tests/test_pipeline.py",)),
    (80, ("tests/test_cli.py",)),
    (125, ("tests/test_train_jax.py",)),
    (55, ("tests/test_bench_accelerator.py",)),
    (120, ("tests/test_data_service.py",)),
    (75, ("tests/test_models_jax.py",)),
    (50, ("tests/test_frame_backbones.py::test_training_freezes_then_slows_the_pretrained_backbone",)),
    (65, ("tests/test_wordpiece.py",)),
    (40, ("tests/test_frame_preprocessing.py",)),
    (25, ("tests/test_beam.py",)),
    (120, ("tests/test_beam_inference.py",)),
    (20, ("tests/test_encoders.py", "tests/test_fusion.py")),
    (165, ("tests/test_pretrain.py",)),  # its `pretrained` run; the two below build their own runs
    (100, ("tests/test_pretrain.py::test_pretrain_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_run",)),
    (60, ("tests/test_pretrain.py::test_pretrain_runs_under_the_jax_backend",)),
    (15, ("tests/test_checkpoints.py",)),
]


def _long_test_entry(nodeid: str):
    """The index in `LONG_TESTS` of the entry that names `nodeid` most closely, or None."""
    matches = [(len(p), i) for i, (_, tests) in enumerate(LONG_TESTS) for p in tests
               if nodeid == p or nodeid.startswith(p + "::") or nodeid.startswith(p + "[")]
    return max(matches)[1] if matches else None


def worksteal_order(items, workers: int):
    """`items` reordered so that each of the `workers` shares worksteal makes begins with its long tests.

    The short tests fill each share up to the size worksteal gives it, a test module at a time, so that
    no module's tests end one share and begin the next (a process that ran both parts would build the
    module's fixtures twice); the doctests, which have no fixtures, make up the exact count.
    """
    groups = [[] for _ in LONG_TESTS]
    modules, doctests = {}, []  # the short tests by module, in collection order; the doctests
    for item in items:
        index = _long_test_entry(item.nodeid)
        if index is not None:
            groups[index].append(item)
        elif isinstance(item, pytest.Function):
            modules.setdefault(item.nodeid.split("::")[0], []).append(item)
        else:
            doctests.append(item)
    shares, seconds = [[] for _ in range(workers)], [0.0] * workers
    for (cost, _), group in sorted(zip(LONG_TESTS, groups), key=lambda entry: -entry[0][0]):
        if group:
            lightest = seconds.index(min(seconds))
            shares[lightest] += group
            seconds[lightest] += cost
    short = list(modules.values())
    ordered, left = [], len(items)
    for i, share in enumerate(shares):
        # Worksteal's sizes: len(items) // workers to the first share, a fair part of the rest to the next, ...
        size = left // (workers - i) if i < workers - 1 else len(items)  # ... the last takes the rest
        left -= size
        chunk = list(share)
        while short and len(chunk) + len(short[0]) <= size:
            chunk += short.pop(0)
        while doctests and len(chunk) < size:
            chunk.append(doctests.pop(0))
        while short and len(chunk) < size:  # no doctest left: a module is split after all
            chunk.append(short[0].pop(0))
            if not short[0]:
                short.pop(0)
        ordered += chunk
    assert len(ordered) == len(items)
    return ordered


@pytest.hookimpl(trylast=True)  # after `-k`, `-m` and `--deselect` took theirs out
def pytest_collection_modifyitems(config, items):
    # In xdist's workers, which collect (`--dist` reads "no" there); harmless under the other `--dist` modes.
    workers = getattr(config, "workerinput", {}).get("workercount", 0)
    if workers > 1:
        items[:] = worksteal_order(items, workers)
