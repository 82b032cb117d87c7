"""The cast, splint or implant detector: fitted outside the model, then carried inside the fracture model
as its third output, so the app reads it from the same forward pass."""
import shutil

import numpy as np
import pytest

from fracture_detection.io import data
from fracture_detection.io.data import Record
from fracture_detection.training.appliance import MAX_NORMAL, appliance_records, fit_head

from conftest import FOLDERS


def test_fit_head_folds_the_standardisation_into_the_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, [1.0, 20.0, 0.1], size=(400, 3)).astype("float32")   # channels on very different scales
    y = (x[:, 2] > 5.0).astype(int)                                         # only the smallest one matters
    w, b = fit_head(x, y)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    assert ((p >= 0.5) == y).mean() > 0.95
    assert abs(w[2]) > 10 * max(abs(w[0]), abs(w[1]) / 20), "the raw-feature weights undo the scaling"


def test_appliance_records_take_every_known_fracture_and_a_bounded_share_of_normals():
    def rec(i, label, appliance="", note="", source="fracatlas", split="train"):
        return Record(path=f"{i}.jpg", part="hand", label=label, group=str(i), study=str(i), source=source,
                      split=split, note=note, appliance=appliance)
    records = ([rec(i, 1, "cast") for i in range(3)] + [rec(i, 1, "none") for i in range(3, 6)]
               + [rec(6, 1, source="roboflow")]                                       # fractured, never labelled
               + [rec(i, 0) for i in range(100, 100 + MAX_NORMAL + 50)]               # FracAtlas normals: known
               + [rec(9, 0, source="roboflow", note="possible_fracture")]             # unknown
               + [rec(10, 1, "implant", split="test")])                               # test stays untouched
    chosen = appliance_records(records, "train")
    labels = [data.appliance_label(r) for r in chosen]
    assert sum(r.label == 1 for r in chosen) == 6 and labels.count(1) == 3
    assert sum(r.label == 0 for r in chosen) == MAX_NORMAL
    assert all(r.split == "train" for r in chosen) and data.UNKNOWN_APPLIANCE not in labels


@pytest.mark.slow
def test_the_head_rides_in_the_fracture_model(tiny_weights, tmp_path):
    import keras

    from fracture_detection.chain.predictor import Predictor
    from fracture_detection.io.images import load_image, to_model_input
    from fracture_detection.models import artifacts
    from fracture_detection.models.locator import mid_layer, pooled_trunk_features, trunk_features, with_appliance_head
    from fracture_detection.models.runtime import load as load_runner
    from fracture_detection.models.runtime import save_model
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    hand = artifacts.fracture_models(weights)["hand"]
    model = hand.load()
    films = sorted((FOLDERS / "Hand").rglob("*.jpg"))[:4]
    x = np.stack([to_model_input(load_image(f), hand.image_size) for f in films]).astype("float32")
    two = model.get_layer("backbone")
    trunk = keras.Model(two.input, two.get_layer(mid_layer(hand.meta["backbone"])).output)
    f = pooled_trunk_features(trunk_features(model, trunk, x, verbose=0))
    w = (f[0] - f[1]) / np.linalg.norm(f[0] - f[1]) ** 2 * 8        # film 0 well above, film 1 well below
    b = -float(w @ (f[0] + f[1]) / 2)
    expected = 1 / (1 + np.exp(-(f @ w + b)))
    before = load_runner(hand)(x)
    save_model(with_appliance_head(model, hand.meta["backbone"], w, b),
               dict(hand.meta, appliance={"label": "cast or implant", "threshold": 0.5}), weights, "fracture_hand")
    hand = artifacts.fracture_models(weights)["hand"]
    assert hand.meta["litert"]["outputs"] == ["probability", "cell_probability", "appliance_probability"]
    prob, cells, appliance = load_runner(hand, "litert")(x)
    np.testing.assert_allclose(appliance[:, 0], expected, atol=1e-4)
    np.testing.assert_allclose(prob, before[0], atol=1e-5)     # the fracture outputs are unchanged
    np.testing.assert_allclose(cells, before[1], atol=1e-5)
    assert expected[0] > 0.9 and expected[1] < 0.1
    predictor = Predictor(weights)
    preds = predictor.chain([str(p) for p in films], [predictor.prepare(str(p)) for p in films])
    for pred, e in zip(preds, expected):
        if pred.body_part == "hand":      # read by the fracture model that now carries the head
            assert pred.appliance_probability == pytest.approx(e, abs=2e-4)
            assert (pred.appliance == "cast or implant") == (pred.appliance_probability >= 0.5)
        elif pred.finding not in ("not_supported", "error") and "appliance_probability" in predictor.body_outputs:
            assert pred.appliance_probability is not None, "every analysed film says how likely an appliance is"


# --- the cut: said only where at least 90 % of the flagged films show one ---------------------

def test_the_precision_cut_worked_out_by_hand():
    from fracture_detection.training.appliance import select_precision_cut
    #        p: 0.99 0.95 0.93 0.90 0.85 0.80 0.70 0.60 0.50 0.40 0.30 0.20
    p = np.array([0.99, 0.95, 0.93, 0.90, 0.85, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20])
    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])   # 9 with one, 3 without
    y[4] = 0                                            # one without at 0.85: from 0.85 down, 5 of 6, ...
    cut = select_precision_cut(y, p)
    # precision from each cut: 0.99 1, 0.95 1, 0.93 1, 0.90 1, 0.85 4/5, 0.80 5/6, 0.70 6/7, 0.60 7/8,
    # 0.50 8/9 = 0.889, 0.40 8/10: only the top four reach 90 %; the lowest of them is 0.90
    assert cut["threshold"] == 0.90 and cut["n_flagged"] == 4
    assert cut["precision"] == 1.0 and cut["recall"] == pytest.approx(4 / 8)
    lo, hi = cut["precision_ci95"]
    assert lo < 1.0 == hi
    # a lower bar takes more films: at 85 %, down to 0.50 (8 of 9 = 0.889); at 80 %, down to 0.40 (8 of 10)
    assert select_precision_cut(y, p, 0.85)["threshold"] == 0.50
    assert select_precision_cut(y, p, 0.80)["threshold"] == 0.40


def test_the_precision_cut_takes_whole_ties_and_may_not_exist():
    from fracture_detection.training.appliance import select_precision_cut
    # ten films tied at 0.9, eight with one: no cut can take some of them only, and 80 % is not enough
    p = np.r_[[0.9] * 10, 0.5, 0.4]
    y = np.r_[[1] * 8, [0] * 2, 1, 0]
    cut = select_precision_cut(y, p)
    assert cut["threshold"] is None and cut["n_flagged"] == 0 and "90%" in cut["reason"]
    assert select_precision_cut(y, p, 0.8)["threshold"] == 0.5   # 9 of 11 from 0.5
    none = select_precision_cut(np.zeros(5, int), np.linspace(0, 1, 5))
    assert none["threshold"] is None and "no film with" in none["reason"]
    # compared as reported: 0.90004 and 0.89996 are both 0.9000, one tie
    tied = select_precision_cut([1, 0], [0.90004, 0.89996])
    assert tied["threshold"] is None


def test_the_entry_is_chosen_on_the_parts_the_line_is_said_on():
    from fracture_detection.training.appliance import appliance_entry
    # the hand and elbow films alone reach 90 % from 0.8 down; a leg at 0.95 without one does not count there
    p = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.3])
    y = np.array([0, 1, 1, 1, 0, 1, 0])
    parts = ["leg", "hand", "elbow", "hand", "elbow", "leg", "hand"]
    e = appliance_entry(y, p, {"with": 3, "without": 4}, {"source": "s", "label": "old"}, parts)
    assert e["threshold"] == 0.8 and e["label"] == "cast or implant" and e["source"] == "s"
    c = e["cut"]
    assert (c["n_flagged"], c["precision"], c["recall"]) == (3, 1.0, 1.0) and c["films"].startswith("elbow")
    assert c["all_regions"]["precision"] == pytest.approx(3 / 4) and c["by_part"]["hand"]["n_flagged"] == 2
    assert e["validation"]["tp"] == 3 and e["validation"]["fp"] == 1   # every region's films at the cut
    never = appliance_entry(np.array([0, 1]), np.array([0.9, 0.1]), None)
    assert never["threshold"] is None and never["cut"]["reason"]


def test_the_model_card_says_the_cut_and_its_precision_or_that_the_line_is_never_said():
    from fracture_detection.evaluation.model_card import _appliance_cut_text
    from fracture_detection.training.appliance import appliance_entry
    p = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.3])
    y = np.array([0, 1, 1, 1, 0, 1, 0])
    parts = ["leg", "hand", "elbow", "hand", "elbow", "leg", "hand"]
    said = _appliance_cut_text(appliance_entry(y, p, None, None, parts))
    assert "Said only from P ≥ 0.8000" in said and "precision 100.0%" in said and "recall 100.0% of 3" in said
    never = _appliance_cut_text(appliance_entry(np.array([0, 1]), np.array([0.9, 0.1]), None))
    assert never.startswith(" **Never said**") and "90%" in never
