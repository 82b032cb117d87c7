"""Metrics the field reports, with bootstrap intervals and MURA-style study aggregation.

scikit-learn is imported where it is used: importing it would add about 1.7 s to the app's
start, and the app needs none of this module (its decisions are in :mod:`decisions`).
"""
from __future__ import annotations

from collections import defaultdict

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
    both = len(np.unique(y)) == 2
    from sklearn.metrics import roc_auc_score
    return {
        "n": int(len(y)), "positives": int(y.sum()), "negatives": int(len(y) - y.sum()),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
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
