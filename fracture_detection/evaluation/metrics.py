"""Metrics the field reports, with bootstrap intervals and MURA-style study aggregation.

scikit-learn is imported where it is used: importing it would add about 1.7 s to the app's
start, and the app needs none of this module (its decisions are in :mod:`decisions`).
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np


def binary_metrics(y_true, prob, threshold: float = 0.5, predicted=None) -> dict:
    """Accuracy, sensitivity, specificity, AUC and Cohen's kappa (NaN where undefined) of the
    decisions ``prob >= threshold`` (as a finding is decided), or of ``predicted`` (1 = positive)
    where another rule decides, e.g. :func:`decisions.mura_rule`; the AUC is always of ``prob``."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(prob, dtype=float)
    pred = (p >= threshold if predicted is None else np.asarray(predicted, dtype=bool)).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return {
        "n": int(len(y)), "positives": int(y.sum()), "negatives": int(len(y) - y.sum()),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "auc": auc(y, p),
        "kappa": _kappa(y, pred),
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
    }


def _kappa(y, pred) -> float:
    if len(y) == 0:
        return float("nan")
    if len(np.unique(np.concatenate([y, pred]))) < 2:
        return 1.0 if np.array_equal(y, pred) else 0.0
    from sklearn.metrics import cohen_kappa_score
    return float(cohen_kappa_score(y, pred))


def bootstrap_intervals(y_true, prob, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0,
                        keys=("accuracy", "sensitivity", "specificity", "auc", "kappa"), predicted=None) -> dict:
    """95 % percentile intervals over ``n_boot`` resamples (with replacement) of the items."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(prob, dtype=float)
    pred = None if predicted is None else np.asarray(predicted, dtype=bool)
    rng = np.random.default_rng(seed)
    samples = defaultdict(list)
    for _ in range(n_boot if len(y) else 0):
        idx = rng.integers(0, len(y), len(y))
        m = binary_metrics(y[idx], p[idx], threshold, None if pred is None else pred[idx])
        for k in keys:
            if np.isfinite(m[k]):
                samples[k].append(m[k])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else [None, None]
            for k in keys for v in [samples[k]]}


def with_intervals(y_true, prob, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0,
                   predicted=None) -> dict:
    """:func:`binary_metrics` with bootstrap intervals; ``threshold`` is recorded unless ``predicted``
    gives the decisions."""
    m = binary_metrics(y_true, prob, threshold, predicted)
    m["ci95"] = bootstrap_intervals(y_true, prob, threshold, n_boot, seed, predicted=predicted)
    if predicted is None:
        m["threshold"] = float(threshold)
    return m


def study_level(study_ids, y_true, prob):
    """Mean probability per study (what MURA's rule, :func:`decisions.mura_rule`, decides on); a
    study's label is its images' label."""
    sums, counts, labels = defaultdict(float), defaultdict(int), {}
    for s, y, p in zip(study_ids, y_true, prob):
        sums[s] += float(p)
        counts[s] += 1
        labels[s] = max(labels.get(s, 0), int(y))
    studies = sorted(sums)
    return studies, np.array([labels[s] for s in studies]), np.array([sums[s] / counts[s] for s in studies])


def youden_threshold(y_true, prob) -> float:
    """Threshold maximising sensitivity + specificity - 1 (0.5 when one class is missing)."""
    y = np.asarray(y_true, dtype=int)
    if len(np.unique(y)) < 2:
        return 0.5
    from sklearn.metrics import roc_curve
    fpr, tpr, thr = roc_curve(y, prob)
    best = int(np.argmax(tpr - fpr))
    return float(np.clip(thr[best], 1e-6, 1.0))


def calibration_bins(y, p, max_bins: int = 10) -> list[dict]:
    """Films in bins of (about) equal counts by probability, at least 15 a bin where there are enough:
    per bin the films, their mean probability and the fraction fractured."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    n_bins = int(min(max_bins, max(1, len(y) // 15)))
    order = np.argsort(p, kind="stable")
    return [{"n": int(len(b)), "mean_p": float(p[b].mean()), "observed": float(y[b].mean())}
            for b in np.array_split(order, n_bins) if len(b)]


def froc_sensitivity(scored, n_lesions: int, n_images: int, false_per_image: float = 1.0) -> float | None:
    """Region sensitivity at ``false_per_image`` false regions per image (one point of the FROC curve).

    ``scored``: ``(score, kind)`` per proposed region, kind ``hit`` (the first region on a true
    lesion), ``repeat`` (another region on a lesion already found: neither true nor false) or
    ``false``.  Regions are taken from the highest score down while the false ones stay within
    ``false_per_image * n_images``."""
    if not n_lesions or not n_images:
        return None
    allowed, hits, false = false_per_image * n_images, 0, 0
    for score, kind in sorted(scored, key=lambda s: -s[0]):
        if kind == "false":
            false += 1
            if false > allowed:
                break
        elif kind == "hit":
            hits += 1
    return hits / n_lesions


def localisation_items(maps, labels, square_boxes, shapes, region_threshold: float,
                       extent: float | None = None) -> list[dict]:
    """Per image, what localisation figures need: whether the top region's centre lies in a true box
    (fractured images with boxes; else None), every proposed region's score and kind (see
    :func:`froc_sensitivity`) and the number of true boxes.  ``maps``: cell probabilities over the
    letterboxed square; ``square_boxes``: true boxes as fractions of that square; ``extent``: how far a
    region spreads (:data:`boxes.REGION_EXTENT` when None)."""
    from ..io.boxes import REGION_EXTENT, Letterbox, box_centre_inside, regions_from_map
    extent = REGION_EXTENT if extent is None else extent
    items = []
    for m, label, b, shape in zip(maps, labels, square_boxes, shapes):
        true_px = Letterbox(*shape).to_pixels(b) if label and len(b) else np.zeros((0, 4))
        top = regions_from_map(m, shape, region_threshold, max_regions=1, extent=extent)
        found: set[int] = set()
        scored = []
        for r in regions_from_map(m, shape, 0.02, max_regions=10, extent=extent):
            inside = [k for k, t in enumerate(true_px) if box_centre_inside(r["box"], t[None])]
            new = [k for k in inside if k not in found]
            scored.append((r["score"], "hit" if new else "repeat" if inside else "false"))
            found.update(new[:1])
        items.append({"top_hit": box_centre_inside(top[0]["box"], true_px) if len(true_px) and top else None,
                      "top_iou": max((box_iou(top[0]["box"], t) for t in true_px), default=0.0)
                      if len(true_px) and top else None,
                      "scored": scored, "n_lesions": len(true_px)})
    return items


def localisation(items: list[dict], n_boot: int = 0, seed: int = 0, groups=None) -> dict:
    """Top region inside a true box (share of fractured images with boxes), the median overlap (IoU) of
    the top region with the best-matching true box, and region sensitivity at one false region per
    image (over all images), with 95 % bootstrap intervals over images, or over ``groups`` of them (lists
    of positions: a radiograph's copies are drawn together, see :func:`resample`)."""
    def figures(sample):
        hits = [it["top_hit"] for it in sample if it["top_hit"] is not None]
        return (float(np.mean(hits)) if hits else None,
                froc_sensitivity([s for it in sample for s in it["scored"]], sum(it["n_lesions"] for it in sample),
                                 len(sample), 1.0))
    top, froc = figures(items)
    ious = [it["top_iou"] for it in items if it.get("top_iou") is not None]
    out = {"top_region_in_box": top, "n_fractured_with_boxes": sum(it["top_hit"] is not None for it in items),
           "median_top_iou": float(np.median(ious)) if ious else None,
           "region_sensitivity_at_1_false_per_image": froc}
    if n_boot and items:
        rng = np.random.default_rng(seed)
        boot = [figures([items[i] for i in resample(rng, len(items), groups)]) for _ in range(n_boot)]
        out["ci95"] = {name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else [None, None]
                       for name, k in (("top_region_in_box", 0), ("region_sensitivity_at_1_false_per_image", 1))
                       for v in [[b[k] for b in boot if b[k] is not None]]}
    return out


# --- the reader's two promises, by kind of fractured film ------------------------------------

FILM_KINDS = ("untreated", "appliance")  # fractured films with nothing in view / with a cast, splint or implant
SOFT_LINE = ("hand", "wrist")  # the soft line of the views by eye: where the film's centre falls


def film_kinds(labels, treated) -> np.ndarray:
    """Per film: ``normal``, ``untreated``, ``appliance`` or ``unknown`` (a fractured film nobody
    labelled for appliances); ``treated`` is :attr:`data.Record.treated` (True, False or None)."""
    return np.array(["normal" if not y else "unknown" if t is None else "appliance" if t else "untreated"
                     for y, t in zip(labels, treated)], dtype=object)


def _share(mask, of) -> float | None:
    n = int(np.sum(of))
    return float(np.sum(mask & of) / n) if n else None


def promise_figures(y, p, findings, kinds, kind: str, n_boot: int = 0, seed: int = 0) -> dict:
    """The figures a reader's trust rests on, on the normal films plus the fractured films of one
    ``kind``: the AUC (with its interval), how the fractured films were called (fractured, uncertain,
    normal), whether "No fracture found" and "Likely FRACTURE" were right, and the uncertain share."""
    y, p, f, kinds = (np.asarray(y, dtype=int), np.asarray(p, dtype=float), np.asarray(findings),
                      np.asarray(kinds, dtype=object))
    keep = (kinds == "normal") | (kinds == kind)
    y, p, f = y[keep], p[keep], f[keep]
    fx, nm = y == 1, y == 0
    out = {"n_fractured": int(fx.sum()), "n_normal": int(nm.sum())}
    a = auc(y, p)
    out["auc"] = a if np.isfinite(a) else None
    if n_boot:
        out["auc_ci95"] = auc_interval(y, p, n_boot, seed)
    out["fractured_called"] = {finding: _share(f == finding, fx) for finding in ("fractured", "uncertain", "normal")}
    out["no_fracture_found_right"] = _share(nm, f == "normal")
    out["likely_fracture_right"] = _share(fx, f == "fractured")
    out["n_called_normal"], out["n_called_fractured"] = int((f == "normal").sum()), int((f == "fractured").sum())
    out["uncertain"] = _share(f == "uncertain", np.ones(len(f), bool))
    return out


def promises_by_kind(y, p, findings, kinds, n_boot: int = 0) -> dict:
    """:func:`promise_figures` for the untreated fractured films first, then those with an appliance,
    then every film together."""
    out = {kind: promise_figures(y, p, findings, kinds, kind, n_boot) for kind in FILM_KINDS}
    every = np.where(np.asarray(kinds, dtype=object) == "normal", "normal", "all")
    out["all"] = promise_figures(y, p, findings, every, "all", n_boot)
    return out


def proportion(hits, n_boot: int = 0, seed: int = 0) -> dict:
    """The share of True in ``hits`` with its count and its 95 % Wilson score interval (which, unlike a
    bootstrap, does not collapse to a point at 0 of n or n of n). ``n_boot`` and ``seed`` are unused:
    kept so that every figure is called alike."""
    hits = np.asarray(hits, dtype=bool)
    k, n = int(hits.sum()), int(len(hits))
    out = {"share": k / n if n else None, "k": k, "n": n}
    if n:
        z = 1.959964
        centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        out["ci95"] = [float(max(0.0, centre - half)), float(min(1.0, centre + half))]
    return out


def radiograph_members(radiographs) -> list[list[int]]:
    """The positions of each radiograph's films (:attr:`data.Record.radiograph`: the Roboflow export's
    augmented copies of one upload share one), radiographs in the order each first appears."""
    members: dict = {}
    for i, key in enumerate(radiographs):
        members.setdefault(key, []).append(i)
    return list(members.values())


def one_per_radiograph(radiographs, y, p, treated) -> tuple[np.ndarray, np.ndarray, list]:
    """Films that are copies of one radiograph (:attr:`data.Record.radiograph`) counted once: its label,
    its appliance state and the mean of its copies' probabilities, in the order each radiograph first
    appears.  Every figure a promise rests on counts radiographs, not augmented copies."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    members = radiograph_members(radiographs)
    return (np.array([y[m[0]] for m in members], dtype=int),
            np.array([p[m].mean() for m in members], dtype=float),
            [treated[m[0]] for m in members])


def part_radiographs(records, probs, part: str, by_region: bool) -> dict | None:
    """The films a fracture model is scored on (its part's readable films with a label:
    :meth:`data.Record.fracture_part`) and the same counted once per radiograph: ``films`` (record indices),
    ``members`` (each radiograph's positions in ``films``), ``first`` (each radiograph's first film),
    ``y`` and ``p`` per radiograph (``p``: the mean of its copies' reported probabilities, rounded as
    reported, put through the cuts as one film's is). None without films."""
    from ..chain.decisions import DECIMALS
    idx = [i for i, r in enumerate(records)
           if r.fracture_part(by_region) == part and r.label is not None and np.isfinite(probs[i])]
    if not idx:
        return None
    members = radiograph_members([records[i].radiograph for i in idx])
    first = [idx[m[0]] for m in members]
    return {"films": idx, "members": members, "first": first,
            "y": np.array([records[i].label for i in first], dtype=int),
            # the mean of the copies' reported probabilities (predictions.csv), so that it can be worked out again
            "p": np.round([float(np.mean(np.round(probs[[idx[k] for k in m]], DECIMALS))) for m in members],
                          DECIMALS)}


def majority(values, members, tie=None) -> list:
    """Per radiograph (``members``: :func:`radiograph_members`), the value more than half of its copies
    have, else ``tie``: how the app's answers on a radiograph's copies count once."""
    out = []
    for m in members:
        value, n = Counter(values[i] for i in m).most_common(1)[0]
        out.append(value if 2 * n > len(m) else tie)
    return out


def resample(rng, n: int, groups=None) -> np.ndarray:
    """One bootstrap resample of ``n`` items: items drawn with replacement, or, with ``groups`` (lists of
    item positions, e.g. a radiograph's copies), groups drawn with replacement and all their items kept."""
    if groups is None:
        return rng.integers(0, n, n)
    picked = rng.integers(0, len(groups), len(groups))
    return np.fromiter((i for g in picked for i in groups[g]), dtype=int)


def auc(y, p) -> float:
    """The AUC (ties count one half), NaN without both classes: the Mann-Whitney statistic, fast enough
    for a bootstrap of every table."""
    from scipy.stats import rankdata
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if not n1 or not n0:
        return float("nan")
    return float((rankdata(p)[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_interval(y, p, n_boot: int = 1000, seed: int = 0) -> list:
    """95 % percentile interval of the AUC over ``n_boot`` resamples of the items (each resample that
    lacks a class is left out)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    values = [v for v in (auc(y[idx], p[idx]) for idx in (resample(rng, len(y)) for _ in range(n_boot if len(y) else 0)))
              if np.isfinite(v)]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values else [None, None]


def cut_intervals(y, p, untreated, n_boot: int = 1000, seed: int = 0) -> dict:
    """95 % bootstrap intervals of the two cuts (:func:`decisions.select_cuts`), resampling the films."""
    from ..chain.decisions import select_cuts
    y, p, u = np.asarray(y, dtype=int), np.asarray(p, dtype=float), np.asarray(untreated, dtype=bool)
    rng = np.random.default_rng(seed)
    lows, highs = [], []
    for _ in range(n_boot if len(y) else 0):
        idx = rng.integers(0, len(y), len(y))
        c = select_cuts(y[idx], p[idx], u[idx])
        lows.append(c["no_fracture_below"])
        highs.append(c["fracture_from"])
    ci = (lambda v: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else [None, None])
    return {"no_fracture_below": ci(lows), "fracture_from": ci(highs)}


def paired_auc_difference(y, p_new, p_old, n_boot: int = 2000, seed: int = 0) -> dict:
    """AUC of ``p_new`` minus that of ``p_old`` on the same films, with a 95 % paired bootstrap interval
    (each resample draws films, scored by both)."""
    y, a, b = np.asarray(y, dtype=int), np.asarray(p_new, dtype=float), np.asarray(p_old, dtype=float)
    if len(np.unique(y)) < 2:
        return {"new": None, "old": None, "difference": None, "ci95": [None, None], "n": int(len(y))}
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            diffs.append(auc(y[idx], a[idx]) - auc(y[idx], b[idx]))
    new, old = auc(y, a), auc(y, b)
    return {"new": new, "old": old, "difference": new - old, "n": int(len(y)), "n_fractured": int(y.sum()),
            "ci95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))] if diffs else [None, None]}


def box_iou(a, b) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def wilson_interval(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval of a share ``k / n`` (None without films)."""
    if not n:
        return None
    share = k / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]
