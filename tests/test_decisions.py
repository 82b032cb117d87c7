"""Every decision rule against outcomes worked out by hand: no model, each test a fraction of a second.

A clinician reads the finding, the body part (or why the image was not analysed) and the study's
verdict; each is pinned here on and around its edges, so a rule that swaps, drops or shifts one fails.
"""
import re

import numpy as np
import pytest

from fracture_detection.chain import decisions
from fracture_detection.chain.decisions import (REJECT_DOUBT, REJECT_OTHER, REJECT_UNFAMILIAR, BodyPartRule,
                                                decide_body_parts, finding_edges, format_probabilities,
                                                fracture_finding, mura_rule, part_scores, select_cuts,
                                                study_verdict)
from fracture_detection.evaluation import metrics

# --- the fracture finding --------------------------------------------------------------

EDGES = (0.3, 0.8)   # No fracture found below 0.3, Likely FRACTURE from 0.8


@pytest.mark.parametrize("p, expected", [
    (1.0, "fractured"),
    (0.8001, "fractured"),
    (0.8, "fractured"),        # p >= fracture_from is fractured: the edge itself belongs to "fractured"
    (0.79996, "fractured"),    # reported as 0.8000: decided as it is reported
    (0.79994, "uncertain"),    # reported as 0.7999
    (0.7999, "uncertain"),
    (0.6, "uncertain"),
    (0.3001, "uncertain"),
    (0.3, "uncertain"),        # p < no_fracture_below is normal: the low edge itself is uncertain
    (0.29996, "uncertain"),    # reported as 0.3000
    (0.29994, "normal"),       # reported as 0.2999
    (0.2999, "normal"),
    (0.0, "normal"),
])
def test_finding_on_and_around_each_cut(p, expected):
    assert fracture_finding(p, EDGES) == expected


@pytest.mark.parametrize("p, expected", [(0.6, "fractured"), (0.60004, "fractured"), (0.59996, "fractured"),
                                         (0.59994, "normal"), (0.5999, "normal"), (0.9, "fractured"),
                                         (0.1, "normal")])
def test_equal_cuts_leave_nothing_uncertain(p, expected):
    assert fracture_finding(p, (0.6, 0.6)) == expected


def test_the_edges_come_from_the_cuts_or_from_an_older_models_band():
    assert finding_edges({"cuts": {"no_fracture_below": 0.21234, "fracture_from": 0.9}, "threshold": 0.5,
                          "uncertain_band": [0.4, 0.6]}) == (0.2123, 0.9)
    # weights made before the cuts: the band widened to contain the threshold, as they were decided
    assert finding_edges({"threshold": 0.5, "uncertain_band": [0.2, 0.4]}) == (0.2, 0.5)
    assert finding_edges({"threshold": 0.1, "uncertain_band": [0.2, 0.4]}) == (0.1, 0.4)
    assert finding_edges({"threshold": 0.45}) == (0.45, 0.45)


# --- the two cuts, chosen on validation ---------------------------------------------------

# A hand-made validation set of one part: 20 untreated fractured films, 4 fractured films in a cast,
# and 16 normal films.
UNTREATED = [0.15, 0.22, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.62,
             0.65, 0.70, 0.72, 0.75, 0.80, 0.82, 0.85, 0.88, 0.90, 0.95]
IN_CAST = [0.05, 0.97, 0.98, 0.99]
NORMAL = [0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.18, 0.20, 0.25, 0.28, 0.33, 0.38, 0.47, 0.66, 0.86]
Y = [1] * 24 + [0] * 16
P = UNTREATED + IN_CAST + NORMAL
IS_UNTREATED = [True] * 20 + [False] * 20


def test_cuts_by_hand_keep_both_promises():
    cuts = select_cuts(Y, P, IS_UNTREATED)
    # 5 % of 20 untreated fractures is 1: one may fall below the cut, so the cut is the 2nd lowest, 0.22
    # (the treated fracture at 0.05 does not count: the promise is about the films a reader needs help with)
    assert cuts["no_fracture_below"] == 0.22
    # from the top: 0.99 0.98 0.97 0.95 0.90 0.88 0.86(normal) 0.85 0.82 0.80 ... at 0.80 there are 10 films,
    # 9 fractured (90 %); at 0.75 11 films, 10 fractured (91 %); at 0.72 12, 11 (92 %); at 0.70 13, 12 (92 %);
    # 0.66 (normal): 14, 12 (86 %); 0.65: 15, 13 (87 %) ... never 90 % again below 0.70. So 0.70.
    assert cuts["fracture_from"] == 0.70
    assert cuts["basis"] == "untreated"
    findings = [fracture_finding(p, (cuts["no_fracture_below"], cuts["fracture_from"])) for p in P]
    missed = sum(f == "normal" for f, u in zip(findings, IS_UNTREATED) if u)
    assert missed == 1 <= 0.05 * 20
    called = [y for f, y in zip(findings, Y) if f == "fractured"]
    assert sum(called) / len(called) >= 0.9


def test_cuts_ties_belong_to_the_side_above():
    # two untreated fractures share the lowest value: with 1 allowed below (5 % of 20), the cut cannot
    # sit between them, so it sits at that value and neither is called normal
    p = [0.2, 0.2] + UNTREATED[2:]
    cuts = select_cuts([1] * 20, p, [True] * 20)
    assert cuts["no_fracture_below"] == 0.2
    assert [fracture_finding(v, (0.2, 1.0)) for v in p[:2]] == ["uncertain", "uncertain"]
    # a fracture cut takes every film at its value: 0.9 holds a normal and a fracture (50 %), so it
    # cannot be the cut even though the fracture alone above it would make 100 %
    cuts = select_cuts([1, 1, 0, 1], [0.95, 0.9, 0.9, 0.5], min_ppv=0.9)
    assert cuts["fracture_from"] == 0.95


def test_cuts_when_no_cut_reaches_the_ppv_call_nothing_fractured():
    cuts = select_cuts([0, 1, 1], [0.9, 0.5, 0.4], [False, True, True])
    assert cuts["fracture_from"] > 0.9
    assert fracture_finding(0.9, (cuts["no_fracture_below"], cuts["fracture_from"])) != "fractured"


def test_crossing_cuts_meet_at_the_fracture_cut():
    # the PPV cut falls among fractures in a cast (0.3: every film from there up is fractured) below the
    # lowest untreated fracture (0.7, none of 3 may fall below): the normal cut comes down to 0.3
    cuts = select_cuts([0, 1, 1, 1, 1, 1, 1], [0.1, 0.3, 0.35, 0.4, 0.7, 0.8, 0.9],
                       [False, False, False, False, True, True, True])
    assert (cuts["no_fracture_below"], cuts["fracture_from"]) == (0.3, 0.3)
    # where they do not cross, each stays where its own promise puts it
    cuts = select_cuts([0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.8, 0.9], [False, False, True, True, True])
    assert (cuts["no_fracture_below"], cuts["fracture_from"]) == (0.7, 0.7)


def test_without_untreated_labels_every_fracture_counts():
    cuts = select_cuts(Y, P)   # e.g. MURA: no appliance labels
    assert cuts["basis"] == "all fractured"
    assert cuts["no_fracture_below"] == 0.15  # 5 % of 24 is 1: the 2nd lowest fracture (0.05 is the lowest)


def test_cuts_keep_both_promises_on_random_sets():
    rng = np.random.default_rng(5)
    for _ in range(60):
        n = int(rng.integers(6, 40))
        y = rng.integers(0, 2, n)
        p = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)   # two decimals: many ties
        untreated = rng.random(n) < 0.6
        cuts = select_cuts(y, p, untreated)
        edges = (cuts["no_fracture_below"], cuts["fracture_from"])
        f = [fracture_finding(v, edges) for v in p]
        u = [fi for fi, yi, ui in zip(f, y, untreated) if yi and ui]
        if u:
            assert u.count("normal") <= 0.05 * len(u) + 1e-9
        called = [yi for fi, yi in zip(f, y) if fi == "fractured"]
        if called:
            assert np.mean(called) >= 0.9
        # the cuts are the best such: one step lower for the fracture cut would break its promise,
        # one step higher for the normal cut would break its own (unless the cuts met)
        below = sorted({v for v in p if v < edges[1]})
        if below:
            lower = below[-1]
            sel = [yi for v, yi in zip(p, y) if v >= lower]
            assert np.mean(sel) < 0.9
        if edges[0] < edges[1] and u:
            above = sorted({v for v in p if v > edges[0]})
            if above:
                misses = sum(1 for v, yi, ui in zip(p, y, untreated) if yi and ui and v < above[0])
                assert misses > 0.05 * len(u)


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


NEW_RULE = BodyPartRule(reject_index=3, target_cut=0.13, part_floor=0.6, ood_threshold=2.0)


@pytest.mark.parametrize("probs, ood, chosen, reason", [
    ([0.10, 0.05, 0.00, 0.85], 1.0, 0, ACCEPT),              # 'other' most probable, yet the parts' 0.15 >= 0.13
    ([0.02, 0.10, 0.00, 0.88], 1.0, 3, REJECT_OTHER),        # the three parts' sum 0.12 < 0.13
    ([0.03, 0.10, 0.00, 0.87], 1.0, 1, ACCEPT),              # exactly on the cut: kept
    ([0.02, 0.10, 0.00, 0.88], 9.0, 3, REJECT_OTHER),        # the cut is checked before the OOD score
    ([0.90, 0.05, 0.00, 0.05], 2.5, 3, REJECT_UNFAMILIAR),
    ([0.40, 0.40, 0.10, 0.10], 3.0, 3, REJECT_UNFAMILIAR),   # OOD is checked before the floor
    ([0.40, 0.40, 0.10, 0.10], 1.0, 3, REJECT_DOUBT),        # elbow's share 0.40 / 0.90 = 0.44 < 0.6
    ([0.08, 0.07, 0.00, 0.85], 1.0, 3, REJECT_DOUBT),        # a part, but which? 0.08 / 0.15 = 0.53 < 0.6
    ([0.54, 0.36, 0.00, 0.10], 1.0, 0, ACCEPT),              # 0.54 / 0.90 = 0.6 exactly: on the floor, kept
])
def test_new_body_part_rule_decides_on_the_three_parts(probs, ood, chosen, reason):
    got, reasons = decide_body_parts([probs], NEW_RULE, [ood])
    assert (int(got[0]), reasons[0]) == (chosen, reason)


def test_part_confidence_is_the_share_of_the_three_parts_under_the_new_rule_only():
    probs = [[0.10, 0.05, 0.00, 0.85], [0.70, 0.20, 0.00, 0.10]]
    best, confidence, total = part_scores(probs, NEW_RULE)
    assert best.tolist() == [0, 0]
    assert confidence.tolist() == [0.6667, 0.7778] and total.tolist() == [0.15, 0.9]
    best, confidence, total = part_scores(probs, RULE)  # older weights: the part's own probability
    assert confidence.tolist() == [0.1, 0.7]


def test_body_part_rule_from_metadata():
    meta = {"classes": CLASSES, "reject_class": "other", "reject_threshold": 0.98,
            "gate": {"floor": 0.7, "ood_threshold": 12.5}}
    assert BodyPartRule.from_meta(meta) == BodyPartRule(reject_index=3, reject_threshold=0.98, floor=0.7,
                                                        ood_threshold=12.5)
    assert BodyPartRule.from_meta({"classes": CLASSES, "reject_class": "other"}) == BodyPartRule(reject_index=3)
    new = {"classes": CLASSES, "reject_class": "other",
           "gate": {"target_cut": 0.13, "part_floor": 0.6, "ood_threshold": 2.0}}
    assert BodyPartRule.from_meta(new) == NEW_RULE and NEW_RULE.among_parts and not RULE.among_parts
    assert BodyPartRule.from_meta({"classes": CLASSES[:3]}) == BodyPartRule()


@pytest.mark.parametrize("reason, fragment", [
    (decisions.REJECT_COLOUR, "colour picture"),
    (REJECT_OTHER, "another part of the body"),
    (REJECT_UNFAMILIAR, "not one like those the tool was trained on"),
    (REJECT_DOUBT, "which part this is, elbow, hand or shoulder (most likely hand, confidence 0.45; at least 0.60 needed)"),
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


def test_worklist_order_never_moves_a_cast_or_implant_down_silently():
    """The order is the finding, then the distance above each model's fracture cut: a film with a
    visible cast is flagged beside its finding (see appliance_line), not hidden lower in the list."""
    from fracture_detection.app import presentation as pres
    from fracture_detection.chain.predictor import Prediction
    cast = Prediction(path="a", finding="fractured", fracture_probability=0.99, uncertain_band=[0.3, 0.8],
                      appliance="cast or implant", appliance_probability=0.9)
    plain = Prediction(path="b", finding="fractured", fracture_probability=0.80, uncertain_band=[0.3, 0.8])
    other_model = Prediction(path="d", finding="fractured", fracture_probability=0.85, uncertain_band=[0.2, 0.6])
    unsure = Prediction(path="c", finding="uncertain", fracture_probability=0.45, uncertain_band=[0.3, 0.8])
    assert sorted([unsure, plain, cast, other_model], key=pres.suspicion_key) == [other_model, cast, plain, unsure]
    assert "follow-up film" in pres.appliance_line(cast) and pres.appliance_line(plain) is None
    assert pres.table_finding(cast) == "Likely FRACTURE · cast/implant" and pres.table_finding(plain) == "Likely FRACTURE"
    lines = pres.detail_lines(cast)
    assert "Likely FRACTURE from 0.80 · No fracture below 0.30" in lines[0] and "Cast or implant in view" in lines[1]


@pytest.mark.parametrize("finding, p, text", [("fractured", 0.91, "0.91 ≥ 0.80"), ("normal", 0.12, "0.12 < 0.30"),
                                              ("uncertain", 0.5, "0.50 in 0.30–0.80"),
                                              ("fractured", 0.79996, "0.80 ≥ 0.80"),   # reported as 0.8000
                                              ("uncertain", 0.7999, "0.7999 in 0.3000–0.8000")])
def test_the_table_shows_the_cut_that_decided(finding, p, text):
    from fracture_detection.app import presentation as pres
    from fracture_detection.chain.predictor import Prediction
    pred = Prediction(path="a", fracture_probability=decisions.reported(p), uncertain_band=[0.3, 0.8])
    pred.finding = fracture_finding(pred.fracture_probability, pred.uncertain_band)
    assert pred.finding == finding
    assert pres.short_probability(pred) == text

def test_close_to_the_cut_is_the_deciding_cuts_own_interval():
    """The cliff at a cut: a probability within the deciding cut's bootstrap interval is flagged, on
    either side of it, and the finding stays what the rule says."""
    meta = {"cuts": {"no_fracture_below": 0.2923, "fracture_from": 0.9681,
                     "ci95": {"no_fracture_below": [0.2909, 0.3714], "fracture_from": [0.7035, 0.9681]}}}
    ci = decisions.cut_intervals(meta)
    assert ci == {"no_fracture_below": (0.2909, 0.3714), "fracture_from": (0.7035, 0.9681)}
    edges = decisions.finding_edges(meta)
    for p, finding, near in ((0.2922, "normal", "no_fracture_below"),     # "0.2922 < 0.2923" is green
                             (0.2909, "normal", "no_fracture_below"),     # on the interval's edge
                             (0.29089, "normal", "no_fracture_below"),    # rounds to 0.2909 as reported
                             (0.2908, "normal", None),
                             (0.10, "normal", None),
                             (0.50, "uncertain", None),                   # no cut decided it
                             (0.9681, "fractured", "fracture_from"),
                             (0.9900, "fractured", None)):
        assert decisions.fracture_finding(p, edges) == finding, p
        assert decisions.near_cut(p, finding, ci) == near, p
    assert decisions.cut_intervals({"cuts": {"no_fracture_below": 0.1}}) == {}
    assert decisions.near_cut(0.1, "normal", {}) is None
    assert decisions.near_cut(None, "error", ci) is None
