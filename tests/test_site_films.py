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


def _radiographs(rows):
    """The films' rows grouped by the radiograph they are copies of, in the order each first appears."""
    groups = {}
    for r in rows:
        groups.setdefault(r["radiograph"], []).append(r)
    return list(groups.values())


def recompute(rows, m):
    """Every headline figure of ``metrics.json`` from ``predictions.csv`` alone, with plain numpy: the
    fracture figures count each radiograph once, with the mean of its copies' probabilities."""
    assert m["images"] == len(rows)
    for part, e in m["fracture"].items():
        films = [r for r in rows if r["fracture_model"] == part and r["in_fracture_figures"] == "1"]
        radiographs = _radiographs(films)
        mine = [g[0] for g in radiographs]
        assert (e["n_films"], e["n_radiographs"]) == (len(films), len(radiographs)), part
        y = np.array([int(r["true_label"]) for r in mine])
        p = np.array([round(float(np.mean([float(r["fracture_probability"]) for r in g])), 4) for g in radiographs])
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
        assert [f for f, g in zip(finding, radiographs) if len(g) == 1] == [
            g[0]["model_finding"] for g in radiographs if len(g) == 1], part
        for f in ("fractured", "uncertain", "normal"):
            assert e["findings"]["counts"][f] == {"fractured": int(((finding == f) & (y == 1)).sum()),
                                                  "normal": int(((finding == f) & (y == 0)).sum())}, (part, f)
        untreated = np.array([r["appliance"] == "none" for r in mine]) & (y == 1)
        if untreated.any():
            called = e["by_kind"]["untreated"]["fractured_called"]
            for f in ("fractured", "uncertain", "normal"):
                assert called[f] == pytest.approx(float((finding[untreated] == f).mean())), (part, f)
        # end to end: only what the app called "Likely FRACTURE" on more than half of a radiograph's copies
        # is flagged; refused/uncertain/unreadable are not
        every = [g for g in radiographs if g[0]["true_label"] == "1"]
        flagged = sum(2 * sum(r["finding"] == "fractured" for r in g) > len(g) for g in every)
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


# --- recalibration ---------------------------------------------------------------------------

def test_recalibrated_cuts_keep_the_promises_on_other_films():
    """Cuts chosen on one half of a site's films keep the two promises on the other half, within the
    intervals: the share of untreated fractures called "No fracture found" is not above 5 % beyond its
    Wilson interval, nor the "Likely FRACTURE" films right below 90 %. Probabilities from two known
    distributions stand in for a model (the mechanism, not a model, is under test)."""
    from fracture_detection.evaluation.recalibrate import part_cuts, promise_check
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.integers(0, 2, n)
    untreated = (y == 1) & (rng.random(n) < 0.6)
    p = np.clip(np.where(y == 1, rng.beta(4, 2, n), rng.beta(1.5, 5, n)), 0, 1)
    a, b = np.arange(n) < n // 2, np.arange(n) >= n // 2
    before = (0.05, 0.95)
    r = part_cuts(y[a], p[a], untreated[a], before, n_boot=200)
    assert r["before"]["missed"]["share"] < 0.05 and r["after"]["uncertain"] < r["before"]["uncertain"]
    cuts = (r["cuts"]["no_fracture_below"], r["cuts"]["fracture_from"])
    assert r["after"]["missed"]["share"] <= 0.05 and r["after"]["likely_fracture_right"]["share"] >= 0.9
    for key in ("no_fracture_below", "fracture_from"):
        lo, hi = r["cuts"]["ci95"][key]
        assert lo <= r["cuts"][key] <= hi
    other = promise_check(y[b], p[b], untreated[b], cuts)
    assert other["missed"]["ci95"][0] <= 0.05 and other["likely_fracture_right"]["ci95"][1] >= 0.9
    assert abs(other["missed"]["share"] - 0.05) < 0.03  # it does move the cut where the promise binds
    # the rank inside "uncertain" follows the new cuts, from the same films
    bins = r["amber"]["bins"]
    assert r["amber"]["basis"] == "site" and (bins[0]["from"], bins[-1]["to"]) == cuts
    assert sum(b["n"] for b in bins) == int(np.sum((np.round(p[a], 4) >= cuts[0]) & (np.round(p[a], 4) < cuts[1])))
    few = part_cuts(y[:30], p[:30], untreated[:30], before, min_fractured=20, min_normal=20)
    assert "kept" in few and "cuts" not in few and "after" not in few


def _half(src_files, dest):
    import shutil
    for f in src_files:
        rel = f.relative_to(FOLDERS)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / rel)
    rows = [r for r in _rows(FOLDERS / "appliances.csv") if (dest / r["path"]).is_file()]
    with open(dest / "appliances.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dest


def test_recalibrate_on_half_a_folder_and_check_on_the_other_half(tiny_weights, tmp_path):
    films = sorted(FOLDERS.rglob("*.jpg"))
    first = [f for f in films if int(f.stem[-1]) < 2 and not (f.parent.parent.name == "Shoulder"
                                                              and f.stem == "shoulder1_1")]
    second = [f for f in films if f not in first and f.stem != "shoulder1_1"]
    a, b = _half(first, tmp_path / "a"), _half(second, tmp_path / "b")
    new = tmp_path / "site-weights"
    # the tiny models learnt from these very fixture films: --all-films (else their split leaves them out)
    proc = run_script("predictions_test.py", "--weights", tiny_weights, "--data", a, "--layout", "folders",
                      "--out", tmp_path / "ea", "--bootstrap", "50", "--quiet", "--recalibrate", new,
                      "--min-films", "2", "2", "--all-films")
    r = json.loads((tmp_path / "ea" / "metrics.json").read_text())["recalibration"]
    assert "## Recalibration on these films" in proc.stdout
    assert set(r["parts"]) == {"elbow", "hand", "shoulder"}
    assert "kept" in r["parts"]["shoulder"] and "kept: 1 fractured" in (tmp_path / "ea" / "report.md").read_text()
    for part in ("elbow", "hand"):
        e = r["parts"][part]
        assert e["after"]["missed"]["share"] <= 0.05
        assert e["after"]["likely_fracture_right"]["share"] in (None, 1.0)  # >= 90 % of 2 films: both
        meta = json.loads((new / f"fracture_{part}.json").read_text())
        assert [meta["cuts"]["no_fracture_below"], meta["cuts"]["fracture_from"]] == e["after"]["edges"]
        assert meta["recalibration"]["before"]["edges"] == e["before"]["edges"]
    bundled = json.loads((tiny_weights / "fracture_shoulder.json").read_text())["cuts"]
    assert json.loads((new / "fracture_shoulder.json").read_text())["cuts"] == bundled
    # the new folder is a models folder as it is: evaluated on the other half with the new cuts
    run_script("predictions_test.py", "--weights", new, "--data", b, "--layout", "folders", "--out",
               tmp_path / "eb", "--bootstrap", "20", "--quiet", "--all-films")
    mb = json.loads((tmp_path / "eb" / "metrics.json").read_text())
    rows = _rows(tmp_path / "eb" / "predictions.csv")
    recompute(rows, mb)
    from fracture_detection.evaluation.recalibrate import promise_check
    for part in ("elbow", "hand"):
        edges = r["parts"][part]["after"]["edges"]
        assert mb["fracture"][part]["uncertain_band"] == edges
        mine = [x for x in rows if x["true_part"] == part and x["in_fracture_figures"] == "1"]
        check = promise_check([int(x["true_label"]) for x in mine], [float(x["fracture_probability"]) for x in mine],
                              [x["appliance"] == "none" for x in mine], edges)
        # two fractures and two normal films: the promises can only be "not contradicted" at 95 %
        assert check["missed"]["ci95"][0] <= 0.05
        if check["likely_fracture_right"]["n"]:
            assert check["likely_fracture_right"]["ci95"][1] >= 0.9
    again = run_script("predictions_test.py", "--weights", tiny_weights, "--data", a, "--out", tmp_path / "ec",
                       "--recalibrate", new, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr and "Traceback" not in again.stderr


# --- fine-tuning from a models folder --------------------------------------------------------------

def test_fine_tune_from_a_models_folder_reports_before_and_after(tiny_weights, tmp_path):
    """--init-from starts each part from the folder's Keras model (no training at all gives back the
    same probabilities), reuses its split, and reports both models on the held-out films."""
    import shutil
    from fracture_detection.chain.predictor import Predictor
    out = tmp_path / "site"
    run_script("training_fracture.py", "--data", FOLDERS, "--layout", "folders", "--init-from", tiny_weights,
               "--out", out, "--smoke", "--quiet", "--parts", "elbow", "hand", "--epochs", "0")
    r = json.loads((out / "fine_tune.json").read_text())
    assert set(r["parts"]) == {"elbow", "hand"}
    assert (out / "split.csv").read_text() == (tiny_weights / "split.csv").read_text()
    test = [x for x in _rows(out / "split.csv") if x["split"] == "test" and x["part"] in ("elbow", "hand")]
    for part, e in r["parts"].items():
        n = sum(x["part"] == part for x in test)
        assert e["n_fractured"] + e["n_normal"] == n and "before" in e and "after" in e
    meta = json.loads((out / "fracture_hand.json").read_text())
    assert meta["training"]["init_from"] == str(tiny_weights) and meta["image_size"] == 96
    before, after = Predictor(tiny_weights), Predictor(out)  # a models folder as it is (body part copied)
    films = [str(FOLDERS / x["path"]) for x in _rows(out / "split.csv") if x["part"] == "hand"]
    p0 = before.fracture_probabilities([before.prepare(f) for f in films], "hand")
    p1 = after.fracture_probabilities([after.prepare(f) for f in films], "hand")
    np.testing.assert_allclose(p1, p0, atol=1e-5)  # no epoch trained: exactly the model started from
    assert "before" in (out / "fine_tune.md").read_text()
    # a folder of .tflite files only (the bundle today): one sentence, nothing written
    litert_only = tmp_path / "litert-only"
    shutil.copytree(tiny_weights, litert_only, ignore=shutil.ignore_patterns("*.keras"))
    proc = run_script("training_fracture.py", "--data", FOLDERS, "--init-from", litert_only, "--out",
                      tmp_path / "none", "--smoke", check=False)
    assert proc.returncode == 2 and "no trainable Keras fracture model" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "none").exists()


def test_fine_tune_in_smoke_mode_trains_and_reports(tiny_weights, tmp_path):
    out = tmp_path / "site"
    run_script("training_fracture.py", "--data", FOLDERS, "--layout", "folders", "--init-from", tiny_weights,
               "--out", out, "--smoke", "--quiet", "--parts", "hand")
    meta = json.loads((out / "fracture_hand.json").read_text())
    h = meta["history"]
    assert len(h["val_auc"]) == len(h["loss"]) >= 1  # validation AUC per epoch
    body = json.loads((tiny_weights / "body_part.json").read_text())["history"]
    assert len(body["val_auc"]) == len(body["loss"]) and all(v is None or 0 <= v <= 1 for v in body["val_auc"])
    assert "hand" in json.loads((out / "fine_tune.json").read_text())["parts"]
