"""The test split's figures count radiographs, not films (issue 24): a radiograph's copies are averaged and
drawn together by the bootstrap; and the view named right on the films whose view by eye is sure, with
the hand-versus-wrist line (issue 25). Hand-made records and predictions, no model."""
import numpy as np

from fracture_detection.chain.predictor import Prediction
from fracture_detection.evaluation import metrics
from fracture_detection.evaluation.evaluate import _by_group, _end_to_end, gate_metrics
from fracture_detection.evaluation.model_card import view_test_text
from fracture_detection.evaluation.report_text import group_table, view_markdown
from fracture_detection.io.data import Record

HAND_VIEWS = {"finger": 0.1, "hand": 0.2, "wrist": 0.3, "forearm": 0.3, "elbow": 0.05, "shoulder": 0.0, "other": 0.05}


def _copy(upload, i, label, part="wrist", view="wrist", source="roboflow", appliance="none", confidence=""):
    path = f"train/images/{upload}.rf.{i}.jpg" if source == "roboflow" else f"images/{upload}.jpg"
    return Record(path=path, part=part, label=label, group=f"{source}:{upload}", study=f"{source}:{upload}",
                  source=source, appliance=appliance if label else "", view=view, view_confidence=confidence)


def test_a_radiographs_copies_are_averaged_and_the_region_decides_the_model():
    recs = [_copy("u1", 1, 1), _copy("u1", 2, 1), _copy("u1", 3, 1),  # one wrist upload, three copies
            _copy("IMG1", 0, 0, part="hand", view="hand", source="fracatlas"),
            _copy("IMG2", 0, 1, part="hand", view="elbow", source="fracatlas"),  # FracAtlas "hand", an elbow film
            _copy("leg", 0, 0, part="leg", view="", source="fracatlas")]
    probs = np.array([0.9, 0.5, 0.7, 0.2, 0.6, np.nan])
    rad = metrics.part_radiographs(recs, probs, "hand", by_region=True)
    assert rad["films"] == [0, 1, 2, 3] and rad["members"] == [[0, 1, 2], [3]] and rad["first"] == [0, 3]
    assert rad["y"].tolist() == [1, 0] and np.allclose(rad["p"], [0.7, 0.2])
    # before views, the dataset's part: the FracAtlas elbow film is the hand model's, the wrist upload no one's
    old = metrics.part_radiographs(recs, probs, "hand", by_region=False)
    assert old["films"] == [3, 4] and old["y"].tolist() == [0, 1]
    assert metrics.part_radiographs(recs, probs, "shoulder", by_region=True) is None


def test_three_copies_of_a_high_normal_film_weigh_as_one_radiograph_in_the_promises():
    recs = [_copy(f"fx{k}", 0, 1) for k in range(3)] + [_copy("n1", k, 0) for k in range(3)] \
        + [_copy(f"n{k}", 0, 0) for k in (2, 3)]
    probs = np.array([0.8, 0.85, 0.9, 0.95, 0.95, 0.95, 0.1, 0.1])
    rad = metrics.part_radiographs(recs, probs, "hand", by_region=True)
    findings = ["fractured" if v >= 0.75 else "normal" if v < 0.3 else "uncertain" for v in rad["p"]]
    kinds = metrics.film_kinds(rad["y"], [recs[i].treated for i in rad["first"]])
    f = metrics.promise_figures(rad["y"], rad["p"], findings, kinds, "untreated", n_boot=200)
    assert (f["n_fractured"], f["n_normal"]) == (3, 3)
    assert f["auc"] == 6 / 9  # each fracture above two of the three normal radiographs
    assert f["likely_fracture_right"] == 3 / 4 and f["n_called_fractured"] == 4
    # counted by film, the normal film's three copies would outvote: AUC 6/15, "Likely FRACTURE" right 3 of 6
    films = metrics.promise_figures([r.label for r in recs], probs, ["fractured"] * 6 + ["normal"] * 2,
                                    metrics.film_kinds([r.label for r in recs], [r.treated for r in recs]), "untreated")
    assert films["auc"] == 6 / 15 and films["likely_fracture_right"] == 0.5
    lo, hi = f["auc_ci95"]
    assert lo <= f["auc"] <= hi


def test_the_fast_auc_and_its_interval_agree_with_the_full_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    p = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, 60), 0, 1), 2)  # rounded: ties count one half
    from sklearn.metrics import roc_auc_score
    assert np.isclose(metrics.auc(y, p), roc_auc_score(y, p))
    assert np.allclose(metrics.auc_interval(y, p, 300, seed=5),
                       metrics.bootstrap_intervals(y, p, n_boot=300, seed=5, keys=("auc",))["auc"])
    assert np.isnan(metrics.auc([1, 1], [0.2, 0.3]))


def test_the_bootstrap_draws_a_radiographs_copies_together():
    groups = [[0, 1, 2], [3], [4, 5]]
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = metrics.resample(rng, 6, groups).tolist()
        pieces, k = [], 0
        while k < len(idx):  # the draw is whole groups, one after another
            g = next(g for g in groups if idx[k:k + len(g)] == g)
            pieces.append(g)
            k += len(g)
        assert len(pieces) == 3
    assert len(metrics.resample(rng, 6)) == 6
    # the localisation's interval: copies that all hit or all miss move together
    items = [{"top_hit": hit, "scored": [(0.9, "hit" if hit else "false")], "n_lesions": 1}
             for hit in [True] * 6 + [False] * 6]
    by_group = metrics.localisation(items, n_boot=300, groups=[list(range(6)), list(range(6, 12))])
    by_film = metrics.localisation(items, n_boot=300)
    assert by_group["ci95"]["top_region_in_box"] == [0.0, 1.0]  # two radiographs: all, half or none
    assert by_film["ci95"]["top_region_in_box"][0] > 0.1  # twelve films would seem to know more


def _said(finding, part="hand"):
    return Prediction(path=None, body_part=None if finding == "not_supported" else part, view="wrist",
                      finding=finding, part_probabilities=HAND_VIEWS)


def test_the_apps_answer_on_a_radiograph_is_the_one_most_of_its_copies_got():
    preds = [_said("fractured"), _said("fractured"), _said("uncertain"),    # flagged
             _said("fractured"), _said("normal"),                           # split: uncertain
             _said("not_supported"), _said("not_supported"), _said("fractured"),  # turned away
             _said("normal")]                                               # a normal radiograph
    members = [[0, 1, 2], [3, 4], [5, 6, 7], [8]]
    y, kinds = np.array([1, 1, 1, 0]), np.array(["untreated", "untreated", "appliance", "normal"], dtype=object)
    ee = _end_to_end(preds, members, y, "hand", kinds)
    assert (ee["n"], ee["n_films"], ee["counted"]) == (4, 9, "radiographs")
    assert ee["findings"] == {"fractured": 1, "uncertain": 1, "not_supported": 1, "normal": 1}
    assert ee["routed_to_this_model"] == 3 / 4 and ee["copies_split"] == 3
    assert (ee["sensitivity"]["untreated"]["k"], ee["sensitivity"]["untreated"]["n"]) == (1, 2)
    assert (ee["sensitivity"]["all"]["k"], ee["sensitivity"]["all"]["n"]) == (1, 3)
    assert ee["accuracy_of_decided_findings"] == 1.0 and ee["n_decided"] == 2


def test_the_promises_per_source_and_per_view_count_each_groups_radiographs():
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.4, 0.1, 0.5, 0.8, 0.2])
    findings = np.array(["fractured", "uncertain", "normal", "uncertain", "fractured", "normal"])
    kinds = np.array(["untreated", "appliance", "normal", "normal", "untreated", "normal"], dtype=object)
    by = _by_group(["roboflow", "roboflow", "roboflow", "roboflow", "fracatlas", "fracatlas"], y, p, findings, kinds, 50)
    assert set(by) == {"fracatlas", "roboflow"}
    assert (by["roboflow"]["all"]["n_fractured"], by["roboflow"]["all"]["n_normal"]) == (2, 2)
    assert by["roboflow"]["untreated"]["n_fractured"] == 1 and by["fracatlas"]["all"]["auc"] == 1.0
    lines = group_table({"fracture": {"hand": {"by_source": by}}}, "by_source")
    assert lines[0].startswith("| part | source | radiographs, fractured / normal |")
    assert any(line.startswith("| hand | roboflow | 2 / 2 | 0.750") and "50.0% / 50.0% / 0.0%" in line
               for line in lines)


def test_the_view_is_scored_on_every_analysed_film_and_on_the_sure_ones_with_the_hand_wrist_line():
    def rec(name, view, confidence, source="fracatlas", part="hand"):
        return Record(path=name, part=part, label=0, group=name, study=name, source=source, view=view,
                      view_confidence=confidence)
    recs = [rec("a", "hand", "high"), rec("b", "wrist", "high"), rec("c", "wrist", "low"), rec("d", "hand", "low"),
            rec("e", "hand", "low"), rec("f", "finger", "", source="roboflow", part="finger"),
            rec("g", "forearm", "low")]
    named = ["hand", "wrist", "hand", "wrist", "forearm", "finger", "forearm"]
    chain = [Prediction(path=None, body_part="hand", view=v, finding="normal", part_probabilities=HAND_VIEWS)
             for v in named]
    g = gate_metrics(recs, chain, ["hand", "elbow", "shoulder"], views=True)
    assert g["n_view_known"] == 7 and g["view_accuracy_on_accepted"] == 4 / 7
    assert g["n_view_sure"] == 3 and g["view_accuracy_on_sure"] == 1.0  # high, and a label with no rating
    low = g["hand_wrist"]["low"]
    assert low["n"] == 3 and low["named"] == {"hand": {"forearm": 1, "wrist": 1}, "wrist": {"hand": 1}}
    assert low["right"] == 0 and low["crossed"] == 1.0 and low["left"] == 1 / 3
    assert g["hand_wrist"]["sure"]["right"] == 2 and g["hand_wrist"]["sure"]["crossed"] == 0.0
    text = " ".join(view_markdown(g))
    assert "4 films" not in text and "57.1% of 7 films" in text and "100.0% of 3" in text
    assert "rated low (mostly hand versus wrist): hand by eye named forearm 1, wrist 1; wrist by eye named " \
           "hand 1 (0 of 3 right; of those named hand or wrist, 100.0% the other side of the line)" in text
    assert (g["n_target_radiographs"], g["target_rejected_radiographs"]) == (7, 0.0)
    card = view_test_text(g)
    assert "named right on 57.1% of the 7 analysed target films" in card and "sure" in card and "100.0% of 3" in card


def test_a_radiograph_is_turned_away_when_most_of_its_copies_are():
    recs = [_copy("u1", k, 1) for k in range(3)] + [_copy("u2", k, 0) for k in range(2)] + [_copy("u3", 0, 0)]
    refused = Prediction(path=None, finding="not_supported", part_probabilities=HAND_VIEWS)
    chain = [refused, refused, _said("uncertain"), refused, _said("normal"), _said("normal")]
    g = gate_metrics(recs, chain, ["hand", "elbow", "shoulder"], views=True)
    assert g["target_rejected"] == 0.5 and g["n_target"] == 6  # films
    assert g["target_rejected_radiographs"] == 1 / 3 and g["n_target_radiographs"] == 3  # u1 only; u2 splits
