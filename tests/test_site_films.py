"""A site's own films: the per-image file every figure can be computed again from, recalibration on a
site's films, fine-tuning from a weights folder, reproducible splits and the CSV manifest."""
import csv
import json

import numpy as np
import pytest

from conftest import FOLDERS, run_script

APPLIANCES = ("cast", "splint", "implant", "external")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _auc(y, p):
    """The AUC by counting pairs (ties count one half): no library."""
    y, p = np.asarray(y), np.asarray(p)
    pos, neg = p[y == 1], p[y == 0]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (len(pos) * len(neg)))


def recompute(rows, m):
    """Every headline figure of ``metrics.json`` from ``predictions.csv`` alone, with plain numpy."""
    assert m["images"] == len(rows)
    for part, e in m["fracture"].items():
        mine = [r for r in rows if r["true_part"] == part and r["in_fracture_figures"] == "1"]
        y = np.array([int(r["true_label"]) for r in mine])
        p = np.array([float(r["fracture_probability"]) for r in mine])
        im = e["image"]
        assert (im["n"], im["positives"]) == (len(y), int(y.sum())), part
        if len(set(y)) == 2:
            assert im["auc"] == pytest.approx(_auc(y, p), abs=1e-9), part
        pred = p >= e["threshold"]
        assert (im["tp"], im["fp"], im["tn"], im["fn"]) == (
            int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 0)).sum()),
            int((~pred & (y == 1)).sum())), part
        low, high = e["uncertain_band"]
        finding = np.where(p >= high, "fractured", np.where(p < low, "normal", "uncertain"))
        assert list(finding) == [r["model_finding"] for r in mine], part
        for f in ("fractured", "uncertain", "normal"):
            assert e["findings"]["counts"][f] == {"fractured": int(((finding == f) & (y == 1)).sum()),
                                                  "normal": int(((finding == f) & (y == 0)).sum())}, (part, f)
        untreated = np.array([r["appliance"] == "none" for r in mine]) & (y == 1)
        if untreated.any():
            called = e["by_kind"]["untreated"]["fractured_called"]
            for f in ("fractured", "uncertain", "normal"):
                assert called[f] == pytest.approx(float((finding[untreated] == f).mean())), (part, f)
        # end to end: only what the app called "Likely FRACTURE" is flagged; refused/uncertain are not
        every = [r for r in rows if r["true_part"] == part and r["true_label"] == "1"
                 and r["finding"] != "error" and r["in_fracture_figures"] == "1"]
        flagged = sum(r["finding"] == "fractured" for r in every)
        s = e["end_to_end"]["sensitivity"]["all"]
        assert (s["k"], s["n"]) == (flagged, len(every)), part
    # the body part, with 'not_supported' for every film the gate turned away
    bp = m["body_part"]
    labels = bp["labels"]
    cm = np.zeros((len(labels), len(labels)), int)
    for r in rows:
        if r["finding"] == "error" or r["true_part"] == "mixed":
            continue
        truth = r["true_part"] if r["true_part"] in labels else "not_supported"
        cm[labels.index(truth), labels.index(r["body_part"] or "not_supported")] += 1
    assert cm.tolist() == bp["confusion_matrix"]


def test_evaluation_recomputes_from_its_predictions_csv(tiny_weights, tmp_path):
    out = tmp_path / "eval"
    proc = run_script("predictions_test.py", "--weights", tiny_weights, "--data", FOLDERS, "--layout", "folders",
                      "--out", out, "--bootstrap", "20", "--quiet", "--all-films")
    assert "trained or validated these models" in proc.stderr  # said, even when kept with --all-films
    rows = _rows(out / "predictions.csv")
    m = json.loads((out / "metrics.json").read_text())
    assert len(rows) == len([p for p in FOLDERS.rglob("*.jpg")])
    refused = [r for r in rows if r["finding"] == "not_supported" and r["in_fracture_figures"] == "1"]
    for r in refused:  # a film the gate turned away still carries the probability the figures use
        assert r["fracture_probability"] and not r["app_fracture_probability"]
    recompute(rows, m)
    report = (out / "report.md").read_text()
    assert "counts as not flagged" in report and "End-to-end sensitivity" in report
    for png in ("roc.png", "findings.png", "calibration.png", "training_fracture_hand.png"):
        assert f"]({png})" in report and (out / png).read_bytes()[:4] == b"\x89PNG"
    hand = m["fracture"]["hand"]
    ys = [(int(r["true_label"]), float(r["fracture_probability"])) for r in rows
          if r["true_part"] == "hand" and r["in_fracture_figures"] == "1"]
    assert hand["brier"] == pytest.approx(np.mean([(p - y) ** 2 for y, p in ys]), abs=1e-9)
    assert sum(b["n"] for b in hand["calibration"]) == hand["image"]["n"]


def test_evaluation_leaves_out_training_films_and_follows_moved_data(tiny_weights, tmp_path):
    """--data on the weights' own training folder evaluates only the films their split did not train or
    validate on (with a warning); --data-root finds the saved test split where the data is now."""
    import shutil
    from fracture_detection.io import data
    saved = data.read_split(tiny_weights / "split.csv", FOLDERS)
    test = sorted(r.path.split("folders/")[1] for r in saved if r.split == "test")
    proc = run_script("predictions_test.py", "--weights", tiny_weights, "--data", FOLDERS, "--layout", "folders",
                      "--out", tmp_path / "a", "--bootstrap", "5", "--quiet")
    assert f"{len(saved) - len(test)} of the {len(saved)} films" in proc.stderr
    assert sorted(r["path"] for r in _rows(tmp_path / "a" / "predictions.csv")) == test
    moved = tmp_path / "moved"
    shutil.copytree(FOLDERS, moved)
    run_script("predictions_test.py", "--weights", tiny_weights, "--data-root", moved, "--out", tmp_path / "b",
               "--bootstrap", "5", "--quiet")
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert str(moved) in m["description"]
    assert sorted(r["path"] for r in _rows(tmp_path / "b" / "predictions.csv")) == test


def test_wilson_interval_by_hand():
    from fracture_detection.evaluation.metrics import proportion
    s = proportion([1] * 10 + [0] * 40)  # 10 of 50: Wilson 95 % [0.1124, 0.3304] (tables)
    assert (s["k"], s["n"], s["share"]) == (10, 50, 0.2)
    assert s["ci95"] == pytest.approx([0.1124, 0.3304], abs=1e-4)
    assert proportion([0] * 4)["ci95"][1] == pytest.approx(0.4899, abs=1e-4)  # 0 of 4 is not "0 % for sure"


# --- layouts: unknown label folders, patients in folders, the CSV manifest --------------------

def _copy(tmp_path, layout):
    import shutil
    src = sorted(FOLDERS.rglob("*.jpg"))
    for rel, img in zip(layout, src):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(img, tmp_path / rel)
    return tmp_path


def test_unknown_label_folders_are_an_error_that_lists_them(tmp_path):
    from fracture_detection.io.data import DatasetError, read_dataset
    _copy(tmp_path, ["Hand/fractured/a.jpg", "Hand/nonfractured/b.jpg", "Elbow/maybe/c.jpg", "Elbow/normal/d.jpg"])
    with pytest.raises(DatasetError) as err:
        read_dataset(tmp_path, "folders")
    assert "Hand/nonfractured" in str(err.value) and "Elbow/maybe" in str(err.value)


def test_patient_folders_keep_a_patients_films_on_one_side(tmp_path):
    from fracture_detection.io.data import assign_splits, read_dataset
    names = [f"{part}/{label}/p{i % 7}/s{i % 2}/img{i}.jpg" for i, (part, label) in
             enumerate([(pa, la) for pa in ("Hand", "Elbow") for la in ("fractured", "normal")] * 7)]
    _copy(tmp_path, names)
    recs = read_dataset(tmp_path, "folders")
    assert len(recs) == len(names) and {r.patient for r in recs} == {f"patient:p{i}" for i in range(7)}
    assert all(r.group == r.patient and r.study.startswith(f"study:{r.patient[8:]}/s") for r in recs)
    for seed in range(5):
        sides = {}
        for r in assign_splits(recs, seed=seed):
            sides.setdefault(r.patient, set()).add(r.split)
        assert all(len(s) == 1 for s in sides.values()), seed


def test_manifest_layout(tmp_path):
    from fracture_detection.io.data import DatasetError, assign_splits, read_dataset
    names = [f"films/x{i}.jpg" for i in range(12)]
    _copy(tmp_path, names)
    lines = ["path,part,label,patient,study,appliance"]
    for i, n in enumerate(names):
        lines.append(f"{n},{['hand', 'elbow'][i % 2]},{['fractured', 'normal', '1', '0'][i % 4]},P{i % 4},"
                     f"S{i % 4}-{i % 3},{['none', 'cast', ''][i % 3]}")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    recs = read_dataset(tmp_path)  # detected by its manifest.csv
    assert len(recs) == 12 and {r.source for r in recs} == {"manifest"}
    by_name = {r.path.split("/")[-1]: r for r in recs}
    assert (by_name["x1.jpg"].part, by_name["x1.jpg"].label, by_name["x1.jpg"].patient,
            by_name["x1.jpg"].appliance) == ("elbow", 0, "patient:P1", "cast")
    assert by_name["x3.jpg"].label == 0 and by_name["x2.jpg"].label == 1 and by_name["x2.jpg"].appliance == ""
    for seed in range(5):
        sides = {}
        for r in assign_splits(recs, seed=seed):
            sides.setdefault(r.patient, set()).add(r.split)
        assert all(len(s) == 1 for s in sides.values())
    (tmp_path / "manifest.csv").write_text("path,part,label\nfilms/x0.jpg,hand,broken\nfilms/nope.jpg,hand,1\n")
    with pytest.raises(DatasetError, match="line"):
        read_dataset(tmp_path)
    (tmp_path / "manifest.csv").write_text("path,label\nfilms/x0.jpg,1\n")
    with pytest.raises(DatasetError, match="part"):
        read_dataset(tmp_path)


# --- reproducible splits ----------------------------------------------------------------------

def _records(n=400):
    from fracture_detection.io.data import Record
    # groups of one to three films, ties in (part, label) inside a group on purpose
    out = []
    for g in range(n):
        for j in range(1 + g % 3):
            out.append(Record(path=f"f{g}_{j}.png", part=["hand", "elbow", "leg"][(g + j) % 3], label=(g * j) % 2,
                              group=f"g{g}", study=f"g{g}", source="x"))
    return out


def test_split_does_not_depend_on_file_order_or_hash_seed():
    """Two training runs with the same options give the same split: the order the file system lists
    the films in, Python's string hashing (PYTHONHASHSEED) and set order play no part."""
    import random
    import subprocess
    import sys
    from fracture_detection.io.data import assign_splits
    a = {r.path: r.split for r in assign_splits(_records(), seed=42)}
    shuffled = _records()
    random.Random(3).shuffle(shuffled)
    assert {r.path: r.split for r in assign_splits(shuffled, seed=42)} == a
    code = ("import sys, json; sys.path[:0] = ['tests', '.']; from test_site_films import _records; "
            "from fracture_detection.io.data import assign_splits; "
            "print(json.dumps({r.path: r.split for r in assign_splits(_records(), seed=42)}))")
    from conftest import ROOT
    for hash_seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"}).stdout
        assert json.loads(out) == a


def test_training_reuses_a_saved_split_and_draws_a_new_one_only_when_asked(tmp_path):
    from fracture_detection.io import data
    from fracture_detection.training.trainer import prepare_split
    saved = tmp_path / "bundle" / "split.csv"
    saved.parent.mkdir()
    first = data.read_dataset(FOLDERS)
    for r in first:  # a split no seed would draw: every hand film in test
        r.split = "test" if r.part == "hand" else "train"
    data.write_split(first, saved, FOLDERS)
    # the data moved: the saved split's paths are relative to the data folder
    import shutil
    moved = tmp_path / "moved"
    shutil.copytree(FOLDERS, moved)
    out = tmp_path / "run"
    out.mkdir()
    recs = prepare_split(data.read_dataset(moved), moved, out, seed=1, reuse=saved)
    assert {r.split for r in recs if r.part == "hand"} == {"test"}
    assert {r.split for r in recs if r.part != "hand"} == {"train"}
    assert (out / "split.csv").is_file()
    again = prepare_split(data.read_dataset(moved), moved, out, seed=1)  # --out's own split from now on
    assert [r.split for r in again] == [r.split for r in recs]
    fresh = prepare_split(data.read_dataset(moved), moved, tmp_path / "run", seed=1, reuse=saved, new=True)
    assert {r.split for r in fresh if r.part == "hand"} != {"test"}
