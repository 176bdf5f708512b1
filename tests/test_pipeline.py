"""The tf.data pipeline over real shards: shapes, ranges, views, masks, determinism, audio-video sync."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from videofusion.contract import prepared_folder, record_schema, tensors
from videofusion.data import pipeline, transforms
from videofusion.data.augment import Augmentation
from videofusion.data.transforms import ClipSpec
from videofusion.ingest import demo_videos, prepare

SPEC = ClipSpec(num_frames=4, stride=2, image_size=24, fps=10.0, sample_rate=16000, mel_bins=16, frame_size=32)
OPTIONS = pipeline.PipelineOptions(SPEC, Augmentation(stride_jitter=1))


def as_numpy(dataset):
    return [({k: v.numpy() for k, v in f.items()}, label.numpy()) for f, label in dataset]


def assert_same(first, second):
    assert len(first) == len(second)
    for (f1, l1), (f2, l2) in zip(first, second):
        np.testing.assert_array_equal(l1, l2)
        for key in f1:
            np.testing.assert_array_equal(f1[key], f2[key])


def test_train_batches_have_model_shapes_and_ranges(demo_records):
    dataset = pipeline.make_dataset(demo_records, "train", OPTIONS, batch_size=3, training=True, seed=1)
    batches = as_numpy(dataset)
    assert [len(labels) for _, labels in batches] == [3, 3, 3, 3]
    features, labels = batches[0]
    assert features[tensors.FRAMES].shape == (3, 4, 32, 32, 3)  # uint8 squares of the short side
    assert features[tensors.FRAMES].dtype == np.uint8 and features[tensors.FRAMES].max() > 128
    assert features[tensors.WAVEFORM].shape == (3, SPEC.audio_samples)  # the model computes the log-mel
    assert tensors.MEL not in features
    assert features[tensors.FRAME_MASK].shape == (3, 4) and (features[tensors.FRAME_MASK] == 1).all()
    assert np.abs(features[tensors.WAVEFORM]).max() > 0.01
    assert set(labels.tolist()) <= set(range(12))


def prepared_training_video(root, name, frames, samples):
    """Writes `frames` (10 fps) and `samples` (16 kHz, or None) as ROOT/NAME.mp4, the only (train)
    video of a manifest, prepares it at short side 32 and returns the records folder."""
    demo_videos.write_mp4(str(root / f"{name}.mp4"), frames, 10, samples, 16000)
    (root / "manifest.csv").write_text(f"path,label,split\n{name}.mp4,{name},train\n")
    output = str(root / "records")
    prepare.prepare_dataset(prepare.PrepareOptions(output_dir=output, manifest=str(root / "manifest.csv"),
                                                   short_side=32, workers=1))
    return output


@pytest.fixture(scope="module")
def wide_records(tmp_path_factory):
    """One 2 s, 10 fps, 96×32 video whose columns get brighter from left to right."""
    ramp = np.linspace(0, 255, 96).astype(np.uint8)
    frames = np.broadcast_to(ramp[None, None, :, None], (20, 32, 96, 3)).copy()
    return prepared_training_video(tmp_path_factory.mktemp("wide"), "wide", frames, None)


def test_training_frames_are_exact_squares_at_random_places_along_the_long_side(wide_records):
    records = tf.data.TFRecordDataset(prepared_folder.shard_files(wide_records, "train"))
    stored = [tf.io.decode_jpeg(jpeg).numpy()
              for record in records for jpeg in record_schema.parse_clip(record)[record_schema.IMAGES]]
    assert stored[0].shape == (32, 96, 3)
    place = {frame[:, x : x + 32].tobytes(): x for frame in stored for x in range(96 - 32 + 1)}
    options = pipeline.PipelineOptions(SPEC, Augmentation())
    dataset = pipeline.make_dataset(wide_records, "train", options, batch_size=1, training=True, seed=0)
    places = set()
    for features, _ in dataset.repeat(30):
        clip = features[tensors.FRAMES].numpy()[0]
        assert clip.shape == (4, 32, 32, 3)
        clip_places = {place[frame.tobytes()] for frame in clip}  # KeyError: not an exact square
        assert len(clip_places) == 1  # the whole clip at one place
        places |= clip_places
    assert len(places) > 10 and min(places) < 16 and max(places) > 48 and places <= set(range(65))


def test_training_input_is_reproducible_from_the_seed(demo_records):
    def run(seed):
        dataset = pipeline.make_dataset(demo_records, "train", OPTIONS, batch_size=2, training=True, seed=seed)
        return as_numpy(dataset) + as_numpy(dataset)  # two epochs

    first, second, other = run(7), run(7), run(8)
    assert_same(first, second)
    assert not np.array_equal(first[0][0][tensors.FRAMES], other[0][0][tensors.FRAMES])
    # The second epoch draws new clips and augmentations.
    assert not np.array_equal(first[0][0][tensors.FRAMES], first[2][0][tensors.FRAMES])


def test_views_of_a_clip_follow_each_other_share_its_id_and_draw_their_own_clips(demo_records):
    def epoch(views, batch_size):
        options = pipeline.PipelineOptions(SPEC, Augmentation(stride_jitter=1), views_per_clip=views, clip_ids=True)
        batches = as_numpy(pipeline.training_epochs(demo_records, options, batch_size, seed=3).take(
            12 * views // batch_size))
        return {key: np.concatenate([f[key] for f, _ in batches]) for key in batches[0][0]}

    single, paired = epoch(1, 3), epoch(2, 4)
    ids = paired[tensors.CLIP_ID]
    assert len(ids) == 24 and (ids[0::2] == ids[1::2]).all()  # each clip's two views, one after the other
    assert len(set(ids.tolist())) == 12 and ids.max() < 2 ** 24
    np.testing.assert_array_equal(single[tensors.CLIP_ID], ids[0::2])
    for key in (tensors.FRAMES, tensors.FRAME_MASK, tensors.WAVEFORM):  # view 0: the one-view example
        np.testing.assert_array_equal(single[key], paired[key][0::2])
    differs = [not np.array_equal(paired[tensors.FRAMES][i], paired[tensors.FRAMES][i + 1]) for i in range(0, 24, 2)]
    assert sum(differs) >= 6  # the second view draws its own stride, start and square


def test_training_reads_only_the_clips_it_is_given_labels_for_and_with_those_labels(demo_records):
    records = tf.data.TFRecordDataset(prepared_folder.shard_files(demo_records, "train"))
    identities = [record_schema.parse_identity(serialized) for serialized in records][:3]
    keys = [record_schema.clip_key(i[record_schema.FILENAME].numpy().decode(), str(int(i[record_schema.START_US])))
            for i in identities]
    given = {key: (int(i[record_schema.LABEL_INDEX]) + 5) % 12 for key, i in zip(keys, identities)}  # not theirs
    options = pipeline.PipelineOptions(SPEC, clip_labels=tuple(given.items()), clip_ids=True)
    features, labels = next(iter(pipeline.training_epochs(demo_records, options, batch_size=8, seed=0)))
    ids = tf.strings.to_hash_bucket_fast(tf.constant(keys), 2 ** 24).numpy().tolist()
    assert sorted(zip(features[tensors.CLIP_ID].numpy().tolist(), labels.numpy().tolist())) == sorted(
        zip(ids, given.values()))  # one pass: those three clips, each with the label given


def test_eval_views_carry_their_video_and_are_deterministic(demo_records):
    options = pipeline.PipelineOptions(SPEC, num_clips=2, num_crops=3)

    def run():
        return as_numpy(pipeline.make_dataset(demo_records, "test", options, batch_size=5, training=False))

    first = run()
    assert_same(first, run())
    video_ids = np.concatenate([f[tensors.VIDEO_ID] for f, _ in first])
    labels = np.concatenate([label for _, label in first])
    assert video_ids.tolist() == [v for v in range(12) for _ in range(6)]
    assert all(len(set(labels[video_ids == v])) == 1 for v in range(12))


def test_short_videos_are_padded_with_a_mask(demo_records):
    long_spec = ClipSpec(num_frames=12, stride=2, image_size=24, fps=10.0, sample_rate=16000, mel_bins=16,
                         pad_short_videos=True, frame_size=32)  # 23 frames needed, the videos have 10
    options = pipeline.PipelineOptions(long_spec)
    for training in (False, True):
        features, _ = next(iter(pipeline.make_dataset(demo_records, "test", options, 8, training=training, seed=0)))
        assert features[tensors.FRAME_MASK].numpy().tolist() == [[1.0] * 5 + [0.0] * 7] * 8
        assert not features[tensors.FRAMES].numpy()[:, 5:].any()
        assert features[tensors.FRAMES].numpy()[:, :5].max() > 128


def prepared_flash_and_click(root, name, num_frames, white_frame):
    """A 10 fps video of `num_frames` black frames but a white one at `white_frame`, silent but for a
    5 ms click when that frame is shown; prepared as in `prepared_training_video`."""
    frames = np.zeros((num_frames, 32, 32, 3), np.uint8)
    frames[white_frame] = 255
    samples = np.zeros(num_frames * 1600, np.float32)
    samples[white_frame * 1600:white_frame * 1600 + 80] = 0.9 * np.sign(np.sin(np.arange(80)))
    return prepared_training_video(root, name, frames, samples)


def loudness_over_time(features, spec: ClipSpec) -> np.ndarray:
    """The mean log-mel of the first clip's audio window, per time step."""
    return transforms.log_mel_spectrogram(features[tensors.WAVEFORM][0], spec).numpy().mean(axis=1)


@pytest.fixture(scope="module")
def flash_and_click(tmp_path_factory):
    """A 4 s, 10 fps video, black but for a white frame 23 (2.3 s), silent but for a click at 2.3 s."""
    return prepared_flash_and_click(tmp_path_factory.mktemp("sync"), "flash", 40, 23)


def test_audio_stays_in_sync_with_the_frames_under_random_clips(flash_and_click):
    """With frame-rate jitter (strides 1, 2, 3) the sound keeps its natural speed from the clip's first
    frame: the click sounds `white * stride / fps` seconds into the window, for the stride drawn."""
    spec = ClipSpec(num_frames=8, stride=2, image_size=16, fps=10.0, sample_rate=16000, mel_bins=16, frame_size=32)
    options = pipeline.PipelineOptions(spec, Augmentation(stride_jitter=1))
    dataset = pipeline.make_dataset(flash_and_click, "train", options, batch_size=1, training=True, seed=3)
    strides = []
    # 40 passes over the one video, each a new random clip (a new iterator per pass draws them too, at
    # ten times the cost: each iterator builds the whole input pipeline again).
    for features, _ in dataset.repeat(40):
        brightness = features[tensors.FRAMES].numpy()[0].mean(axis=(1, 2, 3))
        white = int(np.argmax(brightness))
        waveform = np.abs(features[tensors.WAVEFORM].numpy()[0])
        assert waveform.shape == (spec.audio_samples,)
        if brightness.max() < 128 or white == 0 or waveform.max() < 0.3:
            continue  # the clip missed the white frame, or it is its first, or the click is past the window
        click_s = int(np.argmax(waveform)) / spec.sample_rate
        stride = click_s * spec.fps / white
        assert abs(stride - round(stride)) * white / spec.fps <= 0.02 and round(stride) in (1, 2, 3), (white, click_s)
        strides.append(round(stride))
    assert len(strides) >= 5 and len(set(strides)) >= 2, strides


def test_frame_rate_jitter_keeps_the_pitch_of_the_sound(tmp_path):
    """A 1 kHz tone stays at 1 kHz in every clip, whatever stride was drawn (no speed perturbation)."""
    samples = (0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(64000) / 16000)).astype(np.float32)
    frames = np.zeros((40, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(40) * 6)[:, None, None].astype(np.uint8)  # brighter frame by frame
    records = prepared_training_video(tmp_path, "tone", frames, samples)
    spec = ClipSpec(num_frames=8, stride=1, image_size=16, fps=10.0, sample_rate=16000, mel_bins=16, frame_size=32)
    options = pipeline.PipelineOptions(spec, Augmentation(stride_jitter=1))
    dataset = pipeline.make_dataset(records, "train", options, batch_size=1, training=True, seed=0)
    spans = set()
    for features, _ in dataset.repeat(12):
        red = features[tensors.FRAMES].numpy()[0, :, 0, 0, 0].astype(int)
        spans.add(int(red[-1] - red[0]))  # 42 at stride 1, 84 at stride 2
        spectrum = np.abs(np.fft.rfft(features[tensors.WAVEFORM].numpy()[0]))
        assert abs(np.argmax(spectrum) * spec.sample_rate / spec.audio_samples - 1000.0) < 10
    assert len(spans) >= 2  # both strides were drawn


@pytest.fixture(scope="module")
def short_flash_and_click(tmp_path_factory):
    """A 1.2 s, 10 fps video (12 frames), black but for a white frame 2, silent but for a click at 0.2 s."""
    return prepared_flash_and_click(tmp_path_factory.mktemp("short_sync"), "short_flash", 12, 2)


@pytest.mark.parametrize("training", [False, True])
def test_a_looping_short_video_loops_its_sound_with_its_frames(short_flash_and_click, training):
    """8 frames at stride 2 need 1.6 s of a 1.2 s video: the clip shows frames 0, 2, …, 10, 0, 2 — the
    white frame at positions 1 and 7 — and its sound must click at both (it used to fall silent)."""
    spec = ClipSpec(num_frames=8, stride=2, image_size=16, fps=10.0, sample_rate=16000, mel_bins=16, frame_size=32)
    options = pipeline.PipelineOptions(spec, Augmentation())
    dataset = pipeline.make_dataset(short_flash_and_click, "train", options, batch_size=1, training=training, seed=0)
    features, _ = next(iter(dataset))
    brightness = features[tensors.FRAMES].numpy()[0].mean(axis=(1, 2, 3))
    assert np.flatnonzero(brightness > 128).tolist() == [1, 7]
    loudness = loudness_over_time(features, spec)
    clicks = [int(np.argmax(loudness[:spec.mel_frames // 2])),
              spec.mel_frames // 2 + int(np.argmax(loudness[spec.mel_frames // 2:]))]
    # Frame k of the clip starts k / num_frames of the way through the clip's audio window.
    assert all(abs(click - white * spec.mel_frames / spec.num_frames) <= 3 for click, white in zip(clicks, [1, 7]))
    assert loudness[clicks[1]] > loudness.min() + 5  # a click, not the floor of a silent window


def test_corrupted_shard_is_named_or_skipped(demo_records, tmp_path):
    for name in os.listdir(demo_records):
        if not name.startswith("."):
            shutil.copy(os.path.join(demo_records, name), tmp_path / name)
    bad = tmp_path / "test-00001-of-00002.tfrecord"
    data = bytearray(bad.read_bytes())
    data[100:110] = b"x" * 10
    bad.write_bytes(bytes(data))
    dataset = pipeline.make_dataset(str(tmp_path), "test", pipeline.PipelineOptions(SPEC), 4, training=False)
    with pytest.raises(tf.errors.DataLossError) as error:
        as_numpy(dataset)
    named = pipeline.corrupt_shard_error(str(tmp_path), error.value)
    assert isinstance(named, pipeline.CorruptShardError) and str(bad) in str(named)
    tolerant = pipeline.PipelineOptions(SPEC, ignore_errors=True)
    labels = [label for _, label in as_numpy(pipeline.make_dataset(str(tmp_path), "test", tolerant, 4, training=False))]
    assert len(np.concatenate(labels)) == 6  # the intact shard's six clips


def test_missing_split_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        prepared_folder.shard_files(str(tmp_path), "train")
    assert str(tmp_path) in str(error.value) and "prepare" in str(error.value)


@pytest.fixture(scope="module")
def captioned_records(tmp_path_factory):
    from conftest import write_video

    root = tmp_path_factory.mktemp("captions")
    captions = ["a red car drives past", "a dog barks twice", "rain on a tin roof", "a red dog"]
    lines = ["path,label,split,text"]
    for i, caption in enumerate(captions):
        write_video(root / f"{i}.mp4", num_frames=10, audio_seconds=0.4)
        lines.append(f"{i}.mp4,{i % 2},{'train' if i < 3 else 'test'},{caption}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    output = str(root / "records")
    prepare.prepare_dataset(prepare.PrepareOptions(output_dir=output, manifest=str(root / "manifest.csv"),
                                                   short_side=16, workers=1))
    return output, captions


def test_captions_are_tokenized_with_the_vocabulary_of_the_training_captions(captioned_records, tmp_path):
    from videofusion.data import caption_tokenizer

    data_dir, captions = captioned_records
    assert sorted(caption_tokenizer.training_captions(data_dir)) == sorted(captions[:3])
    vocabulary = caption_tokenizer.build_vocabulary(data_dir, size=200)
    caption_tokenizer.save_vocabulary(vocabulary, str(tmp_path))
    assert caption_tokenizer.load_vocabulary(str(tmp_path)) == vocabulary
    tokenizer = caption_tokenizer.make_tokenizer(vocabulary, sequence_length=8)
    options = pipeline.PipelineOptions(SPEC, num_crops=3, tokenizer=tokenizer)
    train = as_numpy(pipeline.make_dataset(data_dir, "train", options, 8, training=True, seed=0))
    expected = {tuple(tokenizer(tf.constant(c))) for c in captions[:3]}
    assert {tuple(row) for row in train[0][0][tensors.TOKENS]} == expected
    (features, _), = as_numpy(pipeline.make_dataset(data_dir, "test", options, 8, training=False))
    assert features[tensors.TOKENS].shape == (3, 8)  # one row per view
    assert (features[tensors.TOKENS] == tokenizer(tf.constant(captions[3]))).all()
    assert 1 not in features[tensors.TOKENS][0]  # "a red dog": every word was in a training caption


def test_silenced_audio_marks_every_view_absent(demo_records):
    options = pipeline.PipelineOptions(SPEC, num_crops=3, silence_audio=True)
    (features, _), *_ = as_numpy(pipeline.make_dataset(demo_records, "test", options, 24, training=False))
    assert (features[tensors.AUDIO_PRESENT] == 0).all()
    assert (features[tensors.WAVEFORM] == 0).all()
    normal = as_numpy(pipeline.make_dataset(demo_records, "test", pipeline.PipelineOptions(SPEC, num_crops=3), 24,
                                            training=False))[0][0]
    assert (normal[tensors.AUDIO_PRESENT] == 1).all()
    np.testing.assert_array_equal(normal[tensors.FRAMES], features[tensors.FRAMES])
