"""The evaluation's plots: training curves, the confusion matrices of body part and findings, ROC
curves with a bootstrap band and the two cuts, calibration, and study-level kappa against the MURA
paper; each written as a PNG beside ``report.md``.

matplotlib and scikit-learn are imported where they are used.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..io import files
from ..models import artifacts
from . import metrics

MURA_PAPER_KAPPA = {"elbow": 0.710, "hand": 0.851, "shoulder": 0.729}  # Rajpurkar et al. 2017, model


def _save_png(fig, path: Path):
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    files.atomic_write_bytes(path, buf.getvalue())


def plot_training(weights_dir: Path, out: Path) -> list[str]:
    import matplotlib.pyplot as plt
    names = []
    for info in artifacts.find_models(weights_dir):
        h = info.meta.get("history") or {}
        if not h.get("loss"):
            continue
        keys = [k for k in ("loss", "auc", "accuracy") if h.get(k) or h.get("val_" + k)]
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
        epochs = np.arange(1, len(h["loss"]) + 1)
        for ax, key in zip(axes[0], keys):
            for prefix, style in (("", "-"), ("val_", "--")):
                values = [np.nan if v is None else v for v in h.get(prefix + key) or []]
                if values:
                    ax.plot(epochs[: len(values)], values, style, marker="o", ms=3,
                            label="validation" if prefix else "training")
            phases = h.get("phase", [])
            if "fine_tune" in phases and phases.index("fine_tune") > 0:
                ax.axvline(phases.index("fine_tune") + 0.5, color="grey", lw=0.8, ls=":")
                ax.text(phases.index("fine_tune") + 0.6, ax.get_ylim()[1], "fine-tuning", va="top", fontsize=8,
                        color="grey")
            ax.set_xlabel("epoch")
            ax.set_title(f"{info.meta['name']}: {'validation AUC' if key == 'auc' else key}")
            ax.legend()
        name = f"training_{info.meta['name']}.png"
        _save_png(fig, out / name)
        names.append(name)
    return names


def plot_results(m: dict, predictor, records, results, out: Path) -> list[str]:
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve
    names = []
    bp = m["body_part"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    _matrix(ax, np.array(bp["confusion_matrix"]), bp["labels"], "body part (rows: truth)")
    _save_png(fig, out / "confusion_body_part.png")
    names.append("confusion_body_part.png")

    parts = list(m["fracture"])
    if not parts:
        return names
    probs = results["true_part_probability"]
    fig, axes = plt.subplots(1, len(parts), figsize=(4.6 * len(parts), 3.6), squeeze=False)
    for ax, part in zip(axes[0], parts):
        e = m["fracture"][part]
        c = e["findings"]["counts"]
        _matrix(ax, np.array([[c[f][t] for f in FINDING_COLUMNS] for t in ("fractured", "normal")]),
                list(FINDING_COLUMNS), f"{part}: No fracture below {e['uncertain_band'][0]:.2f},\n"
                f"Likely FRACTURE from {e['uncertain_band'][1]:.2f}", rows=["fractured", "normal"],
                xlabel="finding (the model on its true part)")
    _save_png(fig, out / "findings.png")
    names.append("findings.png")

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    fig_c, ax_c = plt.subplots(figsize=(5.5, 5.5))
    n_boot = int(m.get("bootstrap") or 200)
    by_region = getattr(predictor, "names_views", False)
    for part in parts:
        rad = metrics.part_radiographs(records, probs, part, by_region)  # each radiograph once, as the figures count
        y, p = rad["y"], rad["p"]
        if len(np.unique(y)) < 2:
            continue
        e = m["fracture"][part]
        fpr, tpr, _ = roc_curve(y, p)
        grid, low, high = roc_band(y, p, n_boot)
        line, = ax.plot(fpr, tpr, label=f"{part} AUC {e['image']['auc']:.2f} ({len(y)} radiographs)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.15, lw=0)
        lo_cut, hi_cut = e["uncertain_band"]
        for cut, marker in ((hi_cut, "^"), (lo_cut, "o")):
            ax.plot(np.mean(p[y == 0] >= cut), np.mean(p[y == 1] >= cut), marker, color=line.get_color(), ms=8,
                    mec="black")
        bins = metrics.calibration_bins(y, p)
        ax_c.plot([b["mean_p"] for b in bins], [b["observed"] for b in bins], "o-",
                  label=f"{part} (Brier {e['brier']:.3f})")
        for b in bins:
            ax_c.annotate(str(b["n"]), (b["mean_p"], b["observed"]), textcoords="offset points", xytext=(4, 4),
                          fontsize=7)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.plot([], [], "^", color="grey", mec="black", label="Likely FRACTURE from its cut")
    ax.plot([], [], "o", color="grey", mec="black", label="not \"No fracture found\" (the other cut)")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity",
           title="ROC on the true part, 95 % bootstrap band, the two cuts")
    ax.legend(loc="lower right", fontsize=8)
    _save_png(fig, out / "roc.png")
    ax_c.plot([0, 1], [0, 1], ":", color="grey")
    ax_c.set(xlabel="mean predicted probability (bin of equal counts)", ylabel="observed fraction fractured",
             title="Calibration (radiographs per bin beside each point)")
    ax_c.legend(fontsize=8)
    _save_png(fig_c, out / "calibration.png")
    names += ["roc.png", "calibration.png"]

    fig, ax = plt.subplots(figsize=(6, 3.8))
    xs = np.arange(len(parts))
    kap = [m["fracture"][p]["study_mura_rule"]["kappa"] for p in parts]
    ci = [m["fracture"][p]["study_mura_rule"]["ci95"]["kappa"] for p in parts]
    err = np.array([[k - (c[0] if c[0] is not None else k) for k, c in zip(kap, ci)],
                    [(c[1] if c[1] is not None else k) - k for k, c in zip(kap, ci)]])
    ax.bar(xs, kap, yerr=err, capsize=4, color="#4c72b0", label="this model (study level, 95 % CI)")
    for x, p in zip(xs, parts):
        if p in MURA_PAPER_KAPPA:
            ax.hlines(MURA_PAPER_KAPPA[p], x - 0.4, x + 0.4, colors="#c44e52", linestyles="--",
                      label="MURA paper model (abnormality, on MURA)" if x == 0 else None)
    ax.set_xticks(xs, parts)
    ax.set(ylabel="Cohen's kappa", ylim=(min(0, min(kap) - 0.1), 1), title="Study-level kappa (mean probability > 0.5)")
    ax.legend(fontsize=8, loc="lower right")
    _save_png(fig, out / "kappa.png")
    names.append("kappa.png")
    return names


FINDING_COLUMNS = ("fractured", "uncertain", "normal")


def roc_band(y, p, n_boot: int = 200, seed: int = 0, points: int = 101):
    """A 95 % bootstrap band of the ROC curve: the sensitivity at each of ``points`` false-positive
    rates, resampling the items (radiographs, as the evaluation passes them); returns ``(fpr grid, lower,
    upper)``."""
    from sklearn.metrics import roc_curve
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    grid = np.linspace(0, 1, points)
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[idx], p[idx])
        curves.append(np.interp(grid, fpr, tpr))
    if not curves:
        return grid, grid * np.nan, grid * np.nan
    return grid, np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0)


def _matrix(ax, cm, labels, title, rows=None, xlabel="predicted"):
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(rows or labels)), rows or labels)
    ax.set(xlabel=xlabel, ylabel="true", title=title)
