"""The tf.data pipeline over real shards: shapes, ranges, determinism, audio-video alignment."""

import numpy as np

from videofusion import names, pipeline
from videofusion.transforms import ClipSpec

SPEC = ClipSpec(num_frames=4, stride=2, image_size=24, fps=10.0, sample_rate=16000, mel_bins=16)


def test_train_batches_have_model_shapes_and_ranges(demo_records):
    dataset = pipeline.make_dataset(demo_records, "train", SPEC, batch_size=3, training=True, seed=1)
    batches = list(dataset)
    assert [int(labels.shape[0]) for _, labels in batches] == [3, 1]
    features, labels = batches[0]
    assert features[names.FRAMES].shape == (3, 4, 24, 24, 3)
    assert features[names.MEL].shape == (3, SPEC.mel_frames, 16)
    frames = features[names.FRAMES].numpy()
    assert frames.min() >= 0.0 and frames.max() <= 1.0 and frames.max() > 0.5
    assert np.isfinite(features[names.MEL].numpy()).all()
    assert set(labels.numpy().tolist()) <= {0, 1, 2, 3}


def test_eval_is_deterministic_and_sees_every_clip_once(demo_records):
    def run():
        dataset = pipeline.make_dataset(demo_records, "test", SPEC, batch_size=3, training=False)
        return [(f[names.FRAMES].numpy(), f[names.MEL].numpy(), l.numpy()) for f, l in dataset]

    first, second = run(), run()
    assert sum(len(labels) for _, _, labels in first) == 8
    for (f1, m1, l1), (f2, m2, l2) in zip(first, second):
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(l1, l2)


def test_missing_split_names_the_folder(tmp_path):
    try:
        pipeline.shard_files(str(tmp_path), "train")
    except FileNotFoundError as error:
        assert str(tmp_path) in str(error) and "prepare" in str(error)
    else:
        raise AssertionError("expected FileNotFoundError")
