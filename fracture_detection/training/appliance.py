"""The appliance detector: is a cast, splint, implant or external fixator in view?

A logistic regression on the mean and maximum of each channel of the fracture model's frozen stride-16
features (448 px, where a plate or a cast edge is plain to see), trained on the labels by eye of the
shared data (``appliances.csv``: every fractured film) and on the normal films (FracAtlas flags hardware
on every image; Roboflow's unannotated films carry notes), and stored inside each fracture model as a
third output (:func:`locator.with_appliance_head`).  Its cut is Youden's on the validation films.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..evaluation import metrics
from ..io import data
from ..models import artifacts
from ..models.runtime import save_model

LABEL = "cast or implant"
REGULARISATION = 0.1   # inverse L2 strength of the logistic regression (on standardised features)
MAX_NORMAL = 1500      # normal training films at most (drawn evenly by the split's seed): the trunk is slow on a CPU


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
    from ..chain.decisions import reported
    from ..models.locator import with_appliance_head
    fracture = artifacts.fracture_models(weights_dir)
    infos = [i for i in fracture.values() if i.path.is_file()]
    if not infos:
        raise artifacts.WeightsError(f"{weights_dir} holds no Keras fracture model to add the appliance detector to.")
    trunks = {((i.meta.get("training") or {}).get("frozen_through"), i.meta["backbone"], i.image_size) for i in infos}
    if len(trunks) > 1 or None in {t[0] for t in trunks}:
        raise artifacts.WeightsError("The fracture models do not share one frozen trunk, so one appliance detector "
                                     "cannot serve them all.")
    records = data.read_split(Path(weights_dir) / data.SPLIT_FILE, Path(data_root))
    first = infos[0]
    model = first.load()
    x, y = {}, {}
    for split in ("train", "val"):
        recs = appliance_records(records, split)
        feats, kept = trunk_pooled(model, first.meta["backbone"], recs, first.image_size, verbose)
        x[split], y[split] = feats, np.array([data.appliance_label(recs[i]) for i in kept], dtype=int)
    if any(len(np.unique(y[split])) < 2 for split in y):
        print(f"No appliance detector: the training and validation films of {data_root} do not both show films "
              "with and without a cast, splint or implant (labels by eye: appliances.csv).", file=sys.stderr)
        return {}
    w, b = fit_head(x["train"], y["train"])
    p_val = _probabilities(x["val"], w, b)
    threshold = reported(metrics.youden_threshold(y["val"], p_val))
    val = metrics.binary_metrics(y["val"], p_val, threshold)
    entry = {"label": LABEL, "threshold": threshold, "source": "fracture model (448-px frozen trunk, mean + max)",
             "validation": val, "training_images": {"with": int(y["train"].sum()),
                                                    "without": int(len(y["train"]) - y["train"].sum())}}
    for info in infos:
        m = model if info is first else info.load()
        meta = dict(info.meta, appliance=entry)
        save_model(with_appliance_head(m, info.meta["backbone"], w, b), meta, Path(weights_dir), info.meta["name"])
    print(f"Appliance detector: validation AUC {val['auc']:.3f}, sensitivity {val['sensitivity']:.1%}, specificity "
          f"{val['specificity']:.1%} at {threshold:.3f} ({int(y['val'].sum())} films with one, "
          f"{int(len(y['val']) - y['val'].sum())} without)", file=sys.stderr)
    return entry
