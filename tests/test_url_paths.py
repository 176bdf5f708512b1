"""Paths that are URLs (`gs://…` in production), with TensorFlow's in-process `ram://` file system standing
in for a bucket: `prepare` (the local runner in this process with `--workers 1`, and the Beam DirectRunner
in memory) reads a manifest, videos, class folders and dataset recipes from it and writes there the shards
and reports it writes on a disk; the prepared-data readers and media decoding take URLs too."""

import csv
import itertools
import json
import os

import media_factory
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_video

from videofusion import fileio
from videofusion.contract import prepared_folder
from videofusion.ingest import manifest, media, prepare, recipes

RAM = "ram://test_url_paths"
_FIXTURE_BUILDS = itertools.count()
_SPLITS = ["train", "train", "val", "test"]


def upload(local, url):
    """Copies the file or folder tree `local` to `url`, byte for byte."""
    if os.path.isdir(local):
        for name in os.listdir(local):
            upload(os.path.join(local, name), f"{url}/{name}")
        return
    tf.io.gfile.makedirs(os.path.dirname(url))
    tf.io.gfile.copy(local, url, overwrite=True)


def files_under(folder):
    """Every file below `folder` (a path or a URL), relative to it."""
    return sorted(fileio.relative(os.path.join(directory, name), folder)
                  for directory, _, files in tf.io.gfile.walk(folder) for name in files)


def records_by_split(folder):
    """The serialized records of each split, sorted, read by tf.data from `prepared_folder.shard_files`."""
    return {split: sorted(r.numpy() for r in tf.data.TFRecordDataset(prepared_folder.shard_files(folder, split)))
            for split in prepared_folder.SPLITS}


def reports(folder):
    """(labels.txt, errors as (path, reason up to its first colon), dataset.json without the paths)."""
    labels = tf.io.gfile.GFile(f"{folder}/{prepared_folder.LABELS_FILE}").read()
    errors = [json.loads(line) for line in tf.io.gfile.GFile(f"{folder}/{prepared_folder.ERRORS_FILE}")]
    info = json.loads(tf.io.gfile.GFile(f"{folder}/{prepared_folder.DATASET_FILE}").read())
    for path_option in ("manifest", "output_dir"):
        del info[prepared_folder.PARAMETERS][path_option]
    return labels, [(e["path"], e["reason"].split(":")[0]) for e in errors], info


@pytest.fixture(scope="module")
def ram_root():
    """A `ram://` folder of its own for each build of this module's fixtures: `ram://` lives as long as the
    process, and pytest builds module fixtures again when another module's tests ran in between."""
    return f"{RAM}/build{next(_FIXTURE_BUILDS)}"


@pytest.fixture(scope="module")
def manifests(tmp_path_factory, ram_root):
    """(manifest on disk, the same folder copied to `ram_root`/inputs): 3 tiny videos next to the manifest,
    a corrupt and a missing one, and one named by its URL in both (`ram_root`/elsewhere/v3.mp4)."""
    elsewhere = f"{ram_root}/elsewhere/v3.mp4"
    folder = tmp_path_factory.mktemp("url_inputs")
    rows = [["path", "label", "split"]]
    for i, split in enumerate(_SPLITS):
        write_video(folder / f"v{i}.mp4", num_frames=10, fps=10, height=32, width=32, audio_seconds=1.0)
        rows.append([f"v{i}.mp4" if i < 3 else elsewhere, "ab"[i % 2], split])
    upload(str(folder / "v3.mp4"), elsewhere)
    os.remove(folder / "v3.mp4")
    (folder / "corrupt.mp4").write_text("this is a text file, not a video")
    rows += [["corrupt.mp4", "a", "train"], ["gone.mp4", "b", "val"]]
    with open(folder / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    upload(str(folder), f"{ram_root}/inputs")
    return str(folder / "manifest.csv"), f"{ram_root}/inputs/manifest.csv"


def _options(manifest_path, output):
    return prepare.PrepareOptions(manifest=manifest_path, output_dir=str(output), short_side=32, num_shards=2,
                                  max_clip_seconds=0.5, workers=1)


@pytest.fixture(scope="module")
def prepared(manifests, tmp_path_factory, ram_root):
    """(output on disk, output on RAM) of the local runner, from the manifest on disk and on RAM."""
    disk, url = str(tmp_path_factory.mktemp("url_out") / "records"), f"{ram_root}/records"
    prepare.prepare_dataset(_options(manifests[0], disk))
    prepare.prepare_dataset(_options(manifests[1], url))
    return disk, url


def test_the_local_runner_reads_and_writes_urls_as_it_does_a_disk(prepared):
    disk, url = prepared
    assert files_under(url) == files_under(disk)  # the same shards, state and reports; no temporary file
    assert [len(r) for r in records_by_split(url).values()] == [4, 2, 2]
    assert records_by_split(url) == records_by_split(disk)
    assert reports(url) == reports(disk)
    assert reports(url)[1] == [("corrupt.mp4", "cannot decode"), ("gone.mp4", "file not found")]


def test_a_second_run_on_urls_resumes_and_rewrites_nothing(manifests, prepared, caplog):
    _, url = prepared
    shards = {name: tf.io.gfile.GFile(f"{url}/{name}", "rb").read() for name in files_under(url)
              if name.endswith(".tfrecord")}
    # absl's logger, not only the root: saving a SavedModel earlier in this process (test_wordpiece) sets
    # absl's own level to WARNING, which would drop the INFO line before it reaches the root's handlers.
    caplog.set_level("INFO", logger="absl")
    prepare.prepare_dataset(_options(manifests[1], url))
    assert "Resuming: 5 of 5 shards are already complete" in caplog.text
    assert shards == {name: tf.io.gfile.GFile(f"{url}/{name}", "rb").read() for name in shards}


def test_prepared_data_reads_a_url_folder(prepared, tmp_path):
    """What `train` reads with `data.dir=gs://…` (besides the shards, which tf.data reads above)."""
    from videofusion import run_folder

    _, url = prepared
    run_folder.save_labels(url, str(tmp_path / "run"))
    assert run_folder.load_labels(str(tmp_path / "run")) == ["a", "b"]
    assert prepared_folder.shard_files(url, "train") == [f"{url}/train-0000{i}-of-00002.tfrecord" for i in (0, 1)]
    info = prepared_folder.read_dataset_info(url)
    assert info[prepared_folder.LABELS] == ["a", "b"]
    assert info[prepared_folder.COUNTS] == {"train": 4, "val": 2, "test": 2}
    with pytest.raises(FileNotFoundError, match=f"no train shards .* in {RAM}/nothing: run"):
        prepared_folder.shard_files(f"{RAM}/nothing", "train")
    with pytest.raises(FileNotFoundError, match=f"{RAM}/nothing/dataset.json not found"):
        prepared_folder.read_dataset_info(f"{RAM}/nothing")


def test_beam_in_memory_reads_and_writes_urls_as_the_local_runner_does_a_disk(manifests, prepared, ram_root):
    """The DirectRunner in this process (in_memory), where `ram://` is visible to its workers."""
    pytest.importorskip("apache_beam", reason="the Beam runner needs the beam extra: make install-beam")
    from videofusion.ingest import beam_runner

    disk, _ = prepared
    url = f"{ram_root}/beam_records"
    beam_runner.prepare_dataset_beam(_options(manifests[1], url),
                                     ["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    assert files_under(url) == files_under(disk)  # the plan file removed, no temporary file left
    assert records_by_split(url) == records_by_split(disk)
    assert reports(url) == reports(disk)


@pytest.mark.parametrize("case", ["mp4_h264_aac", "avi_mjpeg_pcm"])
def test_media_decodes_a_url_as_the_same_file_on_disk(tmp_path, case):
    """Read through a Python file object, which FFmpeg seeks (the span's start) and sizes (to its end)."""
    path = media_factory.write_format(tmp_path, case)
    url = f"{RAM}/media/{os.path.basename(path)}"
    upload(path, url)
    span = dict(fps=10, short_side=16, sample_rate=16000, start_s=0.5, end_s=1.5)
    (on_disk,), (from_url,) = media.iter_segments(path, **span), media.iter_segments(url, **span)
    assert len(from_url.frames) == len(on_disk.frames) == 10
    np.testing.assert_array_equal(np.stack(from_url.frames), np.stack(on_disk.frames))
    np.testing.assert_array_equal(from_url.waveform, on_disk.waveform)


@pytest.mark.parametrize("write, reason", [
    (lambda path: media_factory.write_truncated(media_factory.write_format(path.parent, "mkv_hevc_aac"), path),
     "truncated"),
    (lambda path: path.write_bytes(b""), "empty"),
    (lambda path: None, "file not found"),
], ids=["truncated", "empty", "missing"])
def test_bad_files_at_urls_raise_the_media_error_of_a_local_file(tmp_path, write, reason):
    path = tmp_path / "bad.mkv"
    write(path)
    url = f"{RAM}/bad/{reason}.mkv"
    if path.exists():
        upload(str(path), url)
    with pytest.raises(media.MediaError, match=reason) as error:
        media.read_media(url, fps=10, short_side=16)
    assert error.value.path == url


def test_class_folders_and_recipes_list_urls_as_folders_on_disk(tmp_path):
    files = ["classes/cat/a.mp4", "classes/dog/more/b.webm", "classes/dog/notes.txt", "classes/.hidden/c.mp4",
             "kinetics/train/-3B32lodo2M_000059_000069.mp4", "kinetics/val/abseiling/0wR5jVB-WPk_000417_000427.mp4",
             "hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
             "hmdb51/climb_stairs/Cliffhanger_1_climb_stairs_f_nm_np1_ba_bad_0.avi"]
    texts = {
        "kinetics/kinetics400.csv": "label,youtube_id,time_start,time_end,split\n"  # in the root: folder "."
                                    "abseiling,-3B32lodo2M,59,69,train\nabseiling,0wR5jVB-WPk,417,427,val\n"
                                    "abseiling,gone0000000,0,10,train\n",
        "hmdb51/testTrainMulti_7030_splits/brush_hair_test_split1.txt":
            "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1\r\nmissing_0.avi 2\r\n",
        "hmdb51/testTrainMulti_7030_splits/climb_stairs_test_split1.txt":
            "Cliffhanger_1_climb_stairs_f_nm_np1_ba_bad_0.avi 2\n",
    }
    for name in files:
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_bytes(b"not decoded here")
    for name, text in texts.items():
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_bytes(text.encode())
    upload(str(tmp_path), f"{RAM}/trees")

    def rows(read, root):
        entries, problems = read(root)
        assert all(e.resolved.startswith(root + "/") for e in entries)
        return ([(e.path, fileio.relative(e.resolved, root), e.label, e.split, e.start, e.end) for e in entries],
                [(p.path, p.reason) for p in problems])

    for read, folder in [(manifest.read_class_folders, "classes"),
                         (lambda root: recipes.read("kinetics", root), "kinetics"),
                         (lambda root: recipes.read("hmdb51", root), "hmdb51")]:
        from_url = rows(read, f"{RAM}/trees/{folder}")
        assert from_url == rows(read, str(tmp_path / folder))
        assert len(from_url[0]) == 2 and len(from_url[1]) == 1, from_url


def test_fileio_text_binary_and_errors_on_urls():
    path = f"{RAM}/fileio/notes.csv"
    with fileio.atomic_open(path, "w", encoding="utf-8-sig", newline="") as f:
        f.write("path,label\r\nvidéo.mp4,chat\r\n")
    assert fileio.listdir(f"{RAM}/fileio") == ["notes.csv"]  # the temporary file is renamed
    written = "\ufeffpath,label\r\nvidéo.mp4,chat\r\n".encode()
    assert tf.io.gfile.GFile(path, "rb").read() == written
    with fileio.open_file(path, encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f)) == [["path", "label"], ["vidéo.mp4", "chat"]]
    with fileio.open_file(path, encoding="utf-8-sig") as f:
        assert f.read() == "path,label\nvidéo.mp4,chat\n"
    assert fileio.stat(path)[0] == len(written) and fileio.isfile(path) and not fileio.isfile(f"{RAM}/fileio")
    with pytest.raises(FileNotFoundError):
        fileio.open_file(f"{RAM}/fileio/missing.csv").read()
    assert fileio.stat_all([path, f"{RAM}/fileio/missing.csv"])[1] is None
