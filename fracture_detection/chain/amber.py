"""Amber that ranks: how suspicious an *uncertain* film is, from measured films scored like it.

A fracture model's metadata may carry an ``amber`` entry, made by :func:`amber_bins` from films whose
truth is known (the validation films of the weights' own split, or out-of-fold films of a
cross-validation)::

    "amber": {"basis": "validation" | "out-of-fold", "n_films": 119, "prevalence": 0.437,
              "bins": [{"from": 0.3107, "to": 0.6257, "n": 29, "fractured": 10}, ...]}

The bins split the uncertain range ``[no_fracture_below, fracture_from)`` into consecutive intervals that
cover it whole, each holding about the same number of the films that fell in it.  :func:`amber_bin` finds
the bin of an uncertain film; :func:`amber_sentence` says it (:func:`amber_text` for a prediction).  The
finding itself never changes: a film in a bin where most films were fractured is still *uncertain*
(neither of the two promises covers it), and the sentence says so.  Bins are compared as probabilities are reported (:data:`decisions.DECIMALS`), and a
film on a bin's edge belongs to the bin above it, as for the cuts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decisions import DECIMALS, finding_edges, fracture_finding, reported

BASES = ("validation", "out-of-fold", "site")
N_BINS = 3          # bins of the uncertain range, when it holds enough films
MIN_PER_BIN = 5     # fewer films than this in a bin: merged with a neighbour (where there is more than one bin)
BASIS_WORDS = {"validation": "validation films", "out-of-fold": "cross-validation films (out of fold)",
               "site": "this site's films"}  # site: the films a recalibration chose the cuts on


@dataclass(frozen=True)
class AmberBin:
    """The bin of the uncertain range a film falls in, and what its measured films were."""
    low: float           # the bin's "from" (inclusive)
    high: float          # the bin's "to" (exclusive)
    n: int               # measured films in the bin
    fractured: int       # of which fractured
    prevalence: float    # fractured share of every film measured (decided ones too)
    n_films: int         # every film measured
    basis: str           # "validation" or "out-of-fold"

    @property
    def share(self) -> float:
        return self.fractured / self.n


def amber_bins(y, probs, edges, basis: str = "validation", n_bins: int = N_BINS,
               min_per_bin: int = MIN_PER_BIN) -> dict:
    """The ``amber`` metadata entry from films with known labels ``y`` (1 fractured), their
    probabilities and the model's cuts ``edges = (no_fracture_below, fracture_from)``.

    The films in the uncertain range are sorted by probability and cut into ``n_bins`` runs of about
    equal length (fewer bins when the range holds fewer than ``n_bins * min_per_bin`` films); a bin edge
    lies halfway between the last film of one bin and the first of the next (as reported, never between
    tied films), and bins of fewer than ``min_per_bin`` films are merged into their smaller neighbour
    while more than one bin is left.  The first bin starts at ``no_fracture_below``, the last ends at
    ``fracture_from``; an empty range (no film in it, or the cuts equal) gives no bins."""
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, not {basis!r}")
    y = np.asarray(y, dtype=int)
    p = np.round(np.asarray(probs, dtype=float), DECIMALS)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels for {len(p)} probabilities")
    low, high = reported(edges[0]), reported(edges[1])
    entry = {"basis": basis, "n_films": int(len(y)),
             "prevalence": float(y.mean()) if len(y) else None, "bins": []}
    inside = (p >= low) & (p < high)
    q = np.sort(p[inside])
    m = len(q)
    if m == 0 or low >= high:
        return entry
    k = max(1, min(n_bins, m // min_per_bin))
    bounds = []
    for i in range(1, k):
        j = int(round(i * m / k))
        while 0 < j < m and q[j] == q[j - 1]:  # a tie is never split
            j += 1
        if 0 < j < m:
            cut = reported((q[j - 1] + q[j]) / 2)
            bounds.append(cut if cut > q[j - 1] else float(q[j]))
    edges_all = [low] + sorted(set(bounds)) + [high]
    bins = _count(edges_all, p, y)
    while len(bins) > 1 and min(b["n"] for b in bins) < min_per_bin:
        i = min(range(len(bins)), key=lambda b: (bins[b]["n"], b))
        if i == 0:
            j = 1
        elif i == len(bins) - 1:
            j = i - 1
        else:
            j = i - 1 if bins[i - 1]["n"] <= bins[i + 1]["n"] else i + 1
        a, b = sorted((i, j))
        del edges_all[b]  # the edge between bins a and b
        bins = _count(edges_all, p, y)
    entry["bins"] = bins
    return entry


def _count(edges_all, p, y) -> list[dict]:
    out = []
    for lo, hi in zip(edges_all[:-1], edges_all[1:]):
        inside = (p >= lo) & (p < hi)
        out.append({"from": float(lo), "to": float(hi), "n": int(inside.sum()), "fractured": int(y[inside].sum())})
    return out


def amber_bin(p, meta: dict) -> AmberBin | None:
    """The bin an *uncertain* probability ``p`` falls in, from a fracture model's metadata; None when the
    metadata has no usable ``amber`` entry, when ``p`` is not uncertain at the model's cuts, or when the
    bins do not cover exactly the model's present uncertain range (cuts changed since the bins were made)."""
    amber = meta.get("amber") or {}
    bins = amber.get("bins") or []
    if p is None or not bins:
        return None
    edges = finding_edges(meta)
    if fracture_finding(p, edges) != "uncertain":
        return None
    if reported(bins[0]["from"]) != edges[0] or reported(bins[-1]["to"]) != edges[1]:
        return None
    p = reported(p)
    for b in bins:
        if reported(b["from"]) <= p < reported(b["to"]):
            if not b["n"]:
                return None
            return AmberBin(reported(b["from"]), reported(b["to"]), int(b["n"]), int(b["fractured"]),
                            float(amber["prevalence"]), int(amber["n_films"]), amber.get("basis", "validation"))
    return None


def in_ten(share: float) -> str:
    """A share as a natural frequency, "6 in 10", never rounding a share that is not 0 or 1 to either."""
    tenths = int(round(share * 10))
    if tenths >= 10 and share < 1:
        return "more than 9 in 10"
    if tenths <= 0 < share:
        return "fewer than 1 in 10"
    return f"{tenths} in 10"


def amber_sentence(fractured: int, n: int, prevalence: float, basis: str = "validation") -> str:
    """What a reader sees beside an *uncertain* finding: of the measured films in its bin, how many were
    fractured, with the share over all the films measured (the prevalence the figure assumes).  It ranks
    the film among uncertain ones and names no other finding: the finding stays uncertain however high
    or low the share."""
    what = BASIS_WORDS.get(basis, f"{basis} films")
    return (f"Rank within Uncertain, not a finding: of {what} scored like this, {in_ten(fractured / n)} were "
            f"fractured ({fractured} of {n}, against {prevalence:.0%} of all those films).")


def amber_text(pred) -> str | None:
    """The ranking sentence of a prediction (:class:`predictor.Prediction` or alike), or None: never for
    a finding other than uncertain, nor where its model's metadata has no measured bins."""
    if pred.finding != "uncertain" or getattr(pred, "amber_share", None) is None or not pred.amber_n:
        return None
    return amber_sentence(pred.amber_fractured, pred.amber_n, pred.amber_prevalence, pred.amber_basis or "validation")
