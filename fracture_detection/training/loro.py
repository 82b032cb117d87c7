"""Leave one region out: does the gate reject anatomy that no model here has seen?

Users will bring chest, skull, knee and children's films, and none are in the data.  So, for
each non-target region in the data (leg, hip, forearm, humerus, finger, wrist, spine films and
the generated non-radiographs), the body-part recipe of :mod:`body_part` runs again *without
that region* and the result is asked to reject it:

* retrained in each fold: the layers above the frozen trunk (MobileNetV2 after
  ``features_13_add``: blocks 14 to 17 and the last 1x1 convolution, from their ImageNet
  weights) and the output layer, for ``head_epochs`` epochs on the output layer and up to
  ``epochs`` epochs on both (early stopping on the fold's validation images, best epoch kept),
  on the training images of every other region; then the Mahalanobis statistics (training
  images of the three parts), the target cut, part floor and out-of-distribution threshold (their
  validation images) are fitted again;
* not retrained: the frozen trunk, whose features (and their augmented copies) are computed
  once for all folds, as training does; the appliance head (it plays no part in rejection);
* measured: the share of the left-out region's images rejected (every split: the fold never
  saw any of them; and its test split alone), the findings the bundled fracture models give to
  the ones let through, and, on the test split, the share of elbow, hand and shoulder images
  rejected and the body part's accuracy on the accepted ones.  Each out-of-distribution score
  of :func:`gate.candidate_scores` is scored the same way, on the left-out images outside the
  test split (the comparison that chose the method).

The folds train for fewer epochs than the bundled model (``epochs``, default
:data:`EPOCHS`), which keeps eight folds affordable on a 2-core CPU; the figures are for that
recipe, not for the bundled weights.  With a trunk cache, each fold's trained outputs are kept
beside it too, so the gate can be refitted and scored again without retraining.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from ..chain import decisions
from ..io import data, files
from ..models import artifacts
from . import gate
from .body_part import (GENERATED, Outputs, body_part_data_for, decide, fit_gate, fit_top, pooled_outputs,
                        trunk_features)
from .trainer import TrainConfig, Trainer

EPOCHS = 3        # fine-tuning epochs per fold (the bundled model: up to 15 with early stopping)
HEAD_EPOCHS = 1


def _config(meta: dict, epochs: int, head_epochs: int, verbose: int) -> TrainConfig:
    t = meta.get("training", {})
    return TrainConfig(backbone=meta["backbone"], weights=meta["pretrained_weights"], image_size=meta["image_size"],
                       epochs=epochs, head_epochs=head_epochs, batch_size=t.get("batch_size", 32),
                       learning_rate=t.get("learning_rate", 1e-4), head_learning_rate=t.get("head_learning_rate", 1e-3),
                       patience=t.get("patience", 4), seed=t.get("seed", 42),
                       frozen_through=t.get("frozen_through") or "none", augment_copies=t.get("augment_copies", 2),
                       verbose=verbose)


def leave_one_region_out(weights_dir: Path, epochs: int = EPOCHS, head_epochs: int = HEAD_EPOCHS,
                         trunk_cache: Path | None = None, regions=None, verbose: bool = True) -> dict:
    """Run every fold on the data and split the body-part model in ``weights_dir`` was trained on."""
    weights_dir = Path(weights_dir)
    body, _ = artifacts.model_set(weights_dir)
    meta = body.meta
    if not meta.get("reject_class"):
        raise data.DatasetError("The body-part model has no 'other' class, so there is no region to leave out.")
    root = artifacts.resolve_data_root(meta, weights_dir)
    split_file = weights_dir / meta["data"].get("split_file", "split.csv")
    if not root.is_dir() or not split_file.is_file():
        raise data.DatasetError(f"Leaving regions out needs the training data ({root}) and the saved split "
                                f"({split_file.name}).")
    cfg = _config(meta, epochs, head_epochs, 2 if verbose else 0)
    records = data.read_dataset(root, meta["data"].get("layout", "auto"))
    data.apply_split(records, split_file, root)  # the saved split, never a new one
    bp = body_part_data_for(records, meta)
    trainer = Trainer(bp.classes, cfg)
    fresh = trainer.model.get_weights()
    feats, bp = trunk_features(trainer, bp, cfg, trunk_cache)
    findings = _FindingCounter(weights_dir, bp)
    folds = {}
    for region in regions or bp.non_target_regions():
        start = time.monotonic()
        if verbose:
            print(f"Leaving out {region} ({int((bp.region == region).sum())} images)", file=sys.stderr, flush=True)
        held = bp.region == region
        train, val = (bp.split == "train") & ~held, (bp.split == "val") & ~held
        out, epochs_run = _fold_outputs(trainer, fresh, feats, bp, train, val, _fold_cache(trunk_cache, region, cfg),
                                        meta.get("class_balance", "views"))
        stats, choice = fit_gate(bp, out, train, val, budget_by=meta.get("gate", {}).get("budget_by") or "pooled")
        folds[region] = _fold_figures(bp, out, stats, choice, held, train, val, findings)
        folds[region]["epochs_run"] = epochs_run
        folds[region]["minutes"] = round((time.monotonic() - start) / 60, 1)
        if verbose:
            f = folds[region]["left_out"]
            print(f"  {region}: {f['rejected']:.1%} of {f['n']} rejected", file=sys.stderr, flush=True)
    return {"folds": folds, "epochs": epochs, "head_epochs": head_epochs,
            "frozen_through": trainer.cut, "budget": gate.MAX_TARGET_REJECTION,
            "ood_share": gate.MAX_TARGET_REJECTION * gate.SHARES["unfamiliar"],
            "summary": _summary(folds)}


def _fold_cache(trunk_cache: Path | None, region: str, cfg: TrainConfig) -> Path | None:
    """Where a fold's trained outputs are kept, beside the trunk cache (None without one)."""
    if trunk_cache is None:
        return None
    p = Path(trunk_cache)
    return p.with_name(f"{p.stem}-without-{region}-{cfg.head_epochs}+{cfg.epochs}.npz")


def _fold_outputs(trainer, fresh, feats, bp, train, val, cache: Path | None, balance: str = "views"):
    """The fold's model (trained afresh without the left-out region) on every image: pooled features,
    probabilities and logits, and how many epochs it ran.  Kept in ``cache`` when given (together
    with what it was trained on), so that refitting the gate needs no retraining."""
    key = hashlib.sha256(np.packbits(train).tobytes() + np.packbits(val).tobytes()
                         + str(feats.original.shape).encode()
                         + (b"" if balance == "views" else balance.encode())).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return Outputs(z["pooled"], z["probs"], z["logits"]), int(z["epochs_run"])
    trainer.model.set_weights(fresh)
    history = fit_top(trainer, feats, bp, train, val, balance)
    out = pooled_outputs(trainer, feats.original)
    epochs_run = len(history.get("loss", []))
    if cache is not None:
        with files.atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, key=key, pooled=out.pooled, probs=out.probs, logits=out.logits,
                     epochs_run=epochs_run)
    return out, epochs_run


class _FindingCounter:
    """What the bundled fracture models say about images the gate let through."""

    CHUNK = 64

    def __init__(self, weights_dir: Path, bp):
        from ..chain.predictor import Predictor
        self.predictor = Predictor(weights_dir)
        self.bp = bp

    def findings(self, idx, parts) -> dict:
        counts: dict = {}
        for part in sorted(set(parts)):
            if part not in self.predictor.fracture:
                continue
            chosen = [i for i, p in zip(idx, parts) if p == part]
            fm = self.predictor.fracture[part]
            for start in range(0, len(chosen), self.CHUNK):  # a chunk at a time: prepared images are large
                prepared = [self.predictor.prepare(self.bp.sources[i]) for i in chosen[start:start + self.CHUNK]]
                ok = [p for p in prepared if not isinstance(p, Exception)]
                if not ok:
                    continue
                for p in self.predictor.fracture_probabilities(ok, part):
                    f = fm.finding(decisions.reported(p))
                    counts[f] = counts.get(f, 0) + 1
        return counts


def _share(reasons) -> float | None:
    return float(np.mean([r is not None for r in reasons])) if len(reasons) else None


def _fold_figures(bp, out, stats, choice, held, train, val, findings: _FindingCounter) -> dict:
    rule = bp.rule(choice)
    every = np.ones(len(bp.y), dtype=bool)
    chosen, reasons = decide(bp, out, rule, stats, every)
    test = bp.split == "test"
    left = np.nonzero(held)[0]
    let_through = [i for i in left if reasons[i] is None]
    fold = {
        "gate": {"target_cut": choice.target_cut, "part_floor": choice.part_floor, "ood_threshold": choice.ood_threshold,
                 "validation_target_rejected": choice.validation_target_rejected},
        "left_out": {
            "n": int(held.sum()), "rejected": _share([reasons[i] for i in left]),
            "reasons": _reasons([reasons[i] for i in left]),
            "n_test": int((held & test).sum()), "rejected_test": _share([reasons[i] for i in left if test[i]]),
            "let_through_as": _reasons([bp.classes[chosen[i]] for i in let_through]),
            "findings_of_let_through": findings.findings(let_through, [bp.class_regions[chosen[i]] for i in let_through]),
        },
    }
    target = (bp.y != bp.reject_index) & test
    t_idx = np.nonzero(target)[0]
    accepted = [i for i in t_idx if reasons[i] is None]
    fold["targets_test"] = {"n": len(t_idx), "rejected": _share([reasons[i] for i in t_idx]),
                            "part_accuracy_on_accepted": float(np.mean([bp.class_regions[chosen[i]] ==
                                                                        bp.class_regions[bp.y[i]] for i in accepted]))
                            if accepted else None}
    seen = np.nonzero((bp.y == bp.reject_index) & test & ~held)[0]
    fold["seen_non_target_test"] = {"n": len(seen), "rejected": _share([reasons[i] for i in seen])}
    fold["methods"] = _compare_methods(bp, out, held & ~test, train, val)
    return fold


def _reasons(values) -> dict:
    values = [v for v in values if v is not None]
    return {k: values.count(k) for k in sorted(set(values))}


def _compare_methods(bp, out, left_out: np.ndarray, train: np.ndarray, val: np.ndarray) -> dict:
    """Each candidate score alone, its threshold rejecting at most the OOD check's share of the
    budget of the validation images of the three parts: the share of ``left_out`` rejected and
    the AUROC between the two."""
    from sklearn.metrics import roc_auc_score
    target = bp.y != bp.reject_index
    targets = [i for i in range(len(bp.classes)) if i != bp.reject_index]
    need = (train & target) | (val & target) | left_out
    idx = np.nonzero(need)[0]
    scores = gate.candidate_scores(out.pooled[train & target], bp.y[train & target], out.pooled[idx],
                                   out.logits[idx], out.probs[idx], targets)
    pos = {i: k for k, i in enumerate(idx)}
    va = [pos[i] for i in np.nonzero(val & target)[0]]
    lo = [pos[i] for i in np.nonzero(left_out)[0]]
    res = {}
    for name, s in scores.items():
        thr = gate.threshold_for(s[va], gate.MAX_TARGET_REJECTION * gate.SHARES["unfamiliar"])
        both = np.concatenate([s[va], s[lo]])
        y = np.r_[np.zeros(len(va)), np.ones(len(lo))]
        res[name] = {"rejected": float(np.mean(s[lo] > thr)) if lo else None,
                     "auroc": float(roc_auc_score(y, both)) if lo and va else None}
    return res


def _summary(folds: dict) -> dict:
    radiographs = [r for r in folds if r != GENERATED]
    methods = sorted({m for f in folds.values() for m in f["methods"]})
    return {
        "mean_rejected": float(np.mean([folds[r]["left_out"]["rejected"] for r in folds])) if folds else None,
        "lowest_rejected": min(((folds[r]["left_out"]["rejected"], r) for r in folds), default=(None, None)),
        "left_out_radiographs_rejected": float(np.mean([folds[r]["left_out"]["rejected"] for r in radiographs]))
        if radiographs else None,
        "methods_mean_rejected": {m: float(np.mean([f["methods"][m]["rejected"] for f in folds.values()
                                                    if f["methods"].get(m, {}).get("rejected") is not None]))
                                  for m in methods},
        "methods_mean_auroc": {m: float(np.mean([f["methods"][m]["auroc"] for f in folds.values()
                                                 if f["methods"].get(m, {}).get("auroc") is not None]))
                               for m in methods},
    }
