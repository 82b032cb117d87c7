"""Every decision rule against outcomes worked out by hand: no model, each test a fraction of a second.

A clinician reads the finding, the body part (or why the image was not analysed) and the study's
verdict; each is pinned here on and around its edges, so a rule that swaps, drops or shifts one fails.
"""
import re

import numpy as np
import pytest

from fracture_detection.chain import decisions
from fracture_detection.evaluation import metrics
from fracture_detection.chain.decisions import (REJECT_DOUBT, REJECT_OTHER, REJECT_UNFAMILIAR, BodyPartRule,
                                          decide_body_parts, format_probabilities, fracture_finding,
                                          mura_rule, select_band, study_verdict)

# --- the fracture finding --------------------------------------------------------------

THR, BAND = 0.6, [0.3, 0.8]


@pytest.mark.parametrize("p, expected", [
    (1.0, "fractured"),
    (0.8001, "fractured"),
    (0.8, "fractured"),        # p >= high is fractured: the edge itself belongs to "fractured"
    (0.79996, "fractured"),    # reported as 0.8000: decided as it is reported
    (0.79994, "uncertain"),    # reported as 0.7999
    (0.7999, "uncertain"),
    (0.6, "uncertain"),        # the threshold lies inside the band
    (0.3001, "uncertain"),
    (0.3, "uncertain"),        # p < low is normal: the low edge itself is uncertain
    (0.29996, "uncertain"),    # reported as 0.3000
    (0.29994, "normal"),       # reported as 0.2999
    (0.2999, "normal"),
    (0.0, "normal"),
])
def test_finding_on_and_around_each_edge_of_the_band(p, expected):
    assert fracture_finding(p, THR, BAND) == expected


@pytest.mark.parametrize("p, expected", [(0.6, "fractured"), (0.60004, "fractured"), (0.59996, "fractured"),
                                         (0.59994, "normal"), (0.5999, "normal"), (0.9, "fractured"),
                                         (0.1, "normal")])
def test_a_band_of_zero_width_at_the_threshold_leaves_nothing_uncertain(p, expected):
    assert fracture_finding(p, THR, [THR, THR]) == expected


@pytest.mark.parametrize("threshold, band, p, expected", [
    (0.5, [0.2, 0.4], 0.45, "uncertain"),   # band below the threshold: widened up to it, [0.2, 0.5]
    (0.5, [0.2, 0.4], 0.5, "fractured"),
    (0.5, [0.2, 0.4], 0.1999, "normal"),
    (0.1, [0.2, 0.4], 0.15, "uncertain"),   # band above the threshold: widened down to it, [0.1, 0.4]
    (0.1, [0.2, 0.4], 0.0999, "normal"),
    (0.1, [0.2, 0.4], 0.4, "fractured"),
])
def test_the_band_always_contains_the_threshold(threshold, band, p, expected):
    assert fracture_finding(p, threshold, band) == expected


# --- the body part ---------------------------------------------------------------------

CLASSES = ["elbow", "hand", "shoulder", "other"]
RULE = BodyPartRule(reject_index=3, reject_threshold=0.5, floor=0.6, ood_threshold=2.0)
ACCEPT = None


@pytest.mark.parametrize("probs, ood, chosen, reason", [
    ([0.70, 0.10, 0.10, 0.10], 1.0, 0, ACCEPT),
    ([0.20, 0.20, 0.05, 0.55], 1.0, 3, REJECT_OTHER),       # P(other) >= 0.5
    ([0.30, 0.15, 0.05, 0.50], 1.0, 3, REJECT_OTHER),       # exactly at the reject threshold: rejected
    ([0.30, 0.15, 0.05, 0.50], 9.0, 3, REJECT_OTHER),       # 'other' is checked before the OOD score
    ([0.80, 0.10, 0.05, 0.05], 2.5, 3, REJECT_UNFAMILIAR),  # OOD score above 2.0
    ([0.80, 0.10, 0.05, 0.05], 2.0, 0, ACCEPT),             # exactly at the OOD threshold: accepted
    ([0.45, 0.40, 0.10, 0.05], 3.0, 3, REJECT_UNFAMILIAR),  # OOD is checked before the floor
    ([0.45, 0.40, 0.10, 0.05], 1.0, 3, REJECT_DOUBT),       # best part 0.45 < floor 0.6
    ([0.10, 0.20, 0.30, 0.40], 1.0, 3, REJECT_DOUBT),       # best *part* (shoulder 0.3), not 'other'
    ([0.30, 0.60, 0.05, 0.05], 1.0, 1, ACCEPT),             # exactly at the floor: accepted
])
def test_body_part_decision_each_reason_in_its_order(probs, ood, chosen, reason):
    got, reasons = decide_body_parts([probs], RULE, [ood])
    assert (int(got[0]), reasons[0]) == (chosen, reason)


def test_body_part_just_below_the_reject_threshold_then_meets_the_floor():
    # P(other) 0.44 < 0.5, so not 'other'; best part hand 0.50 < floor 0.6: doubtful
    got, reasons = decide_body_parts([[0.05, 0.50, 0.01, 0.44]], RULE, [1.0])
    assert (int(got[0]), reasons[0]) == (3, REJECT_DOUBT)
    lower_floor = BodyPartRule(reject_index=3, reject_threshold=0.5, floor=0.5, ood_threshold=2.0)
    got, reasons = decide_body_parts([[0.05, 0.50, 0.01, 0.44]], lower_floor, [1.0])
    assert (int(got[0]), reasons[0]) == (1, ACCEPT)


def test_body_part_rows_are_decided_independently_in_one_batch():
    probs = [[0.7, 0.1, 0.1, 0.1], [0.2, 0.2, 0.05, 0.55], [0.8, 0.1, 0.05, 0.05], [0.45, 0.4, 0.1, 0.05]]
    got, reasons = decide_body_parts(probs, RULE, [1.0, 1.0, 2.5, 1.0])
    assert got.tolist() == [0, 3, 3, 3]
    assert reasons == [ACCEPT, REJECT_OTHER, REJECT_UNFAMILIAR, REJECT_DOUBT]


def test_body_part_rules_that_are_not_set_are_not_applied():
    doubtful_and_odd = [[0.45, 0.40, 0.10, 0.05]]
    only_other = BodyPartRule(reject_index=3, reject_threshold=0.5)
    assert decide_body_parts(doubtful_and_odd, only_other, [9.0])[1] == [ACCEPT]  # no floor, no OOD limit
    with_ood = BodyPartRule(reject_index=3, reject_threshold=0.5, ood_threshold=2.0)
    assert decide_body_parts(doubtful_and_odd, with_ood)[1] == [ACCEPT]  # no OOD score given
    # without a reject threshold, 'other' rejects when it is the most probable class
    argmax_rule = BodyPartRule(reject_index=3)
    got, reasons = decide_body_parts([[0.2, 0.2, 0.1, 0.5], [0.4, 0.1, 0.1, 0.4]], argmax_rule)
    assert got.tolist() == [3, 0] and reasons == [REJECT_OTHER, ACCEPT]
    # without a reject class: the plain argmax, never rejected
    got, reasons = decide_body_parts([[0.1, 0.2, 0.7]], BodyPartRule())
    assert got.tolist() == [2] and reasons == [ACCEPT]
    got, reasons = decide_body_parts(np.zeros((0, 4)), RULE)
    assert got.tolist() == [] and reasons == []


def test_body_part_rule_from_metadata():
    meta = {"classes": CLASSES, "reject_class": "other", "reject_threshold": 0.98,
            "gate": {"floor": 0.7, "ood_threshold": 12.5}}
    assert BodyPartRule.from_meta(meta) == BodyPartRule(reject_index=3, reject_threshold=0.98, floor=0.7,
                                                        ood_threshold=12.5)
    assert BodyPartRule.from_meta({"classes": CLASSES, "reject_class": "other"}) == BodyPartRule(reject_index=3)
    assert BodyPartRule.from_meta({"classes": CLASSES[:3]}) == BodyPartRule()


@pytest.mark.parametrize("reason, fragment", [
    (decisions.REJECT_COLOUR, "colour picture"),
    (REJECT_OTHER, "another part of the body"),
    (REJECT_UNFAMILIAR, "not one like those the tool was trained on"),
    (REJECT_DOUBT, "(most likely hand, probability 0.45; at least 0.60 needed)"),
])
def test_rejection_message_says_why_in_one_sentence(reason, fragment):
    msg = decisions.rejection_message(reason, ["elbow", "hand", "shoulder"], "hand", 0.45, 0.6)
    assert fragment in msg and msg.endswith(".") and "\n" not in msg
    if reason != decisions.REJECT_COLOUR:
        assert "elbow, hand or shoulder" in msg or reason == REJECT_DOUBT


# --- threshold and band on a hand-made validation set -----------------------------------

# seven validation images, sorted by probability; one fracture (0.3) hides among the normals
Y_VAL = [0, 0, 1, 0, 1, 1, 1]
P_VAL = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.9]


def test_youden_threshold_by_hand():
    # fractured when p >= t; 3 normal, 4 fractured images:
    #   t=0.9: sens 1/4 spec 3/3 -> J 0.25     t=0.4: sens 3/4 spec 2/3 -> J 0.42
    #   t=0.7: sens 2/4 spec 3/3 -> J 0.50     t=0.3: sens 4/4 spec 2/3 -> J 0.67
    #   t=0.6: sens 3/4 spec 3/3 -> J 0.75     t=0.2: sens 4/4 spec 1/3 -> J 0.33
    assert metrics.youden_threshold(Y_VAL, P_VAL) == 0.6
    assert metrics.youden_threshold([0, 0, 0], [0.1, 0.5, 0.9]) == 0.5  # one class only


def test_uncertain_band_by_hand():
    # at threshold 0.6 with no band: normals 0.1 0.2 0.3 0.4 (3 of 4 right), fractured 0.6 0.7 0.9
    # (3 of 3): 6 of 7 = 86 % < 90 %. Leaving one image uncertain: 0.4 -> 5 of 6; 0.6 -> 5 of 6 (83 %).
    # Leaving two: 0.3 and 0.4 -> normals 0.1 0.2, fractured 0.6 0.7 0.9: 5 of 5 right; 0.4 and 0.6 ->
    # 4 of 5; 0.6 and 0.7 -> 4 of 5. So the band is [0.3, 0.6]: 0.3 and 0.4 uncertain.
    band = select_band(Y_VAL, P_VAL, 0.6, min_accuracy=0.9)
    assert band == [0.3, 0.6]
    assert [fracture_finding(p, 0.6, band) for p in P_VAL] == [
        "normal", "normal", "uncertain", "uncertain", "fractured", "fractured", "fractured"]
    # 80 % right is enough with no band (6 of 7)
    assert select_band(Y_VAL, P_VAL, 0.6, min_accuracy=0.8) == [0.6, 0.6]


def test_uncertain_band_prefers_the_narrower_of_two_equally_good_bands():
    # y 0 1 1 at 0.2 0.4 0.8, threshold 0.5, all decided right: 0.4 must be uncertain. Low 0.4 with
    # high 0.5 or with high 0.8 both leave only 0.4 uncertain; the narrower [0.4, 0.5] wins.
    assert select_band([0, 1, 1], [0.2, 0.4, 0.8], 0.5, min_accuracy=1.0) == [0.4, 0.5]


def test_uncertain_band_when_no_band_reaches_the_accuracy_holds_everything():
    # the highest image is normal and always decided fractured by any band: nothing reaches 100 %
    band = select_band([1, 0], [0.2, 0.8], 0.5, min_accuracy=1.0)
    assert [fracture_finding(p, 0.5, band) for p in (0.2, 0.8)] == ["uncertain", "uncertain"]
    assert select_band([], [], 0.42) == [0.42, 0.42]


def _fewest_uncertain_by_brute_force(y, p, thr, min_accuracy):
    edges = sorted(set(p) | {thr})
    best = len(p)
    for low in (e for e in edges if e <= thr):
        for high in (e for e in edges if e >= thr):
            f = [fracture_finding(v, thr, [low, high]) for v in p]
            decided = [(fi == "fractured") == bool(yi) for fi, yi in zip(f, y) if fi != "uncertain"]
            if sum(decided) >= min_accuracy * len(decided) - 1e-9:
                best = min(best, f.count("uncertain"))
    return best


def test_uncertain_band_is_the_best_band_on_random_sets():
    rng = np.random.default_rng(5)
    for _ in range(40):
        n = int(rng.integers(4, 14))
        y = rng.integers(0, 2, n)
        p = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 4)
        thr = float(np.round(rng.choice(p), 4))
        band = select_band(y, p, thr, 0.9)
        f = [fracture_finding(v, thr, band) for v in p]
        decided = [(fi == "fractured") == bool(yi) for fi, yi in zip(f, y) if fi != "uncertain"]
        assert sum(decided) >= 0.9 * len(decided) - 1e-9
        assert f.count("uncertain") == _fewest_uncertain_by_brute_force(list(y), list(p), thr, 0.9)


# --- the study ------------------------------------------------------------------------

@pytest.mark.parametrize("findings, verdict", [
    (["normal", "fractured", "uncertain"], "fractured"),
    (["uncertain", "fractured"], "fractured"),     # one of each: fractured wins
    (["fractured", "fractured"], "fractured"),
    (["normal", "uncertain"], "uncertain"),
    (["uncertain", "normal", "normal"], "uncertain"),
    (["normal", "normal"], "normal"),
    (["normal", "not_supported", "error"], "normal"),  # views not analysed do not change the verdict
    (["not_supported", "error"], "not_supported"),
    (["error", "error"], "error"),
    (["not_supported"], "not_supported"),
    ([], "not_supported"),
])
def test_study_verdict(findings, verdict):
    assert study_verdict(findings) == verdict
    assert study_verdict(iter(findings)) == verdict


def test_mura_rule_is_strictly_above_one_half():
    assert mura_rule(0.5) is False
    assert mura_rule(np.mean([0.25, 0.75])) is False    # a mean of exactly 0.5 is normal
    assert mura_rule(0.5000001) is True
    assert mura_rule(0.4999) is False
    assert mura_rule([0.49, 0.5, 0.51]).tolist() == [False, False, True]


# --- what a person reads -----------------------------------------------------------------

@pytest.mark.parametrize("values, texts", [
    ((0.5, 0.6), ("0.50", "0.60")),
    ((0.6849, 0.6843), ("0.685", "0.684")),          # 0.68 and 0.68 would read the same
    ((0.6843, 0.6843), ("0.68", "0.68")),            # the same reported number may read the same
    ((0.68434, 0.6843), ("0.68", "0.68")),           # ... which 0.68434 is, once reported
    ((0.99996, 0.7), ("> 0.99", "0.70")),            # reported as 1.0000: never "1.00"
    ((0.996, 0.5), ("> 0.99", "0.50")),              # would round to 1.00
    ((0.9996, 0.9994), ("> 0.999", "0.999")),        # more decimals at an edge, still never 1.000
    ((0.004, 0.3), ("< 0.01", "0.30")),              # never "0.00"
    ((0.0, 0.3), ("< 0.01", "0.30")),
    ((0.30004, 0.3, 0.8), ("0.30", "0.30", "0.80")),  # reported as 0.3000, equal to the edge
    ((0.3006, 0.3, 0.8), ("0.301", "0.300", "0.800")),
])
def test_format_probabilities(values, texts):
    assert format_probabilities(*values) == texts


def _interval(text):
    """The probabilities a text can stand for."""
    number = float(re.sub(r"[<> ]", "", text))
    step = 10.0 ** -len(text.split(".")[1])
    if text.startswith(">"):
        return number, 1.0
    if text.startswith("<"):
        return 0.0, number
    return number - step / 2, number + step / 2


def test_format_probabilities_never_contradicts_the_numbers():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.random(300), 1 - rng.random(50) * 1e-3, rng.random(50) * 1e-3])
    for p in values:
        edges = [float(np.clip(p + d, 0, 1)) for d in rng.normal(0, 0.002, 2)]
        texts = format_probabilities(p, *edges)
        for v, t in zip([p, *edges], texts):
            lo, hi = _interval(t)
            assert lo - 1e-12 <= decisions.reported(v) <= hi + 1e-12, (v, t)
            assert t not in ("1.00", "0.00", "1.000", "0.000")
        for e, t in zip(edges, texts[1:]):
            if decisions.reported(e) != decisions.reported(p):
                assert t != texts[0], (p, e, texts)


def test_worklist_order_puts_a_cast_or_implant_after_other_films_of_the_same_finding():
    """A follow-up film of a known, treated fracture must not top the worklist."""
    from fracture_detection.app import presentation as pres
    from fracture_detection.chain.predictor import Prediction
    cast = Prediction(path="a", finding="fractured", fracture_probability=0.99, threshold=0.5,
                      appliance="cast or implant", appliance_probability=0.9)
    plain = Prediction(path="b", finding="fractured", fracture_probability=0.80, threshold=0.5)
    unsure = Prediction(path="c", finding="uncertain", fracture_probability=0.45, threshold=0.5)
    assert sorted([unsure, cast, plain], key=pres.suspicion_key) == [plain, cast, unsure]
