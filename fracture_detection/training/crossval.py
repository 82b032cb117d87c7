"""Cross-validated fracture models: every labelled film of train + validation scored once by a model
that never saw it, so the two cuts rest on all of them instead of the validation split alone.

* :func:`cv_folds`: ``k`` folds, grouped (a patient, a near-duplicate cluster or an upload never spans two)
  and stratified by part x label x appliance.
* :func:`out_of_fold`: one model per fold on the other folds' films (early stopping on its own fold),
  the held-out fold's probabilities and cell maps, and how many fine-tuning epochs each fold chose.
* :func:`final_epochs`: the epochs the shipped model, trained on every fold at once, then runs.

The frozen trunk's features of every film (and of its augmented copies) are computed once and shared
by the folds: a fold's model sees the same versions of its films as it would trained alone.  Early
stopping on the held-out fold lets that fold pick its epoch, which leans its out-of-fold scores a
little towards optimism; the cuts then rest on five times the films of the validation split.
"""
from __future__ import annotations

import numpy as np

from ..evaluation import metrics

DEFAULT_FOLDS = 5


def strata(records) -> list[str]:
    """What the folds keep in proportion: body part x label x appliance in view (known or not)."""
    return [f"{r.part}|{r.label}|{r.treated}" for r in records]


def cv_folds(records, k: int = DEFAULT_FOLDS, seed: int = 42) -> np.ndarray:
    """Fold index (0..k-1) per record: grouped by ``record.group``, stratified by :func:`strata`, seeded."""
    from sklearn.model_selection import StratifiedGroupKFold
    groups = [r.group for r in records]
    if len(set(groups)) < k:
        raise ValueError(f"{k}-fold cross-validation needs at least {k} patients or image groups; "
                         f"there are {len(set(groups))}.")
    folds = np.full(len(records), -1, dtype=int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, held) in enumerate(splitter.split(np.zeros(len(records)), strata(records), groups)):
        folds[held] = f
    return folds


def subset_versions(versions, idx, first_only: bool = False):
    """The training versions (see :class:`fracture.Versions`) of the films ``idx`` only (``first_only``:
    their original version alone, as a validation set)."""
    kept = range(1 if first_only else len(versions.inputs))
    return type(versions)([versions.inputs[k][idx] for k in kept],
                          [tuple(a[idx] for a in versions.targets[k]) for k in kept],
                          versions.y[idx], versions.weights[idx])


def chosen_fine_tune_epochs(history: dict) -> int:
    """How many fine-tuning epochs a fold's early stopping kept (0 when the head alone was kept)."""
    if history.get("kept") == "head":
        return 0
    losses = [v for v, ph in zip(history.get("val_loss", []), history.get("phase", [])) if ph == "fine_tune"]
    return int(np.argmin(losses)) + 1 if losses else 0


def final_epochs(per_fold: list[int]) -> int:
    """The fine-tuning epochs of the model trained on every fold: the folds' median, rounded."""
    return int(round(float(np.median(per_fold)))) if per_fold else 0


def out_of_fold(trainer, versions, folds: np.ndarray, log=print, start: str | None = None) -> dict:
    """Train one model per fold on the other folds and score the held-out films (their original
    version, as the app sees them).  ``versions``: every film's training versions; the first is the
    original; ``start``: the part whose starting model (``--init-from``) each fold begins from.  Returns out-of-fold ``probs`` and ``maps`` in the films' order, the fine-tuning epochs
    each fold chose, and each fold's AUC."""
    n = len(versions.y)
    probs = np.full(n, np.nan)
    maps = None
    chosen, aucs = [], []
    for f in sorted(set(int(v) for v in folds)):
        held, rest = np.nonzero(folds == f)[0], np.nonzero(folds != f)[0]
        trainer.reset(start)
        history = trainer.fit(subset_versions(versions, rest), subset_versions(versions, held, first_only=True))
        p, m = trainer.predict(versions.inputs[0][held])
        probs[held] = p
        if maps is None:
            maps = np.zeros((n,) + m.shape[1:], dtype="float32")
        maps[held] = m
        chosen.append(chosen_fine_tune_epochs(history))
        aucs.append(metrics.binary_metrics(versions.y[held], p)["auc"])
        log(f"    fold {f + 1}: {len(rest)} films trained, {len(held)} scored, AUC {aucs[-1]:.3f}, "
            f"{chosen[-1]} fine-tuning epochs kept")
    return {"probs": probs, "maps": maps, "fine_tune_epochs": chosen, "fold_auc": aucs}
