"""Dataset recipes on miniature copies of each dataset as published: the same folders, the annotation files
in their exact format (with each one's quirks) and a few tiny real videos; the rows, the problems, and the
records `prepare` writes from them."""

import json
import os
import shutil
import subprocess
import sys

import media_factory
import pytest
import tensorflow as tf

from videofusion.contract import prepared_folder, record_schema
from videofusion.ingest import manifest, prepare, recipes
from videofusion.ingest.recipes import ave, common, hmdb51, kinetics, ucf101, vggsound

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(width=32, height=32, fps=10, num_frames=10)  # 1 s


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """One tiny real video per container the datasets use, copied wherever a dataset has a video."""
    folder = tmp_path_factory.mktemp("samples")
    return {
        ".avi": media_factory.write_media(folder / "s.avi", video_codec="mjpeg", pix_fmt="yuvj420p",
                                          audio_codec="pcm_s16le", **TINY),
        ".mp4": media_factory.write_media(folder / "s.mp4", **TINY),
    }


def make_tree(root, samples, videos, texts):
    """Writes `videos` (paths under `root`, copies of the sample of their extension) and `texts`
    ({path: bytes}, written byte for byte); returns `root` as a string."""
    for path in videos:
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        shutil.copyfile(samples[os.path.splitext(path)[1]], os.path.join(root, path))
    for path, data in texts.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)
    return str(root)


def rows(entries):
    """(path, label, split, start, end) of each entry; recipes never have captions."""
    assert all(e.text is None and e.resolved.endswith(e.path) for e in entries)
    return sorted((e.path, e.label, e.split, e.start, e.end) for e in entries)


def reasons(problems):
    return {p.path: p.reason for p in problems}


def crlf(*lines):
    return "".join(line + "\r\n" for line in lines).encode()


def lf(*lines):
    return "".join(line + "\n" for line in lines).encode()


# ---------------------------------------------------------------------------------------------- common

def test_annotation_files_are_read_as_published(tmp_path):
    root = make_tree(tmp_path, {}, [], {  # the index looks at names only: the videos are empty files
        "clips/b/x.mp4": b"", "clips/a/x.MP4": b"", "more/y.avi": b"", "more/x.mkv": b"",
        "list.txt": b"\xef\xbb\xbfa.avi 1\r\n\r\n  b.avi 2  \r\n",  # a BOM, CRLF, a blank line, padding
        "table.csv": lf("label,id", '"heart sounds, heartbeat",x', "", "dog,y"),
        "clips/.hidden/z.mp4": b"", "clips/notes.txt": b"",
    })
    assert list(common.text_lines(os.path.join(root, "list.txt"))) == [(1, "a.avi 1"), (3, "b.avi 2")]
    assert list(common.csv_rows(os.path.join(root, "table.csv"))) == [
        (1, ["label", "id"]), (2, ["heart sounds, heartbeat", "x"]), (4, ["dog", "y"])]
    # Keyed by file stem: the first folder walked, in sorted order, wins; hidden and non-video files are left out.
    assert common.index_videos(root, "clips", "more", "absent", key=common.stem) == {
        "x": "clips/a/x.MP4", "y": "more/y.avi"}
    with pytest.raises(common.RecipeError, match="missing.txt not found; is --root the folder"):
        common.annotation_path(root, "missing.txt")
    with pytest.raises(ValueError, match="time '-1' must be a non-negative number of seconds"):
        common.span("-1", "3")


# ---------------------------------------------------------------------------------------------- UCF101

UCF_VIDEOS = [
    "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
    "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
    # As in UCF101.rar: the folder says HandstandPushups, the file names HandStandPushups...
    "UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi",
    # ...and as in re-packed copies of the videos (the lists still say v_HandStandPushups).
    "UCF-101/HandstandPushups/v_HandstandPushups_g08_c01.avi",
]


@pytest.fixture(scope="module")
def ucf101_root(tmp_path_factory, samples):
    return make_tree(tmp_path_factory.mktemp("ucf101"), samples, UCF_VIDEOS, {
        # classInd.txt has all 101 classes; these are three of its lines, with their real indices.
        "ucfTrainTestlist/classInd.txt": crlf("1 ApplyEyeMakeup", "2 ApplyLipstick", "37 HandstandPushups"),
        "ucfTrainTestlist/trainlist01.txt": crlf(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
            "HandstandPushups/v_HandStandPushups_g08_c01.avi 37",
            "ApplyLipstick/v_ApplyLipstick_g08_c01.avi 2",  # not on disk
            "YoYo/v_YoYo_g08_c01.avi 101",  # a class this classInd.txt lacks
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 37",  # the index of another class
        ),
        "ucfTrainTestlist/testlist01.txt": crlf(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "HandstandPushups/v_HandStandPushups_g01_c01.avi"),
        "ucfTrainTestlist/trainlist02.txt": crlf(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1", "HandstandPushups/v_HandStandPushups_g01_c01.avi 37"),
        "ucfTrainTestlist/testlist02.txt": crlf(
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g08_c01.avi"),
    })


def test_ucf101_rows_take_classind_spelling_and_the_disk_spelling(ucf101_root):
    entries, problems = ucf101.read(ucf101_root)
    assert rows(entries) == [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup", "test", None, None),
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "ApplyEyeMakeup", "train", None, None),
        ("UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi", "HandstandPushups", "test", None, None),
        ("UCF-101/HandstandPushups/v_HandstandPushups_g08_c01.avi", "HandstandPushups", "train", None, None),
    ]
    assert all(os.path.isfile(e.resolved) for e in entries)
    assert reasons(problems) == {
        "UCF-101/ApplyLipstick/v_ApplyLipstick_g08_c01.avi":
            "ucfTrainTestlist/trainlist01.txt line 3: not found under UCF-101/ (case ignored)",
        "YoYo/v_YoYo_g08_c01.avi": "ucfTrainTestlist/trainlist01.txt line 4: class 'YoYo' is not in classInd.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi":
            "ucfTrainTestlist/trainlist01.txt line 5: index 37 is 'HandstandPushups' in classInd.txt, "
            "not 'ApplyEyeMakeup'",
    }
    split2, problems2 = ucf101.read(ucf101_root, split=2)
    assert {(e.path, e.split) for e in split2} == {(p, "test" if s == "train" else "train") for p, _, s, _, _ in
                                                   rows(entries)}
    assert problems2 == []


def test_recipe_errors_name_what_is_wrong(ucf101_root, tmp_path):
    with pytest.raises(recipes.RecipeError, match="unknown recipe 'ucf'.*ucf101, hmdb51"):
        recipes.read("ucf", ucf101_root)
    with pytest.raises(recipes.RecipeError, match="needs --root"):
        recipes.read("ucf101", None)
    with pytest.raises(recipes.RecipeError, match="official splits 1, 2, 3, not 4"):
        recipes.read("ucf101", ucf101_root, split=4)
    with pytest.raises(recipes.RecipeError, match="one official split: drop --split"):
        recipes.read("kinetics", ucf101_root, split=1)
    with pytest.raises(recipes.RecipeError, match="ucfTrainTestlist/trainlist03.txt not found; is --root"):
        recipes.read("ucf101", ucf101_root, split=3)
    (tmp_path / "ucfTrainTestlist").mkdir()
    (tmp_path / "ucfTrainTestlist" / "classInd.txt").write_bytes(crlf("1 ApplyEyeMakeup", "ApplyLipstick"))
    with pytest.raises(recipes.RecipeError, match=r"classInd.txt line 2: expected '<index> <Class>'"):
        recipes.read("ucf101", str(tmp_path))
    with pytest.raises(manifest.ManifestError, match="exactly one of"):
        prepare.read_inputs(prepare.PrepareOptions(output_dir="x", manifest="m.csv", recipe="ucf101"))


def test_ucf101_prepared_end_to_end(ucf101_root, tmp_path):
    output = str(tmp_path / "records")
    summary = prepare.prepare_dataset(prepare.PrepareOptions(
        output_dir=output, recipe="ucf101", recipe_root=ucf101_root, short_side=16, fps=5, workers=1, num_shards=1))
    assert summary[prepared_folder.COUNTS] == {"train": 2, "val": 0, "test": 2}
    info = prepared_folder.read_dataset_info(output)
    assert info[prepared_folder.LABELS] == ["ApplyEyeMakeup", "HandstandPushups"]
    assert info[prepared_folder.PARAMETERS]["recipe"] == "ucf101"
    errors = [json.loads(line) for line in open(os.path.join(output, prepared_folder.ERRORS_FILE))]
    assert [e["reason"].split(":")[0] for e in errors] == [
        f"ucfTrainTestlist/trainlist01.txt line {n}" for n in (3, 4, 5)]
    assert info[prepared_folder.NUM_ERRORS] == 3
    test = [record_schema.parse_clip(r) for r in tf.data.TFRecordDataset(prepared_folder.shard_files(output, "test"))]
    found = {(c[record_schema.FILENAME].numpy().decode(), c[record_schema.LABEL_TEXT].numpy().decode()) for c in test}
    assert found == {("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ApplyEyeMakeup"),
                     ("UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi", "HandstandPushups")}
    assert {int(c[record_schema.LABEL_INDEX]) for c in test} == {0, 1}
    assert all(c[record_schema.IMAGES].shape[0] == 5 and int(c[record_schema.HAS_AUDIO]) == 1 for c in test)


# ---------------------------------------------------------------------------------------------- HMDB51

def test_hmdb51_codes_one_train_two_test_zero_left_out(tmp_path, samples):
    videos = ["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
              "brush_hair/Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi",
              "brush_hair/brushing_hair_2_brush_hair_h_nm_np2_le_goo_0.avi",
              "climb_stairs/Cliffhanger_1_climb_stairs_f_nm_np1_ba_bad_0.avi"]
    names = [os.path.basename(v) for v in videos]
    root = make_tree(tmp_path, samples, videos, {
        "testTrainMulti_7030_splits/brush_hair_test_split1.txt": lf(
            f"{names[0]} 1", f"{names[1]} 2", f"{names[2]} 0 ", "missing_brush_hair_0.avi 1", f"{names[0]} 3"),
        "testTrainMulti_7030_splits/climb_stairs_test_split1.txt": lf(f"{names[3]} 2"),
        "testTrainMulti_7030_splits/brush_hair_test_split2.txt": lf(
            f"{names[0]} 0", f"{names[1]} 1", f"{names[2]} 2"),
        "testTrainMulti_7030_splits/climb_stairs_test_split2.txt": lf(f"{names[3]} 1"),
    })
    entries, problems = hmdb51.read(root)
    assert rows(entries) == [(videos[0], "brush_hair", "train", None, None),
                             (videos[1], "brush_hair", "test", None, None),
                             (videos[3], "climb_stairs", "test", None, None)]
    assert reasons(problems) == {
        "brush_hair/missing_brush_hair_0.avi":
            "testTrainMulti_7030_splits/brush_hair_test_split1.txt line 4: not found under brush_hair/",
        "testTrainMulti_7030_splits/brush_hair_test_split1.txt line 5":
            "testTrainMulti_7030_splits/brush_hair_test_split1.txt line 5: expected '<video>.avi <code>' with code 0, "
            f"1 or 2, got '{names[0]} 3'",
    }
    entries, problems = hmdb51.read(root, split=2)
    assert rows(entries) == [(videos[1], "brush_hair", "train", None, None),
                             (videos[2], "brush_hair", "test", None, None),
                             (videos[3], "climb_stairs", "train", None, None)]
    assert problems == []


# -------------------------------------------------------------------------------------------- Kinetics

KINETICS_VIDEOS = [
    "train/-3B32lodo2M_000059_000069.mp4",  # CVDF: clips directly in the split folder
    "train/zzzzzzzzzzz.mp4",  # an untrimmed source video: the row takes its span from the CSV
    "val/abseiling/0wR5jVB-WPk_000417_000427.mp4",  # arranged in per-class folders
    "val/_dbcJuKJQNs_000040_000050.mp4",
]


@pytest.fixture(scope="module")
def kinetics_root(tmp_path_factory, samples):
    return make_tree(tmp_path_factory.mktemp("kinetics"), samples, KINETICS_VIDEOS, {
        "annotations/train.csv": lf(  # Kinetics-400 header, with is_cc
            "label,youtube_id,time_start,time_end,split,is_cc",
            "abseiling,-3B32lodo2M,59,69,train,0",
            '"air drumming",zzzzzzzzzzz,12,22,train,0',
            '"air drumming",gone0000000,0,10,train,0',  # taken down: never downloaded
            "abseiling,gone0000001,30,40,train,1",
            "abseiling,badspan0000,10,10,train,0",
        ),
        "annotations/validate.csv": lf(  # Kinetics-600/700 header: no is_cc; split "validate"
            "label,youtube_id,time_start,time_end,split",
            "abseiling,0wR5jVB-WPk,417,427,validate",
            '"air drumming",_dbcJuKJQNs,40,50,validate',
        ),
        "annotations/test.csv": lf(  # the test labels of Kinetics-600/700 are not published
            "youtube_id,time_start,time_end,split", "aaaaaaaaaaa,0,10,test", "bbbbbbbbbbb,5,15,test"),
    })


def test_kinetics_rows_missing_clips_listed_unlabeled_test_left_out(kinetics_root, caplog):
    entries, problems = kinetics.read(kinetics_root)
    assert "annotations/test.csv: 2 rows have no label" in caplog.text
    assert rows(entries) == [
        ("train/-3B32lodo2M_000059_000069.mp4", "abseiling", "train", None, None),
        ("train/zzzzzzzzzzz.mp4", "air drumming", "train", 12.0, 22.0),
        ("val/_dbcJuKJQNs_000040_000050.mp4", "air drumming", "val", None, None),
        ("val/abseiling/0wR5jVB-WPk_000417_000427.mp4", "abseiling", "val", None, None),
    ]
    missing = "clip not found under train/ or videos_train/ (taken down from YouTube, or not downloaded)"
    assert reasons(problems) == {
        "train/gone0000000_000000_000010.mp4": f"annotations/train.csv line 4: {missing}",
        "train/gone0000001_000030_000040.mp4": f"annotations/train.csv line 5: {missing}",
        "annotations/train.csv line 6": "annotations/train.csv line 6: the span 10.0-10.0 s is empty",
    }


def test_kinetics_prepared_through_the_command_line(kinetics_root, tmp_path):
    output = tmp_path / "records"
    result = subprocess.run(
        [sys.executable, "-m", "videofusion.cli", "prepare", "--recipe", "kinetics", "--root", kinetics_root,
         "--output", str(output), "--short-side", "16", "--fps", "5", "--workers", "1", "--num-shards", "1"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-2000:]
    info = prepared_folder.read_dataset_info(str(output))
    assert info[prepared_folder.LABELS] == ["abseiling", "air drumming"]
    assert info[prepared_folder.VIDEOS] == {"train": 2, "val": 2, "test": 0}
    assert info[prepared_folder.NUM_ERRORS] == 3
    errors = [json.loads(line)["path"] for line in open(output / prepared_folder.ERRORS_FILE)]
    assert errors == ["train/gone0000000_000000_000010.mp4", "train/gone0000001_000030_000040.mp4",
                      "annotations/train.csv line 6"]
    val_files = prepared_folder.shard_files(str(output), "val")
    val = [record_schema.parse_clip(r) for r in tf.data.TFRecordDataset(val_files)]
    assert sorted(c[record_schema.LABEL_TEXT].numpy().decode() for c in val) == ["abseiling", "air drumming"]


# -------------------------------------------------------------------------------------------- VGGSound

def test_vggsound_csv_without_header_and_quoted_labels(tmp_path, samples):
    root = make_tree(tmp_path, samples, ["video/glLQrEijrKg_000300.mp4", "video/0_8-g2rof7E_000049.mp4",
                                         "video/untrimmed__0.mp4"], {
        "vggsound.csv": lf(
            "glLQrEijrKg,300,playing hammond organ,test",
            '0_8-g2rof7E,49,"heart sounds, heartbeat",test',
            "untrimmed__0,30,playing hammond organ,train",
            "gone0000000,0,dog barking,train",
            "xxxxxxxxxxx,12,dog barking,validation",
        ),
    })
    entries, problems = vggsound.read(root)
    assert rows(entries) == [
        ("video/0_8-g2rof7E_000049.mp4", "heart sounds, heartbeat", "test", None, None),
        ("video/glLQrEijrKg_000300.mp4", "playing hammond organ", "test", None, None),
        ("video/untrimmed__0.mp4", "playing hammond organ", "train", 30.0, 40.0),
    ]
    assert reasons(problems) == {
        "gone0000000_000000.mp4":
            "vggsound.csv line 4: clip not found below the dataset folder (taken down, or not downloaded)",
        "vggsound.csv line 5": "vggsound.csv line 5: split 'validation' is not one of train, test",
    }


# ------------------------------------------------------------------------------------------------- AVE

def test_ave_event_span_becomes_the_clip(tmp_path, samples):
    lines = ["Church bell&RUhOCu3LNXM&good&0&10", "Church bell&MH3m4AwEcRY&good&6&8",
             "Male speech, man speaking&0giAfYq9oVM&good&3&9", "Church bell&VWi2ENBuTbw&good&0&0",
             "Bark&3jS8tWfLJxI&good&7&9"]
    header = "Category&VideoID&Quality&StartTime&EndTime"
    root = make_tree(tmp_path, samples, [f"AVE/{line.split('&')[1]}.mp4" for line in lines[:4]], {
        "Annotations.txt": lf(header, *lines),
        "trainSet.txt": lf(header, lines[0], lines[3], lines[4]),
        "valSet.txt": lf(lines[1]),
        "testSet.txt": lf(lines[2]),
    })
    entries, problems = ave.read(root)
    assert rows(entries) == [
        ("AVE/0giAfYq9oVM.mp4", "Male speech, man speaking", "test", 3.0, 9.0),
        ("AVE/MH3m4AwEcRY.mp4", "Church bell", "val", 6.0, 8.0),
        ("AVE/RUhOCu3LNXM.mp4", "Church bell", "train", 0.0, 10.0),
    ]
    assert reasons(problems) == {
        "trainSet.txt line 3": "trainSet.txt line 3: the span 0.0-0.0 s is empty",
        "AVE/3jS8tWfLJxI.mp4": "trainSet.txt line 4: not found under AVE/",
    }


# ---------------------------------------------------------------------------------------- command line

def test_recipe_list_needs_no_output_but_preparing_does(ucf101_root):
    def videofusion(*args):
        return subprocess.run([sys.executable, "-m", "videofusion.cli", "prepare", *args], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONPATH=REPO))

    listed = videofusion("--recipe", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert [line.split()[0] for line in listed.stdout.splitlines()] == recipes.names()
    no_output = videofusion("--recipe", "ucf101", "--root", ucf101_root)
    assert no_output.returncode == 1 and "prepare needs --output DIR" in no_output.stderr
    bad_root = videofusion("--recipe", "ucf101", "--root", os.path.join(ucf101_root, "nowhere"), "--output", "x")
    assert bad_root.returncode == 2 and "is not a folder" in bad_root.stderr
