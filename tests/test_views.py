"""What a film shows (its view, as a reader names it) and the region it is routed by: views.csv joined to
the records, a view overriding the dataset's part, MURA's seven study types."""
import csv
import shutil

import pytest

from fracture_detection.io import data
from fracture_detection.io.data import DatasetError, read_dataset

from conftest import FOLDERS, MURA
from test_data import _fracatlas, _roboflow


def _write_views(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "key", "dataset_part", "view", "confidence", "note"])
        w.writeheader()
        for source, key, view in rows:
            w.writerow({"source": source, "key": key, "dataset_part": "", "view": view, "confidence": "high",
                        "note": ""})


def _flagged(root, part):
    """FracAtlas file names flagged with ``part`` alone, in the order of dataset.csv."""
    with open(root / "dataset.csv", newline="") as fh:
        return [r["image_id"] for r in csv.DictReader(fh) if r[part] == "1"]


def test_views_join_by_file_name_and_by_roboflow_upload_and_override_the_part(tmp_path):
    atlas, robo = _fracatlas(tmp_path), _roboflow(tmp_path)
    hand, shoulder = _flagged(atlas, "hand"), _flagged(atlas, "shoulder")
    upload = sorted(p.name for p in (robo / "val/images").iterdir())[0]
    key = f"val/{upload.split('.rf.')[0]}"
    _write_views(tmp_path / "views.csv", [("fracatlas", hand[0], "forearm"), ("fracatlas", shoulder[0], "chest"),
                                          ("fracatlas", shoulder[1], "shoulder_chest"),
                                          ("roboflow-bone-fracture", key, "wrist")])
    recs = {r.path.rsplit("/", 1)[-1]: r for r in read_dataset(tmp_path)}
    forearm, chest, wide = recs[hand[0]], recs[shoulder[0]], recs[shoulder[1]]
    assert (forearm.part, forearm.view, forearm.region) == ("hand", "forearm", "hand")
    assert (chest.part, chest.view, chest.region) == ("shoulder", "chest", "other")  # a trunk is not a shoulder
    assert (wide.view, wide.region) == ("shoulder_chest", "shoulder")
    # the view of an upload holds for every augmented copy of it: an elbow-class upload showing a wrist
    copies = [r for name, r in recs.items() if name.startswith(upload.split(".rf.")[0] + ".rf.")]
    assert len(copies) == 2 and all((r.part, r.view, r.region) == ("elbow", "wrist", "hand") for r in copies)
    # films views.csv does not name keep their part as region, and as view where it is a reader's word
    unnamed = recs[hand[1]]
    assert (unnamed.view, unnamed.region) == ("hand", "hand")
    leg = next(r for r in recs.values() if r.part == "leg")
    assert (leg.view, leg.region) == ("", "leg")


def test_without_views_csv_nothing_changes_but_the_view_word(tmp_path):
    recs = read_dataset(_fracatlas(tmp_path))
    assert all(r.region == r.part for r in recs)
    assert {r.view for r in recs} == {"hand", "shoulder", ""}  # (FracAtlas flags no elbow: those are "mixed")


def test_a_plain_views_csv_names_films_by_path(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FOLDERS, root)
    film = sorted((root / "Hand").rglob("*.jpg"))[0]
    (root / "views.csv").write_text(f"path,view\n{film.relative_to(root).as_posix()},finger\n")
    recs = read_dataset(root)
    named = [r for r in recs if r.view == "finger"]
    assert len(named) == 1 and named[0].path == str(film) and named[0].region == "hand"


def test_an_unknown_view_is_one_clear_sentence(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FOLDERS, root)
    (root / "views.csv").write_text("path,view\nHand/normal/hand0_0.jpg,knee\n")
    with pytest.raises(DatasetError, match=r"unknown view 'knee' \(expected one of finger, .*other\)\.$"):
        read_dataset(root)


@pytest.mark.parametrize("study_type,view,region", [
    ("XR_FINGER", "finger", "hand"), ("XR_HAND", "hand", "hand"), ("XR_WRIST", "wrist", "hand"),
    ("XR_FOREARM", "forearm", "hand"), ("XR_ELBOW", "elbow", "elbow"), ("XR_SHOULDER", "shoulder", "shoulder"),
    ("XR_HUMERUS", "humerus", "other")])
def test_mura_study_types_route_to_their_region(tmp_path, study_type, view, region):
    image = next(MURA.rglob("*.png"))
    study = tmp_path / "MURA-v1.1" / "train" / study_type / "patient00001" / "study1_positive"
    study.mkdir(parents=True)
    shutil.copy(image, study / "image1.png")
    (rec,) = read_dataset(tmp_path / "MURA-v1.1")
    assert (rec.part, rec.view, rec.region) == (study_type[3:].lower(), view, region)


def test_the_mura_fixture_reads_its_wrists_as_the_hand_region():
    recs = read_dataset(MURA)
    wrists = [r for r in recs if r.part == "wrist"]
    assert wrists and all((r.view, r.region) == ("wrist", "hand") for r in wrists)
    assert {r.region for r in recs} == {"elbow", "hand", "shoulder"}


def test_the_split_file_keeps_no_view_and_reading_it_joins_them_again(tmp_path):
    root = tmp_path
    atlas = _fracatlas(root)
    hand = _flagged(atlas, "hand")
    _write_views(root / "views.csv", [("fracatlas", hand[0], "wrist")])
    recs = data.assign_splits(read_dataset(root), seed=1)
    data.write_split(recs, tmp_path / "split.csv", root)
    with open(tmp_path / "split.csv", newline="") as fh:
        assert "view" not in next(csv.reader(fh))
    back = {r.path: r for r in data.read_split(tmp_path / "split.csv", root)}
    assert {(r.path, r.view, r.region) for r in recs} == {(p, r.view, r.region) for p, r in back.items()}
    # a split file with a column this version does not know is still read
    text = (tmp_path / "split.csv").read_text().splitlines()
    (tmp_path / "newer.csv").write_text("\n".join([text[0] + ",later"] + [t + ",x" for t in text[1:]]) + "\n")
    assert len(data.read_split(tmp_path / "newer.csv", root)) == len(recs)


def test_the_fracture_models_select_their_films_by_the_dataset_part_as_before(tmp_path):
    atlas = _fracatlas(tmp_path)
    shoulder = _flagged(atlas, "shoulder")
    _write_views(tmp_path / "views.csv", [("fracatlas", shoulder[0], "chest")])
    recs = read_dataset(tmp_path)
    chest = [r for r in recs if r.view == "chest"]
    selected = {r.path for r in data.fracture_records(recs, "shoulder")}
    assert chest and all(r.path in selected for r in chest)
