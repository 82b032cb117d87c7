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
    run_script("predictions_test.py", "--weights", tiny_weights, "--data", FOLDERS, "--layout", "folders",
               "--out", out, "--bootstrap", "20", "--quiet")
    rows = _rows(out / "predictions.csv")
    m = json.loads((out / "metrics.json").read_text())
    assert len(rows) == len([p for p in FOLDERS.rglob("*.jpg")])
    refused = [r for r in rows if r["finding"] == "not_supported" and r["in_fracture_figures"] == "1"]
    for r in refused:  # a film the gate turned away still carries the probability the figures use
        assert r["fracture_probability"] and not r["app_fracture_probability"]
    recompute(rows, m)
    report = (out / "report.md").read_text()
    assert "counts as not flagged" in report and "End-to-end sensitivity" in report
