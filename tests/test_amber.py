"""Amber that ranks (chain.amber): the bins of the uncertain range on hand-made films, the bin of a
probability, and the sentence a reader sees, which never contradicts the finding.  No model."""
import numpy as np
import pytest

from fracture_detection.app import presentation as pres
from fracture_detection.chain import decisions
from fracture_detection.chain.amber import amber_bin, amber_bins, amber_sentence, amber_text, in_ten
from fracture_detection.chain.predictor import Prediction

EDGES = (0.2, 0.8)   # No fracture found below 0.2, Likely FRACTURE from 0.8


def _films():
    """30 films in the uncertain range (0.21-0.30, 0.41-0.50, 0.61-0.70), 10 outside it."""
    inside = np.r_[np.arange(21, 31), np.arange(41, 51), np.arange(61, 71)] / 100
    y_inside = np.r_[[0] * 9 + [1], [1] * 5 + [0] * 5, [1] * 8 + [0] * 2]
    outside = np.array([0.05, 0.1, 0.15, 0.1999, 0.8, 0.85, 0.9, 0.95, 0.99, 0.01])
    y_outside = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    return np.r_[y_inside, y_outside], np.r_[inside, outside]


def test_bins_split_the_uncertain_range_into_equal_thirds_worked_out_by_hand():
    y, p = _films()
    a = amber_bins(y, p, EDGES, "validation")
    assert a["basis"] == "validation" and a["n_films"] == 40
    assert a["prevalence"] == pytest.approx(np.mean(y))           # over every film, decided ones too
    # edges halfway between the tenth and eleventh film, and the twentieth and twenty-first
    assert a["bins"] == [{"from": 0.2, "to": 0.355, "n": 10, "fractured": 1},
                         {"from": 0.355, "to": 0.555, "n": 10, "fractured": 5},
                         {"from": 0.555, "to": 0.8, "n": 10, "fractured": 8}]


@pytest.mark.parametrize("n_inside, n_bins", [(0, 0), (3, 1), (7, 1), (10, 2), (14, 2), (15, 3), (40, 3)])
def test_fewer_bins_when_few_films_fall_in_the_range(n_inside, n_bins):
    p = np.round(np.linspace(0.25, 0.75, n_inside), 4) if n_inside else np.zeros(0)
    y = np.arange(n_inside) % 2
    a = amber_bins(np.r_[y, [0, 1]], np.r_[p, [0.1, 0.9]], EDGES)
    assert len(a["bins"]) == n_bins
    if n_bins:
        assert sum(b["n"] for b in a["bins"]) == n_inside
        assert all(b["n"] >= 5 for b in a["bins"]) or n_bins == 1


def test_ties_are_never_split_and_small_bins_are_merged():
    # 6 films at 0.3, 2 at 0.5, 7 from 0.6: an equal split would cut inside the tie; the 2 would make a bin of 2
    p = np.r_[[0.3] * 6, [0.5] * 2, np.arange(60, 67) / 100]
    y = np.r_[[0] * 6, [1, 1], [1] * 7]
    a = amber_bins(y, p, EDGES)
    assert [b["n"] for b in a["bins"]] == [6, 9]
    assert a["bins"][0]["to"] == 0.4 and a["bins"][1]["fractured"] == 9


def test_bins_are_contiguous_and_cover_the_range_on_any_films():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(0, 80))
        p = np.round(rng.random(n) ** rng.uniform(0.3, 3), int(rng.integers(1, 5)))   # coarse values: many ties
        y = (rng.random(n) < p).astype(int)
        low, high = sorted(np.round(rng.random(2), 4))
        a = amber_bins(y, p, (low, high))
        bins = a["bins"]
        inside = (np.round(p, 4) >= low) & (np.round(p, 4) < high)
        if not bins:
            assert not inside.any() or low >= high
            continue
        assert bins[0]["from"] == low and bins[-1]["to"] == high
        assert all(a_["to"] == b_["from"] and a_["from"] < a_["to"] for a_, b_ in zip(bins, bins[1:]))
        assert sum(b["n"] for b in bins) == inside.sum() and sum(b["fractured"] for b in bins) == y[inside].sum()
        assert len(bins) <= 3 and (len(bins) == 1 or min(b["n"] for b in bins) >= 5)


def _meta(amber=None, edges=EDGES):
    return {"cuts": {"no_fracture_below": edges[0], "fracture_from": edges[1]}, "amber": amber}


def test_the_bin_of_a_probability():
    y, p = _films()
    meta = _meta(amber_bins(y, p, EDGES))
    assert (amber_bin(0.25, meta).fractured, amber_bin(0.25, meta).n) == (1, 10)
    assert amber_bin(0.355, meta).share == 0.5          # on a bin edge: the bin above it, as for the cuts
    assert amber_bin(0.35496, meta).share == 0.5        # compared as reported: 0.3550
    assert amber_bin(0.35494, meta).share == 0.1        # reported as 0.3549
    assert amber_bin(0.7999, meta).share == 0.8
    assert amber_bin(0.2, meta).prevalence == pytest.approx(np.mean(y))
    for decided in (0.1999, 0.8, 0.95, 0.0):
        assert amber_bin(decided, meta) is None, "only an uncertain film has a bin"
    assert amber_bin(0.5, _meta()) is None and amber_bin(None, meta) is None
    moved = dict(meta, cuts={"no_fracture_below": 0.25, "fracture_from": 0.8})
    assert amber_bin(0.5, moved) is None, "bins made for other cuts are not used"


def test_in_ten_never_rounds_to_all_or_none():
    assert [in_ten(s) for s in (0, 0.04, 0.06, 0.6, 0.94, 0.96, 1)] == [
        "0 in 10", "fewer than 1 in 10", "1 in 10", "6 in 10", "9 in 10", "more than 9 in 10", "10 in 10"]


def test_the_ranking_sentence_never_contradicts_the_finding():
    """For any film and any bins: a sentence only beside an uncertain finding; it names no other finding,
    says it is a rank within Uncertain, and its counts are the bin's; the worklist puts the uncertain films
    in the order of their bins' shares, then by the distance to the fracture cut."""
    rng = np.random.default_rng(11)
    others = [pres.finding_text(f) for f in ("fractured", "normal")] + ["Likely FRACTURE", "No fracture found"]
    for _ in range(300):
        n = int(rng.integers(1, 120))
        p = np.round(rng.random(n), 4)
        y = (rng.random(n) < rng.random()).astype(int)
        low, high = sorted(np.round(rng.random(2), 4))
        meta = _meta(amber_bins(y, p, (low, high), str(rng.choice(["validation", "out-of-fold"]))), (low, high))
        for q in np.r_[np.round(rng.random(5), 4), low, high, max(low - 1e-4, 0)]:
            finding = decisions.fracture_finding(q, (low, high))
            b = amber_bin(q, meta)
            pred = Prediction(path="x", finding=finding, fracture_probability=float(q), uncertain_band=[low, high])
            if b is not None:
                pred.amber_share, pred.amber_n, pred.amber_fractured = b.share, b.n, b.fractured
                pred.amber_prevalence, pred.amber_basis = b.prevalence, b.basis
            text = amber_text(pred)
            assert (text is not None) == (b is not None)
            if finding != "uncertain":
                assert b is None and text is None
                continue
            if text is None:
                continue
            assert text.startswith("Rank within Uncertain, not a finding: ")
            assert not any(o in text for o in others), text
            assert f"({b.fractured} of {b.n}, against" in text
            assert text in pres.detail_lines(pred)


def test_a_decided_finding_never_carries_a_ranking_even_if_fields_are_set():
    pred = Prediction(path="x", finding="fractured", fracture_probability=0.9, uncertain_band=[0.2, 0.8],
                      amber_share=0.1, amber_n=10, amber_fractured=1, amber_prevalence=0.4, amber_basis="validation")
    assert amber_text(pred) is None and not any("Rank within" in line for line in pres.detail_lines(pred))


def test_sentence_wording():
    assert amber_sentence(15, 25, 0.4) == (
        "Rank within Uncertain, not a finding: of validation films scored like this, 6 in 10 were fractured "
        "(15 of 25, against 40% of all those films).")
    assert "cross-validation films (out of fold)" in amber_sentence(1, 5, 0.3, "out-of-fold")


def test_the_worklist_orders_uncertain_films_by_their_share_then_by_the_cut():
    band = [0.3, 0.8]

    def unsure(name, p, share):
        return Prediction(path=name, finding="uncertain", fracture_probability=p, uncertain_band=band,
                          amber_share=share, amber_n=None if share is None else 10)
    low_share_high_p = unsure("a", 0.75, 0.2)
    high_share = unsure("b", 0.5, 0.7)
    same_share_higher_p = unsure("c", 0.6, 0.7)
    unmeasured = unsure("d", 0.79, None)
    fractured = Prediction(path="e", finding="fractured", fracture_probability=0.9, uncertain_band=band)
    normal = Prediction(path="f", finding="normal", fracture_probability=0.1, uncertain_band=band)
    order = sorted([normal, unmeasured, low_share_high_p, high_share, fractured, same_share_higher_p],
                   key=pres.suspicion_key)
    assert [p.path for p in order] == ["e", "c", "b", "a", "d", "f"]
    # no film measured (older weights): the distance to the fracture cut, as before
    plain = [unsure(n, p, None) for n, p in (("x", 0.4), ("y", 0.7), ("z", 0.5))]
    assert [p.path for p in sorted(plain, key=pres.suspicion_key)] == ["y", "z", "x"]


@pytest.mark.slow
def test_training_writes_amber_and_amber_only_rewrites_nothing_else(tiny_weights, tmp_path):
    """A trained model's metadata carries the amber bins in the documented format; ``--amber-only``
    stores them again from the validation films of the weights' own split, and changes no other field
    and no model file."""
    import hashlib
    import json
    import shutil

    from conftest import FOLDERS, run_script
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    path = weights / "fracture_hand.json"
    meta = json.loads(path.read_text())
    a = meta["amber"]
    low, high = decisions.finding_edges(meta)
    assert a["basis"] == "validation" and a["n_films"] == meta["validation"]["n"]
    assert a["prevalence"] == pytest.approx(meta["validation"]["positives"] / meta["validation"]["n"])
    if a["bins"]:
        assert a["bins"][0]["from"] == low and a["bins"][-1]["to"] == high
    digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in weights.iterdir() if f.suffix != ".json"}
    path.write_text(json.dumps({k: v for k, v in meta.items() if k != "amber"}))
    run_script("training_fracture.py", "--data", FOLDERS, "--out", weights, "--amber-only", "--parts", "hand", "--quiet")
    again = json.loads(path.read_text())
    assert {k: v for k, v in again.items() if k != "amber"} == {k: v for k, v in meta.items() if k != "amber"}
    assert again["amber"]["n_films"] == a["n_films"] and again["amber"]["prevalence"] == a["prevalence"]
    assert sum(b["n"] for b in again["amber"]["bins"]) == pytest.approx(sum(b["n"] for b in a["bins"]), abs=1)
    assert digests == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in weights.iterdir()
                       if f.suffix != ".json"}


def test_the_test_split_figures_of_the_bins():
    from fracture_detection.evaluation.evaluate import amber_figures
    y, p = _films()
    meta = _meta(amber_bins(y, p, EDGES))
    # other films: 2 in the first bin (1 fractured), none in the second, 3 in the last (3 fractured), 2 decided
    t = amber_figures([1, 0, 1, 1, 1, 0, 1], [0.21, 0.3, 0.6, 0.7, 0.7999, 0.1, 0.9], meta)
    assert [(b["n"], b["fractured"]) for b in t["bins"]] == [(2, 1), (0, 0), (3, 3)]
    assert t["n_uncertain"] == 5 and t["auc_among_uncertain"] == pytest.approx(3 / 4)   # 0.21 below the 0.3
    assert amber_figures([0, 1], [0.3, 0.5], _meta()) is None
