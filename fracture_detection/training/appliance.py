"""The appliance detector: is a cast, splint, implant or external fixator in view?

A logistic regression on the mean and maximum of each channel of the fracture model's frozen stride-16
features (448 px, where a plate or a cast edge is plain to see), trained on the labels by eye of the
shared data (``appliances.csv``: every fractured film) and on the normal films (FracAtlas flags hardware
on every image; Roboflow's unannotated films carry notes), and stored inside each fracture model as a
third output (:func:`locator.with_appliance_head`).  Its cut is the lowest at which at least 90 % of the
validation films it flags show a cast, splint or implant (:func:`select_precision_cut`); where no cut gets
there, the detector's line is never said and the metadata says why.  :func:`rechoose_appliance_cut` chooses
the cut again for saved models (LiteRT files suffice) without refitting the detector.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..chain.decisions import DECIMALS, reported
from ..evaluation import metrics
from ..io import data, files
from ..models import artifacts
from ..models.runtime import save_model

LABEL = "cast or implant"
REGULARISATION = 0.1   # inverse L2 strength of the logistic regression (on standardised features)
MAX_NORMAL = 1500      # normal training films at most (drawn evenly by the split's seed): the trunk is slow on a CPU
MIN_PRECISION = 0.90   # the line is said only from a cut where at least this share of the flagged films show one


def appliance_records(records, split: str, seed: int = 0) -> list:
    """Films of ``split`` whose appliance is known (:func:`data.appliance_label`), every fractured one and
    up to :data:`MAX_NORMAL` normal ones (the rest of the normal films add little and cost trunk time)."""
    known = [r for r in records if r.split == split and r.label is not None
             and data.appliance_label(r) != data.UNKNOWN_APPLIANCE and r.part != "mixed"]
    fractured = [r for r in known if r.label == 1]
    normal = [r for r in known if r.label == 0]
    if len(normal) > MAX_NORMAL:
        keep = np.random.default_rng(seed).choice(len(normal), MAX_NORMAL, replace=False)
        normal = [normal[i] for i in sorted(keep)]
    return fractured + normal


def fit_head(x: np.ndarray, y: np.ndarray, c: float = REGULARISATION) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features, folded back into weights and a bias on the raw ones."""
    from sklearn.linear_model import LogisticRegression
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit((x - mean) / std, y)
    w = clf.coef_[0] / std
    return w.astype("float32"), float(clf.intercept_[0] - np.sum(clf.coef_[0] * mean / std))


def select_precision_cut(y_true, prob, min_precision: float = MIN_PRECISION) -> dict:
    """The lowest cut (so the most films found) from which at least ``min_precision`` of the films at or
    above it show an appliance (``y_true`` 1), with its precision and recall on these films.

    Probabilities are compared as reported (:data:`decisions.DECIMALS`); a cut takes every film at its
    value (``p >= threshold`` is flagged); ``precision_ci95`` is the precision's Wilson interval.
    ``threshold`` is None when no cut gets there (no film with an appliance, or too many without one
    among the highest scores): the line is then never said, and ``reason`` says why."""
    y = np.asarray(y_true, dtype=int)
    p = np.round(np.asarray(prob, dtype=float), DECIMALS)
    out = {"rule": f"lowest cut with at least {min_precision:.0%} of the flagged films showing one",
           "min_precision": min_precision, "n_with": int(y.sum()), "n_without": int(len(y) - y.sum()),
           "threshold": None, "precision": None, "recall": None, "n_flagged": 0, "reason": None}
    if not y.any():
        out["reason"] = "no film with a cast, splint or implant to measure precision on"
        return out
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    precision = np.cumsum(ys) / np.arange(1, len(ys) + 1)
    last = np.r_[ps[1:] != ps[:-1], True]  # a cut takes every film at its value
    ok = np.nonzero(last & (precision >= min_precision - 1e-12))[0]
    if not len(ok):
        out["reason"] = (f"no cut reaches {min_precision:.0%} precision on these films: too many of the "
                         "highest-scored ones show none")
        return out
    i = ok[-1]
    out.update(threshold=float(ps[i]), precision=float(precision[i]), recall=float(ys[:i + 1].sum() / y.sum()),
               n_flagged=int(i + 1), precision_ci95=metrics.wilson_interval(int(ys[:i + 1].sum()), int(i + 1)))
    return out


def figures_at(y_true, prob, threshold) -> dict:
    """Precision and recall of the flag ``p >= threshold`` (as reported) on some films."""
    y = np.asarray(y_true, dtype=int)
    flagged = np.round(np.asarray(prob, dtype=float), DECIMALS) >= threshold
    return {"n_with": int(y.sum()), "n_without": int(len(y) - y.sum()), "n_flagged": int(flagged.sum()),
            "precision": float(y[flagged].mean()) if flagged.any() else None,
            "precision_ci95": metrics.wilson_interval(int(y[flagged].sum()), int(flagged.sum())),
            "recall": float(flagged[y == 1].mean()) if y.any() else None}


def appliance_entry(y_val, p_val, training_images: dict | None, old: dict | None = None, parts=None) -> dict:
    """The ``appliance`` metadata entry from the validation films' labels and probabilities: the
    precision cut (:func:`select_precision_cut`) with its precision and recall, Youden's cut kept for
    reference, and the detector's figures on every validation film at the cut (``validation``).

    ``parts`` (each film's body part): the cut is chosen on the elbow, hand and shoulder films, the only
    ones the line is said on, and the figures at it are also given on every region's films and per part."""
    y, p = np.asarray(y_val, dtype=int), np.asarray(p_val, dtype=float)
    chosen = np.ones(len(y), bool) if parts is None else np.isin(np.asarray(parts), data.TARGET_PARTS)
    cut = select_precision_cut(y[chosen], p[chosen])
    threshold = cut.pop("threshold")
    cut["basis"] = "validation"
    cut["films"] = "all validation films" if parts is None else "elbow, hand and shoulder validation films"
    cut["youden_threshold"] = reported(metrics.youden_threshold(y, p))
    if parts is not None and threshold is not None:
        cut["all_regions"] = figures_at(y, p, threshold)
        cut["by_part"] = {part: figures_at(y[np.asarray(parts) == part], p[np.asarray(parts) == part], threshold)
                          for part in data.TARGET_PARTS if (np.asarray(parts) == part).any()}
    entry = dict(old or {})
    entry.update({"label": LABEL, "threshold": threshold, "cut": cut,
                  "validation": metrics.binary_metrics(y, p, cut["youden_threshold"] if threshold is None
                                                       else threshold)})
    entry.setdefault("source", "fracture model (448-px frozen trunk, mean + max)")
    if training_images is not None:
        entry["training_images"] = training_images
    return entry


def _describe(entry: dict) -> str:
    c = entry["cut"]
    if entry["threshold"] is None:
        return f"Appliance detector: never said ({c['reason']}; {c['films']})"
    return (f"Appliance detector: cut {entry['threshold']:.4f} on the {c['films']} (precision {c['precision']:.1%}, "
            f"recall {c['recall']:.1%}: {c['n_flagged']} flagged, {c['n_with']} with one, {c['n_without']} without; "
            f"Youden's cut was {c['youden_threshold']:.4f})" + ("" if "all_regions" not in c else
            "; on every region's validation films: precision {precision:.1%}, recall {recall:.1%} ({n_flagged} "
            "flagged, {n_with} with one, {n_without} without)".format(**c["all_regions"])))


def _probabilities(x, w, b) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ w + b)))


def trunk_pooled(model, backbone: str, records, size: int, verbose: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pooled frozen-trunk features of the records' films; returns them and which records could be read."""
    import keras

    from ..models.locator import mid_layer, pooled_trunk_features, trunk_features
    two = model.get_layer("backbone")
    trunk = keras.Model(two.input, two.get_layer(mid_layer(backbone)).output)
    pixels, kept = data.load_pixels([r.path for r in records], size, "Loading images for the appliance detector",
                                    verbose)
    feats = []
    for start in range(0, len(pixels), 256):  # pooled at once: stride-16 maps of every film would not fit
        feats.append(pooled_trunk_features(trunk_features(model, trunk, pixels[start:start + 256], verbose=verbose,
                                                          desc="appliance detector")))
    return (np.concatenate(feats) if feats else np.zeros((0, 2 * trunk.output.shape[-1]), "float32")), kept


def add_appliance_head(weights_dir: Path, data_root: Path, verbose: int = 1) -> dict:
    """Fit the appliance detector on the weights' training films, choose its cut on the validation films,
    and save every fracture model in ``weights_dir`` again with it (Keras files needed).  The frozen
    trunk is the same ImageNet one in every fracture model, so one detector serves them all."""
    from ..models.locator import with_appliance_head
    fracture = artifacts.fracture_models(weights_dir)
    infos = [i for i in fracture.values() if i.path.is_file()]
    ensembles = [i for i in infos if i.meta.get("ensemble")]
    for info in ensembles:  # its first member's detector rides in it: fit that member's folder instead
        print(f"{info.path.name} is the mean of several models and keeps its first member's detector.", file=sys.stderr)
    infos = [i for i in infos if i not in ensembles]
    if not infos:
        raise artifacts.WeightsError(f"{weights_dir} holds no Keras fracture model to add the appliance detector to.")
    trunks = {((i.meta.get("training") or {}).get("frozen_through"), i.meta["backbone"], i.image_size) for i in infos}
    if len(trunks) > 1 or None in {t[0] for t in trunks}:
        raise artifacts.WeightsError("The fracture models do not share one frozen trunk, so one appliance detector "
                                     "cannot serve them all.")
    records = data.read_split(Path(weights_dir) / data.SPLIT_FILE, Path(data_root))
    first = infos[0]
    model = first.load()
    x, y, parts = {}, {}, {}
    for split in ("train", "val"):
        recs = appliance_records(records, split)
        feats, kept = trunk_pooled(model, first.meta["backbone"], recs, first.image_size, verbose)
        x[split], y[split] = feats, np.array([data.appliance_label(recs[i]) for i in kept], dtype=int)
        parts[split] = [recs[i].part for i in kept]
    if any(len(np.unique(y[split])) < 2 for split in y):
        print(f"No appliance detector: the training and validation films of {data_root} do not both show films "
              "with and without a cast, splint or implant (labels by eye: appliances.csv).", file=sys.stderr)
        return {}
    w, b = fit_head(x["train"], y["train"])
    p_val = _probabilities(x["val"], w, b)
    entry = appliance_entry(y["val"], p_val, {"with": int(y["train"].sum()),
                                              "without": int(len(y["train"]) - y["train"].sum())},
                            parts=parts["val"])
    for info in infos:
        m = model if info is first else info.load()
        meta = dict(info.meta, appliance=entry)
        save_model(with_appliance_head(m, info.meta["backbone"], w, b), meta, Path(weights_dir), info.meta["name"])
    print(f"{_describe(entry)}; validation AUC {entry['validation']['auc']:.3f}", file=sys.stderr)
    return entry


def rechoose_appliance_cut(weights_dir: Path, data_root: Path, runtime: str = "auto", verbose: int = 1) -> dict:
    """Choose the detector's cut again for saved fracture models, without refitting it: run a fracture
    model that carries the detector (its third output; LiteRT files suffice) on the validation films of
    the weights' own split whose appliance is known (:func:`appliance_records`), and store the entry
    (:func:`appliance_entry`) in every fracture model's metadata that carries the detector (it is one
    detector on the one frozen trunk they share; checked on the first films).  Models are unchanged."""
    from ..models.runtime import load as load_runner
    fracture = artifacts.fracture_models(weights_dir)
    infos = [i for i in fracture.values()
             if "appliance_probability" in ((i.meta.get("litert") or {}).get("outputs") or [])]
    if not infos:
        raise artifacts.WeightsError(f"{weights_dir} holds no fracture model with the appliance detector.")
    records = appliance_records(data.read_split(Path(weights_dir) / data.SPLIT_FILE, Path(data_root)), "val")
    size = infos[0].image_size
    pixels, kept = data.load_pixels([r.path for r in records], size, "Loading the appliance validation films", verbose)
    y = np.array([data.appliance_label(records[i]) for i in kept], dtype=int)
    runs = {i.name: load_runner(i, runtime) for i in infos}
    first = runs[infos[0].name]
    p = np.concatenate([np.asarray(first(pixels[s:s + 8])[2])[:, 0] for s in range(0, len(pixels), 8)])
    for info in infos[1:]:  # one detector: the same probabilities from every model (checked on a few films)
        other = np.asarray(runs[info.name](pixels[:8])[2])[:, 0]
        if not np.allclose(other, p[:8], atol=1e-3):
            raise artifacts.WeightsError(f"{info.name} carries another appliance detector than {infos[0].name}; "
                                         "choose their cuts one by one.")
    for info in infos:
        entry = appliance_entry(y, p, None, info.meta.get("appliance"), [records[i].part for i in kept])
        files.atomic_write_json(info.path.with_suffix(".json"), dict(info.meta, appliance=entry))
    print(_describe(entry), file=sys.stderr)
    return entry
