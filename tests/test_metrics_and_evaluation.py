"""Metric code against hand-computed values, and predictions_test.py end to end."""
import json
import shutil

import numpy as np
import pytest

from fracture_detection.io import data
from fracture_detection.chain import decisions
from fracture_detection.evaluation import metrics

from conftest import FOLDERS, MURA, ROOT, run_script


def test_binary_metrics_by_hand():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    p = [0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7]
    m = metrics.binary_metrics(y, p, 0.5)
    # predictions: 1 1 0 0 1 0 0 1 -> tp 3, fn 1, tn 3, fp 1
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (3, 1, 3, 1)
    assert m["accuracy"] == 0.75 and m["sensitivity"] == 0.75 and m["specificity"] == 0.75
    # kappa: po = 0.75, pe = 0.5*0.5 + 0.5*0.5 = 0.5 -> (0.75 - 0.5) / 0.5
    assert m["kappa"] == pytest.approx(0.5)
    # AUC: of 16 positive/negative pairs, the positive scores higher in 14
    assert m["auc"] == pytest.approx(14 / 16)


def test_auc_counts_ties_as_one_half_and_is_nan_without_both_classes():
    # pairs (positive, negative): (0.5, 0.5) tie, (0.5, 0.2) won, (0.9, 0.5) won, (0.9, 0.2) won -> 3.5 / 4
    assert metrics.auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.2]) == pytest.approx(3.5 / 4)
    assert np.isnan(metrics.auc([1, 1], [0.2, 0.3]))
    d = metrics.paired_auc_difference([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.2], [0.2, 0.5, 0.9, 0.3], n_boot=50)
    assert d["new"] == pytest.approx(3.5 / 4) and d["old"] == pytest.approx(2 / 4)
    assert d["difference"] == pytest.approx(1.5 / 4)


def test_json_has_null_where_a_figure_cannot_be_worked_out():
    from fracture_detection.io import files
    out = files.without_nan({"auc": np.float32("nan"), "rows": [1.0, float("inf"), np.int64(3), {"p": np.float64("nan")}]})
    assert out == {"auc": None, "rows": [1.0, None, 3, {"p": None}]}


def _kind(n_fx, n_normal, called, right=None, uncertain=None, auc=None, n_called=0):
    return {"n_fractured": n_fx, "n_normal": n_normal, "auc": auc, "likely_fracture_right": right,
            "n_called_fractured": n_called, "uncertain": uncertain,
            "fractured_called": {"fractured": called[0], "uncertain": called[1], "normal": called[2]}}


def test_the_aims_table_says_by_how_much_each_aim_is_missed():
    from fracture_detection.evaluation import aims
    m = {"fracture": {
            "elbow": {"by_kind": {"all": _kind(20, 20, (0.20, 0.8, 0.0), right=0.90, uncertain=0.40, n_called=5)}},
            "shoulder": {"by_kind": {"all": _kind(10, 30, (0.40, 0.6, 0.0), right=0.80, uncertain=0.50, n_called=5)}},
            "hand": {"by_kind": {"all": _kind(50, 100, (0.3, 0.7, 0.0), right=0.95, uncertain=0.45, n_called=16),
                                 "untreated": _kind(30, 100, (0.3, 0.6, 0.1), auc=0.93)}}},
         "fracture_overall": {"by_kind": {"untreated": _kind(50, 200, (0.2, 0.76, 0.04))}},
         "gate": {"non_target_called_fractured": 0, "n_non_target": 300, "view_accuracy_on_sure": 0.85,
                  "n_view_sure": 200,
                  "by_region": {"elbow": {"target": True, "n": 100, "rejected": 0.02,
                                          "by_source": {"a": {"n": 50, "rejected": 1}, "b": {"n": 50, "rejected": 0}}},
                                "leg": {"target": False, "n": 100, "rejected": 0.99, "findings": {}},
                                "spine": {"target": False, "n": 100, "rejected": 0.97, "findings": {}}}}}
    rows = dict((row.split(" | ")[0].lstrip("| "), (row, met)) for row, met in aims.aim_rows(m))
    verdict = {aim: row.rsplit(" | ", 1)[1].rstrip(" |") for aim, (row, _) in rows.items()}
    red = "fractured radiographs called *Likely FRACTURE* ≥ 30 %, ≥ 85 % of the calls right"
    assert verdict[f"elbow: {red}"] == "missed by 10.0 points"        # 20 % called, short of 30 %
    assert verdict[f"shoulder: {red}"] == "missed by 5.0 points"      # 40 % called, but 80 % right of 85 %
    assert verdict["elbow: *uncertain* ≤ 45 % of the radiographs"] == "met"
    assert verdict["hand: *uncertain* ≤ 45 % of the radiographs"] == "met"   # exactly at the aim
    assert verdict["shoulder: *uncertain* ≤ 45 % of the radiographs"] == "missed by 5.0 points"
    assert verdict["untreated fractures called *No fracture found* ≤ 5 % (three parts pooled)"] == "met"
    assert verdict["hand: untreated AUC ≥ 0.90"] == "met"
    assert verdict["no film of another region called fractured"] == "met"
    assert verdict["≤ 1 % of each region's films not analysed, in each source"] == "missed by 1.0 points"  # 1 of 50
    assert verdict["the view right on ≥ 90 % of the surely labelled films"] == "missed by 5.0 points"
    assert verdict["seen other regions (humerus shaft, leg, hip, spine, chest) ≥ 98 % refused"] == "met"  # 98 % of 200
    assert [met for _, met in rows.values()].count(False) == 5  # the two red aims, shoulder amber, source, view


def test_kappa_unbalanced_by_hand():
    y = [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    p = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    # po = 0.8; truth 2/10 positive, predicted 2/10 positive: pe = 0.2*0.2 + 0.8*0.8 = 0.68
    assert metrics.binary_metrics(y, p, 0.5)["kappa"] == pytest.approx((0.8 - 0.68) / (1 - 0.68))


def test_study_aggregation_is_mean_of_images():
    studies, y, p = metrics.study_level(["a", "a", "b", "b", "b", "c"], [1, 1, 0, 0, 0, 1],
                                        [0.2, 0.9, 0.1, 0.7, 0.4, 0.51])
    assert studies == ["a", "b", "c"]
    np.testing.assert_allclose(p, [0.55, 0.4, 0.51])
    assert list(y) == [1, 0, 1]
    m = metrics.binary_metrics(y, p, predicted=decisions.mura_rule(p))  # abnormal when the mean > 0.5
    assert m["accuracy"] == 1.0 and m["kappa"] == 1.0


def test_study_figures_count_a_mean_of_exactly_one_half_as_normal():
    """One rule for 0.5 everywhere: MURA's study rule (mean > 0.5) in the evaluation figures, as in
    decisions.mura_rule; a model's own threshold decides p >= threshold, as a finding does."""
    from fracture_detection.evaluation.evaluate import fracture_figures
    studies = ["a", "a", "b", "b", "c", "c", "d", "d"]
    y = [0, 0, 1, 1, 1, 1, 0, 0]
    p = [0.25, 0.75, 0.375, 0.625, 0.9, 0.7, 0.1, 0.2]  # study means 0.5, 0.5, 0.8, 0.15
    f = fracture_figures(y, p, studies, 0.5, n_boot=20)
    mura = f["study_mura_rule"]  # a (normal, mean 0.5) right, b (abnormal, mean 0.5) missed
    assert (mura["tp"], mura["fn"], mura["tn"], mura["fp"]) == (1, 1, 2, 0) and "threshold" not in mura
    study = f["study"]  # at threshold 0.5: both means of 0.5 are positive
    assert (study["tp"], study["fn"], study["tn"], study["fp"]) == (2, 0, 1, 1) and study["threshold"] == 0.5
    image = f["image"]  # 0.75 (normal) and 0.375 (fractured) are the two mistakes
    assert (image["tp"], image["fn"], image["tn"], image["fp"]) == (3, 1, 3, 1) and f["n_studies"] == 4
    assert mura["auc"] == study["auc"] == pytest.approx(3.5 / 4)  # AUC of the means, whatever decides


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = metrics.with_intervals(y, p, 0.5, n_boot=300, seed=2)
    for key in ("accuracy", "sensitivity", "specificity", "auc", "kappa"):
        lo, hi = m["ci95"][key]
        assert lo <= m[key] <= hi and hi - lo < 0.3
    again = metrics.with_intervals(y, p, 0.5, n_boot=300, seed=2)
    assert again["ci95"] == m["ci95"]


def test_threshold_and_uncertain_band():
    y = np.array([0] * 50 + [1] * 50)
    p = np.concatenate([np.linspace(0.0, 0.6, 50), np.linspace(0.4, 1.0, 50)])
    thr = metrics.youden_threshold(y, p)
    assert 0.4 <= thr <= 0.62  # anywhere in the overlap maximises sensitivity + specificity
    # ten hand-made validation images: one normal at 0.6 sits among the fractures
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    cuts = decisions.select_cuts(y, p, y == 1)
    assert (cuts["no_fracture_below"], cuts["fracture_from"]) == (0.5, 0.7)   # 5 fractures: none may be missed


def test_predictions_test_end_to_end_on_mura_fixture(tiny_weights, tmp_path):
    out = tmp_path / "eval"
    proc = run_script("predictions_test.py", "--weights", tiny_weights, "--data", MURA, "--out", out,
                      "--bootstrap", "50", "--quiet")
    m = json.loads((out / "metrics.json").read_text())
    assert "MURA official valid split" in m["description"] and m["images"] == 16
    assert set(m["fracture"]) == {"elbow", "hand", "shoulder"}
    hand = m["fracture"]["hand"]
    # the hand model reads the hand region (MURA's hand and wrist studies), as the app routes them: two
    # views per study, each film its own radiograph
    assert hand["image"]["n"] == hand["n_films"] == 8 and hand["n_studies"] == 4
    assert m["body_part"]["labels"][-1] == "not_supported"
    # a body-part model of views routes MURA's wrists to the hand region: every film is a target here
    assert (m["body_part"]["n_target"], m["body_part"]["n_non_target"]) == (16, 0)
    assert {k for k, e in m["gate"]["by_region"].items() if e["target"]} == {"elbow", "hand", "shoulder"}
    for png in ("roc.png", "calibration.png", "kappa.png", "confusion_body_part.png", "findings.png",
                "training_body_part.png", "training_fracture_hand.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in (out / "report.md").read_text()
    assert "| hand |" in proc.stdout
    # the figures are those of the hand model on MURA's valid hand images, worked out here
    from sklearn.metrics import roc_auc_score
    from fracture_detection.chain.predictor import Predictor
    predictor = Predictor(tiny_weights)
    recs = [r for r in data.read_dataset(MURA) if r.split == "test" and r.region == "hand"]
    assert {r.part for r in recs} == {"hand", "wrist"}
    p = predictor.fracture_probabilities([predictor.prepare(r.path) for r in recs], "hand")
    y = np.array([r.label for r in recs])
    assert hand["image"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    thr = hand["threshold"]
    assert (hand["image"]["tp"], hand["image"]["fp"]) == (int(((p >= thr) & (y == 1)).sum()),
                                                          int(((p >= thr) & (y == 0)).sum()))
    studies = sorted({r.study for r in recs})
    means = np.array([np.mean([q for r, q in zip(recs, p) if r.study == s]) for s in studies])
    labels = np.array([next(r.label for r in recs if r.study == s) for s in studies])
    mura = hand["study_mura_rule"]
    assert (mura["tp"], mura["fp"]) == (int(((means > 0.5) & (labels == 1)).sum()),
                                        int(((means > 0.5) & (labels == 0)).sum()))


def test_predictions_test_default_uses_saved_test_split(tiny_weights, tmp_path):
    """Without --data: exactly the test rows of the weights' split.csv (3 fixture images: an elbow,
    a hand, a leg), plus the body-part model's generated non-radiographs of its test split."""
    run_script("predictions_test.py", "--weights", tiny_weights, "--out", tmp_path, "--bootstrap", "20", "--quiet")
    m = json.loads((tmp_path / "metrics.json").read_text())
    test = [r for r in data.read_split(tiny_weights / "split.csv", FOLDERS) if r.split == "test"]
    assert "test split" in m["description"] and m["images"] == len(test) > 0
    for part in ("elbow", "hand", "shoulder"):
        n = sum(r.part == part for r in test)
        assert (m["fracture"][part]["image"]["n"] if part in m["fracture"] else 0) == n, part
    assert m["body_part"]["n_non_target"] == sum(r.part not in ("elbow", "hand", "shoulder") for r in test)
    from fracture_detection.io.synthetic import split_of
    n = json.loads((tiny_weights / "body_part.json").read_text())["synthetic_non_radiographs"]["count"]
    assert m["body_part"]["non_radiographs"]["n"] == sum(split_of(i, n) == "test" for i in range(n))


def test_model_card_reports_the_comparison_and_region_spread(tiny_weights, tmp_path):
    """--write-model-card on a copy of the weights: the card's model table gives each fracture model's
    region threshold and spread, and its comparison table every row kept by the comparison script
    (a re-run replaces its row, other rows stay), with the spread they were measured at."""
    import importlib
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    compare = importlib.import_module("compare_fracture_models")
    weights = tiny_weights.parent / f"card-{tmp_path.name}"  # beside it: the path to the data stays right
    shutil.copytree(tiny_weights, weights)
    out = weights / "fracture_comparison.json"
    row = lambda run, backbone, auc, spread: {  # noqa: E731
        "run": run, "backbone": backbone, "image_size": 96, "region_extent": spread, "litert_mb": 1.0,
        "litert_ms_per_image": 2.0, "validation": {"auc": auc, "uncertain": 0.2, "accuracy_of_decided": 0.9,
                                                   "top_region_in_box": 0.4, "region_sensitivity_at_1_false_per_image": 0.3}}
    first = compare.merged(out, "hand", 96, 2, [row("dense head", "mobilenetv2", 0.61, 0.5),
                                                 row("dense head", "efficientnet_lite2", 0.62, 0.5)])
    out.write_text(json.dumps(dict(first, commands=["python compare --first"])))
    again = compare.merged(out, "hand", 96, 2, [row("dense head", "mobilenetv2", 0.71, 0.7)])
    assert [(r["backbone"], r["validation"]["auc"]) for r in again["results"]] == \
        [("efficientnet_lite2", 0.62), ("mobilenetv2", 0.71)] and again["commands"] == ["python compare --first"]
    assert compare.merged(out, "hand", 448, 2, [])["results"] == []  # another size: a new comparison
    out.write_text(json.dumps(again))
    run_script("predictions_test.py", "--weights", weights, "--out", tmp_path / "eval", "--bootstrap", "20",
               "--quiet", "--write-model-card")
    card = (weights / "MODEL_CARD.md").read_text()
    spread = json.loads((weights / "fracture_hand.json").read_text())["localisation"]["region_extent"]
    assert f"spread ≥ {spread:.2f} of the peak" in card
    table = [line for line in card.splitlines() if line.startswith("| dense head |")]
    assert [line.split(" | ")[1:4] for line in table] == [["efficientnet_lite2", "96 px", "0.620"],
                                                          ["mobilenetv2", "96 px", "0.710"]]
    assert [line.split(" | ")[8] for line in table] == ["0.5", "0.7"]
    assert "`python compare --first`" in card and "Region spread:" in card  # rows of two spreads: said so
    aims = card[card.index("### Aims against the test split"):]
    assert "| hand: *uncertain* ≤ 45 % of the radiographs |" in aims and "Why the missed ones are missed:" in aims


def test_predictions_test_bad_data_folder(tiny_weights, tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_script("predictions_test.py", "--weights", tiny_weights, "--data", tmp_path / "empty",
                      "--out", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "not a dataset layout" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_card_says_what_holds_the_gate_cut_and_what_a_higher_cut_would_buy():
    from types import SimpleNamespace

    from fracture_detection.evaluation import aims
    from fracture_detection.evaluation.model_card import trade_off_section
    t = {"binding": {"group": "shoulder/b", "n": 102, "may_turn_away": 1, "allows_cut": 0.0871,
                     "lowest": [0.0009, 0.0871], "lowest_films": ["x.jpg", "y.jpg"]},
         "n_target": 781, "n_other": {"humerus": 100, "leg": 300, "generated": 50},
         "levels": [{"share": None, "cut": 0.0871, "target_turned_away": 2, "worst_group": "shoulder/b",
                     "worst_group_share": 0.0098, "refused": {"humerus": 0.75, "leg": 0.93, "generated": 1.0}},
                    {"share": 0.10, "cut": 0.939, "target_turned_away": 78, "worst_group": "hand/b",
                     "worst_group_share": 0.16, "refused": {"humerus": 0.95, "leg": 0.99, "generated": 1.0}}]}
    body = SimpleNamespace(meta={"task": "body_part", "validation": {"cut_trade_off": t}})
    (line,) = aims.gate_why({"body_part": body})
    # 95 % of 100 humerus and 99 % of 300 legs: 98 % of the seen regions at the highest cost tried
    assert "shoulder/b holds it at 0.0871" in line and "turned away 78 of the 781" in line
    assert "only a cut that turned away 78 of the 781" in line and "would refuse 98.0%" in line
    assert "pull against each other" in line
    t["levels"][-1]["refused"]["leg"] = 0.97   # 97.5 %: short of the aim even there
    assert "does not separate these films" in aims.gate_why({"body_part": body})[0]
    table = trade_off_section(t)
    assert "held down by shoulder/b" in table[0] and "0.0009 (x.jpg)" in table[0]
    assert table[2].count("|") == 7 and "humerus (n = 100)" in table[2]      # cut, turned away, worst, 3 others
    assert table[4].startswith("| 0.0871 (the gate's) | 2 (0.3%) | shoulder/b 1.0% | 75.0% |")
    assert trade_off_section(None) == [] and aims.gate_why({}) == []
