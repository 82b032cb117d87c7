"""Every decision the tool takes from a model's numbers, in one place, with no model needed.

* :func:`fracture_finding`: a fracture probability -> fractured, normal or uncertain, at the model's two
  cuts (:func:`select_cuts` chooses them on validation; :func:`finding_edges` reads them).
* :func:`decide_body_parts`: body-part probabilities (and an out-of-distribution score) ->
  a part, or *not supported* with the reason.
* :func:`study_verdict`: the findings of a study's views -> the study's finding.
* :func:`mura_rule`: MURA's study rule (mean probability above 0.5), kept as an evaluation figure.
* :func:`select_cuts`: the two cuts that keep the reader's two promises on validation data: a green
  "No fracture found" rarely wrong about an untreated fracture, a red "Likely FRACTURE" usually right.
* :func:`format_probabilities`: what a person reads, never contradicting the finding.

Probabilities are compared as they are reported (rounded to :data:`DECIMALS` places), and
cuts are stored rounded the same way, so a reported number can always be checked against the
reported finding: fractured means ``p >= fracture_from``, normal ``p < no_fracture_below``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DECIMALS = 4
FINDINGS = ("fractured", "normal", "uncertain", "not_supported", "error")
DECIDED = ("fractured", "normal")
# the one vocabulary a person reads, in the app, the PDF report and the command line's text output
FINDING_WORDS = {"fractured": "Likely FRACTURE", "uncertain": "Uncertain", "normal": "No fracture found",
                 "not_supported": "Not analysed", "error": "Could not be read"}
NEAR_CUT_WORDS = "close to the cut: review"   # said beside a finding whose probability is near its cut

# why an image is not analysed (keys of Prediction.rejection)
REJECT_OTHER = "other_region"      # the body-part model reads another region
REJECT_DOUBT = "doubtful_part"     # no part is probable enough
REJECT_UNFAMILIAR = "unfamiliar"   # the image is unlike every training image of the three parts
REJECT_COLOUR = "colour"           # a colour picture, not a radiograph
REJECT_NO_MODEL = "no_fracture_model"  # a supported part whose fracture model is not installed
REJECT_REASONS = (REJECT_OTHER, REJECT_DOUBT, REJECT_UNFAMILIAR, REJECT_COLOUR)


def reported(p) -> float | None:
    """A probability as it is reported and decided on."""
    return None if p is None else round(float(p), DECIMALS)


# --- fracture -------------------------------------------------------------------------

def fracture_finding(p: float, edges) -> str:
    """``fractured`` when ``p >= edges[1]`` (Likely FRACTURE from there), ``normal`` when ``p < edges[0]``
    (No fracture found below it), else ``uncertain``.  ``p`` is rounded as reported first; a value
    exactly on an edge belongs to the side above it."""
    p = reported(p)
    low, high = edges
    if p >= high:
        return "fractured"
    if p < low:
        return "normal"
    return "uncertain"


def finding_edges(meta: dict) -> tuple[float, float]:
    """``(no_fracture_below, fracture_from)`` of a fracture model's metadata: its ``cuts`` where it has
    them; else (weights made before the cuts) the uncertain band widened to contain the threshold."""
    cuts = meta.get("cuts")
    if cuts:
        return reported(cuts["no_fracture_below"]), reported(cuts["fracture_from"])
    threshold = reported(meta.get("threshold", 0.5))
    band = meta.get("uncertain_band") or [threshold, threshold]
    return min(reported(band[0]), threshold), max(reported(band[1]), threshold)


def cut_intervals(meta: dict) -> dict[str, tuple[float, float]]:
    """The 95 % bootstrap interval of each cut, as a fracture model's metadata holds it (``cuts.ci95``);
    empty for weights without one."""
    ci = (meta.get("cuts") or {}).get("ci95") or {}
    return {k: (reported(v[0]), reported(v[1])) for k, v in ci.items()
            if k in ("no_fracture_below", "fracture_from") and v and None not in v}


def near_cut(p: float, finding: str, intervals: dict) -> str | None:
    """The cut that decided a finding (``no_fracture_below`` for normal, ``fracture_from`` for fractured)
    when the probability, as reported, lies within that cut's own 95 % bootstrap interval: another
    validation sample could have put the cut on the other side of it.  None otherwise, and for a finding
    no cut decided (uncertain: already left to the reader).  The finding stays what the rule says."""
    cut = {"normal": "no_fracture_below", "fractured": "fracture_from"}.get(finding)
    if cut is None or p is None or cut not in intervals:
        return None
    low, high = intervals[cut]
    return cut if low <= reported(p) <= high else None


def study_verdict(findings) -> str:
    """A study is fractured when any view is; else uncertain when any view is; else normal when
    any view was decided normal; ``not_supported`` when no view was analysed (``error`` when none
    could even be read).  Each view was decided at its own model's cuts."""
    findings = list(findings)
    for verdict in ("fractured", "uncertain", "normal"):
        if verdict in findings:
            return verdict
    return "error" if findings and all(f == "error" for f in findings) else "not_supported"


MURA_RULE_CUT = 0.5


def mura_rule(mean_probability) -> np.ndarray | bool:
    """MURA's study rule: abnormal when the mean of the views' probabilities is *above* 0.5
    (exactly 0.5 is normal).  An evaluation figure, not what the app shows."""
    m = np.asarray(mean_probability, dtype=float)
    out = m > MURA_RULE_CUT
    return bool(out) if out.ndim == 0 else out


MAX_MISSED_UNTREATED = 0.05  # at most this share of untreated fractured validation films below "No fracture"
MIN_FRACTURE_PPV = 0.90       # at least this share of validation films from "Likely FRACTURE" up are fractured


def select_cuts(y_true, prob, untreated=None, max_missed: float = MAX_MISSED_UNTREATED,
                min_ppv: float = MIN_FRACTURE_PPV) -> dict:
    """The two cuts of a fracture model, each keeping one promise to the reader on the data given:

    * ``no_fracture_below``: the highest cut under which at most ``max_missed`` of the *untreated*
      fractured films fall (``untreated``: True for a fractured film with no cast, splint or implant in
      view; where no film is known to be untreated, every fractured film counts).  With ``n`` such films
      that is the ``floor(max_missed * n) + 1``-th lowest of their probabilities;
    * ``fracture_from``: the lowest cut from which at least ``min_ppv`` of all the films are fractured;
      above every film (nothing called fractured) when no cut gets there.

    Ties: a film exactly on a cut belongs to the side above it (``p < no_fracture_below`` is normal,
    ``p >= fracture_from`` fractured), both here and in :func:`fracture_finding`.  Should the cuts cross
    (``fracture_from`` below ``no_fracture_below``), ``no_fracture_below`` comes down to ``fracture_from``:
    both promises still hold and nothing is uncertain.  Every cut is a reported probability."""
    y = np.asarray(y_true, dtype=int)
    p = np.round(np.asarray(prob, dtype=float), DECIMALS)
    fractured = y == 1
    known = fractured & (np.asarray(untreated, dtype=bool) if untreated is not None else False)
    basis = "untreated" if known.any() else "all fractured"
    q = np.sort(p[known] if known.any() else p[fractured])
    if len(q):
        allowed = int(np.floor(max_missed * len(q) + 1e-9))
        low = float(q[allowed])
    else:
        low = 0.0
    high = float(round(float(p.max()) + 10 ** -DECIMALS, DECIMALS)) if len(p) else 1.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    n_from = np.arange(1, len(ps) + 1)
    ppv = np.cumsum(ys) / n_from
    last = np.r_[ps[1:] != ps[:-1], True]  # a cut takes every film at its value
    ok = np.nonzero(last & (ppv >= min_ppv - 1e-12))[0]
    if len(ok):
        high = float(ps[ok[-1]])  # the lowest qualifying cut
    low = min(low, high)
    return {"no_fracture_below": low, "fracture_from": high, "basis": basis,
            "max_missed_untreated": max_missed, "min_fracture_ppv": min_ppv}


# --- body part ------------------------------------------------------------------------

@dataclass(frozen=True)
class BodyPartRule:
    """What the body-part model's metadata says about rejecting an image (all optional).

    The rule the gate chooses now (:mod:`training.gate`) decides on the target regions' probabilities:
    *another region* when the summed probability of every class but *other* is below ``target_cut``,
    and *cannot tell the part* when the best region's share of that sum is below ``part_floor``.
    ``regions`` names each class's region (the fracture model that reads it): a model that learns
    views (finger, hand, wrist, forearm, elbow, shoulder) routes by the summed probability of a
    region's views, so a doubt between hand and wrist costs nothing; without it each class is its own
    region (models made before views).  Older weights carry ``reject_threshold`` (P(other) at or
    above it) and ``floor`` (the best part's own probability below it), which still apply to them."""
    reject_index: int | None = None          # index of the 'other' class
    reject_threshold: float | None = None    # older weights: not supported when P(other) >= this
    floor: float | None = None               # older weights: not supported when the best part's probability < this
    ood_threshold: float | None = None       # not supported when the OOD score > this
    target_cut: float | None = None          # not supported when the target regions' summed probability < this
    part_floor: float | None = None          # cannot tell the region when its share of that sum < this
    regions: tuple | None = None             # each class's region, in class order (None: each class its own)

    @classmethod
    def from_meta(cls, meta: dict) -> "BodyPartRule":
        classes = list(meta.get("classes", []))
        reject = meta.get("reject_class")
        gate = meta.get("gate") or {}
        named = meta.get("regions") or {}
        return cls(reject_index=classes.index(reject) if reject in classes else None,
                   reject_threshold=meta.get("reject_threshold"),
                   floor=gate.get("floor"), ood_threshold=gate.get("ood_threshold"),
                   target_cut=gate.get("target_cut"), part_floor=gate.get("part_floor"),
                   regions=tuple(named.get(c, c) for c in classes) if named else None)

    @property
    def among_parts(self) -> bool:
        """Whether a part's confidence is its share of the three parts' probability (the new rule)."""
        return self.target_cut is not None or self.part_floor is not None

    @property
    def confidence_floor(self) -> float | None:
        """The floor the part's confidence (:func:`part_scores`) is held to."""
        return self.part_floor if self.among_parts else self.floor

    def region_of(self, k: int, classes) -> str:
        """The region (fracture model) class ``k`` is routed to."""
        return self.regions[k] if self.regions else list(classes)[k]

    def region_columns(self, n_classes: int) -> list[tuple[str | int, list[int]]]:
        """Each target region with its classes' columns, in the order the regions first appear."""
        out: dict = {}
        for k in range(n_classes):
            if k != self.reject_index:
                out.setdefault(self.regions[k] if self.regions else k, []).append(k)
        return list(out.items())


def part_scores(probs, rule: BodyPartRule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, as reported (rounded to :data:`DECIMALS`): the chosen class's index (the most probable
    class of the most probable region: a region's probability is the sum of its classes'), that
    region's confidence (its share of the target regions' summed probability under the new rule, else
    its own probability) and that summed probability (the *target score*: how much the model believes
    the image is one of the target regions at all).  Each class its own region, as in models made
    before views, gives the class with the highest probability and its probability."""
    parts = np.round(np.atleast_2d(np.asarray(probs, dtype=float)), DECIMALS)
    if rule.reject_index is not None:
        parts[:, rule.reject_index] = 0.0
    columns = rule.region_columns(parts.shape[1])
    region_p = np.round(np.stack([parts[:, cols].sum(axis=1) for _, cols in columns], axis=1), DECIMALS)
    best_region = region_p.argmax(axis=1)
    member = np.zeros((len(columns), parts.shape[1]), dtype=bool)
    for j, (_, cols) in enumerate(columns):
        member[j, cols] = True
    best = np.where(member[best_region], parts, -1.0).argmax(axis=1)
    total = np.round(parts.sum(axis=1), DECIMALS)
    best_p = region_p[np.arange(len(parts)), best_region]
    if rule.among_parts:
        best_p = np.round(np.divide(best_p, total, out=np.zeros_like(best_p), where=total > 0), DECIMALS)
    return best, best_p, total


def decide_body_parts(probs, rule: BodyPartRule, ood_scores=None) -> tuple[np.ndarray, list[str | None]]:
    """Per row: the chosen class index (``rule.reject_index`` when rejected) and why it was
    rejected (None when accepted; :data:`REJECT_OTHER`, :data:`REJECT_UNFAMILIAR` or
    :data:`REJECT_DOUBT`, checked in that order).  Without a reject class it is the argmax.

    Probabilities are compared as reported (rounded to :data:`DECIMALS` places), so a shown
    probability is never on the wrong side of the floor; the out-of-distribution score (not a
    probability, never shown) is compared as it is."""
    probs = np.round(np.asarray(probs, dtype=float), DECIMALS)
    n = len(probs)
    if n == 0:
        return np.zeros(0, dtype=int), []
    reject = rule.reject_index
    reasons: list[str | None] = [None] * n
    if reject is None:
        return probs.argmax(axis=1), reasons
    best, best_p, total = part_scores(probs, rule)
    floor = rule.confidence_floor
    scores = None if ood_scores is None else np.asarray(ood_scores, dtype=float).reshape(n)
    for i in range(n):
        if rule.target_cut is not None:
            if total[i] < rule.target_cut:
                reasons[i] = REJECT_OTHER
        elif rule.reject_threshold is not None:
            if probs[i, reject] >= rule.reject_threshold:
                reasons[i] = REJECT_OTHER
        elif probs[i].argmax() == reject:
            reasons[i] = REJECT_OTHER
        if reasons[i] is not None:
            continue
        if rule.ood_threshold is not None and scores is not None and not scores[i] <= rule.ood_threshold:
            reasons[i] = REJECT_UNFAMILIAR  # (a NaN score is unfamiliar too)
        elif floor is not None and best_p[i] < floor:
            reasons[i] = REJECT_DOUBT
    chosen = np.where([r is not None for r in reasons], reject, best)
    return chosen.astype(int), reasons


def rejection_message(reason: str, parts, best_part: str | None = None, best_p: float | None = None,
                      floor: float | None = None) -> str:
    """One plain sentence saying that an image was not analysed, and why (no finding is given)."""
    what = _join(parts)
    article = "an" if what[:1] in "aeiou" else "a"
    if reason == REJECT_COLOUR:
        return "Not analysed: this is a colour picture, not a radiograph."
    if reason == REJECT_OTHER:
        return f"Not {article} {what} radiograph: it looks like another part of the body, so no finding is given."
    if reason == REJECT_UNFAMILIAR:
        return (f"Not {article} {what} radiograph, or not one like those the tool was trained on, "
                "so no finding is given.")
    if reason == REJECT_DOUBT and best_part is not None and best_p is not None and floor is not None:
        p, needed = format_probabilities(best_p, floor)
        needed = f"more than {needed[2:]}" if needed.startswith("> ") else f"at least {needed}"
        return (f"Not analysed: the tool cannot tell which part this is, {what} "
                f"(most likely {best_part}, confidence {p}; {needed} needed).")
    if reason == REJECT_DOUBT:
        return f"Not analysed: the tool cannot tell which part this is, {what}."
    return f"Not {article} {what} radiograph, so no finding is given."


def part_words(view: str | None, region: str | None) -> str:
    """What a film shows, in a reader's word, and the model that read it: ``forearm — read by the hand
    model``; ``elbow`` alone where the view is the region (and for models made before views)."""
    if not region:
        return ""
    view = view or region
    word = "shoulder and chest" if view == "shoulder_chest" else view.replace("_", " ")
    return word if view == region else f"{word} — read by the {region} model"


def part_short(view: str | None, region: str | None) -> str:
    """:func:`part_words` for a narrow column: ``forearm (hand model)``, ``elbow``."""
    if not region:
        return ""
    words = part_words(view, region)
    return words.replace(" — read by the ", " (") + ")" if " — read by the " in words else words


def _join(parts) -> str:
    parts = list(parts)
    if not parts:
        return "supported"
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]


# --- what a person reads --------------------------------------------------------------

def format_probabilities(p: float, *edges: float) -> tuple[str, ...]:
    """``p`` and the decision edges as text with one number of decimals (2, or more where two
    different numbers would otherwise read the same), so the text never contradicts the finding;
    ``> 0.99`` and ``< 0.01`` instead of 1.00 and 0.00."""
    values = [reported(v) for v in (p, *edges)]
    decimals = 2
    while decimals < DECIMALS and any(
            _text(values[0], decimals) == _text(e, decimals) and values[0] != e for e in values[1:]):
        decimals += 1
    return tuple(_text(v, decimals) for v in values)


def _text(v: float, decimals: int) -> str:
    top, bottom = 1 - 0.5 * 10 ** -decimals, 0.5 * 10 ** -decimals
    if v >= top:
        return f"> {1 - 10 ** -decimals:.{decimals}f}"
    if v < bottom:
        return f"< {10 ** -decimals:.{decimals}f}"
    return f"{v:.{decimals}f}"
