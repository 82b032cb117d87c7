"""Cross-validated cuts (issue 24): folds that keep patients apart, and cuts chosen on every film's
out-of-fold score."""
import csv
import json
from collections import Counter

import numpy as np
import pytest

from conftest import FOLDERS, TRAIN, run_script
from fracture_detection.chain import decisions
from fracture_detection.io.data import Record
from fracture_detection.training import crossval


def _records(n_groups=40, per_group=3, seed=0):
    """Patients with several films each; labels and appliances by patient, parts mixed."""
    rng = np.random.default_rng(seed)
    recs = []
    for g in range(n_groups):
        part = ("elbow", "hand", "shoulder")[g % 3]
        label = int(rng.random() < 0.4)
        appliance = ("implant" if rng.random() < 0.5 else "none") if label else "none"
        for i in range(rng.integers(1, per_group + 1)):
            recs.append(Record(path=f"p{g}/f{i}.png", part=part, label=label, group=f"patient{g}", study=f"s{g}",
                               source="test", appliance=appliance))
    return recs


def test_folds_keep_every_patient_in_one_fold_and_cover_every_film():
    recs = _records()
    folds = crossval.cv_folds(recs, k=5, seed=1)
    assert set(folds.tolist()) == set(range(5))
    by_group = {}
    for r, f in zip(recs, folds):
        by_group.setdefault(r.group, set()).add(int(f))
    assert all(len(fs) == 1 for fs in by_group.values()), "a patient's films span two folds"
    # seeded: the same folds again, other folds with another seed
    assert (crossval.cv_folds(recs, k=5, seed=1) == folds).all()
    assert (crossval.cv_folds(recs, k=5, seed=2) != folds).any()


def test_folds_are_stratified_by_part_label_and_appliance():
    recs = [Record(path=f"{i}.png", part=("elbow", "hand")[i % 2], label=(i // 2) % 2, group=f"g{i}", study=str(i),
                   source="test", appliance=("implant" if i % 8 == 3 else "none") if (i // 2) % 2 else "none")
            for i in range(200)]
    folds = crossval.cv_folds(recs, k=5, seed=0)
    strata = crossval.strata(recs)
    for stratum, total in Counter(strata).items():
        per_fold = Counter(int(f) for f, s in zip(folds, strata) if s == stratum)
        assert max(per_fold.values()) - min(per_fold.get(f, 0) for f in range(5)) <= 1, (stratum, per_fold)


def test_too_few_patients_for_the_folds_is_one_sentence():
    recs = _records(n_groups=3)
    with pytest.raises(ValueError, match="needs at least 5 patients"):
        crossval.cv_folds(recs, k=5)


def test_the_shipped_model_runs_the_epochs_the_folds_chose():
    head_kept = {"val_loss": [0.5, 0.4, 0.6, 0.7], "phase": ["head", "head", "fine_tune", "fine_tune"], "kept": "head"}
    third = {"val_loss": [0.5, 0.4, 0.39, 0.38, 0.37, 0.45], "phase": ["head"] * 2 + ["fine_tune"] * 4}
    assert crossval.chosen_fine_tune_epochs(head_kept) == 0
    assert crossval.chosen_fine_tune_epochs(third) == 3
    assert crossval.final_epochs([0, 3, 3, 4, 1]) == 3
    assert crossval.final_epochs([]) == 0


@pytest.mark.slow
def test_cross_validated_training_chooses_the_cuts_on_every_out_of_fold_film(tmp_path):
    out = tmp_path / "w"
    run_script("training_fracture.py", "--data", FOLDERS, "--out", out, "--image-size", "64", "--parts", "hand",
               "--cv-folds", "2", *TRAIN)
    meta = json.loads((out / "fracture_hand.json").read_text())
    with open(out / "out_of_fold_hand.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    split = {r["path"]: r["split"] for r in csv.DictReader(open(out / "split.csv", newline=""))}
    hand = {p for p, s in split.items() if p.startswith("Hand/") and s in ("train", "val")}
    # every train and validation film of the part scored once, none of the test split
    assert sorted(r["path"] for r in rows) == sorted(hand)
    assert {r["fold"] for r in rows} == {"0", "1"}
    folds_of_group = {}
    for r in rows:
        folds_of_group.setdefault(r["group"], set()).add(r["fold"])
    assert all(len(v) == 1 for v in folds_of_group.values())
    # the cuts are those the rule chooses on the out-of-fold scores of all of them
    y = [int(r["label"]) for r in rows]
    p = [float(r["probability"]) for r in rows]
    untreated = [r["appliance"] == "none" for r in rows]
    expected = decisions.select_cuts(y, p, untreated)
    assert meta["cuts"]["no_fracture_below"] == expected["no_fracture_below"]
    assert meta["cuts"]["fracture_from"] == expected["fracture_from"]
    assert "out-of-fold" in meta["cuts"]["chosen_on"]
    # the rank inside "uncertain" comes from the same out-of-fold films, and says so
    from fracture_detection.chain.amber import amber_bins
    edges = (expected["no_fracture_below"], expected["fracture_from"])
    assert meta["amber"] == amber_bins(y, p, edges, "out-of-fold")
    cv = meta["history"]["cross_validation"]
    assert cv["folds"] == 2 and cv["films"] == len(rows) and cv["trained_on"] == "train + validation"
    assert meta["validation"]["n"] == len(rows)
