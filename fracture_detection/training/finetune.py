"""Fine-tuning from a models folder on a site's films: the figures before and after, on the site's
held-out (test) films, which neither model trained or chose its cuts on."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..evaluation import metrics
from ..evaluation.recalibrate import promise_check
from ..io import files
from ..models import artifacts


def complete_folder(init_from: Path, out_dir: Path) -> list[str]:
    """Copy the models the fine-tuning did not replace (the body-part model, other parts' fracture
    models) from ``init_from`` into ``out_dir``, so that it is a models folder the app can use."""
    copied = []
    have = {i.path.stem for i in artifacts.find_models(out_dir)}
    for info in artifacts.find_models(init_from):
        stem = info.path.stem
        if stem in have:
            continue
        for src in sorted(Path(init_from).glob(stem + ".*")):
            shutil.copy2(src, Path(out_dir) / src.name)
        copied.append(stem)
    return copied


def before_and_after(init_from: Path, out_dir: Path, records, parts, n_boot: int = 1000) -> dict:
    """Each fine-tuned part's model and the model it started from, on the site's test films: AUC with
    its 95 % interval, and the two promises at each model's own cuts. Written to ``out_dir``'s
    ``fine_tune.json`` and ``fine_tune.md`` and printed."""
    from ..chain.predictor import Predictor
    copied = complete_folder(init_from, out_dir)
    if copied:
        print(f"Copied from {init_from} (not fine-tuned): {', '.join(copied)}")
    models = {"before": Predictor(init_from), "after": Predictor(out_dir)}
    out = {"from": str(init_from), "films": "the test split of the site's films (split.csv in this folder)",
           "parts": {}}
    for part in parts:
        test = [r for r in records if r.split == "test" and r.part == part and r.label is not None]
        y = np.array([r.label for r in test], dtype=int)
        untreated = [r.treated is False for r in test]
        entry = {"n_fractured": int(y.sum()), "n_normal": int(len(y) - y.sum())}
        for when, predictor in models.items():
            if part not in predictor.fracture or not test:
                continue
            prepared = [predictor.prepare(r.path) for r in test]
            keep = [k for k, item in enumerate(prepared) if not isinstance(item, Exception)]
            p = predictor.fracture_probabilities([prepared[k] for k in keep], part)
            figures = metrics.with_intervals(y[keep], p, n_boot=n_boot) if len(set(y[keep])) == 2 else None
            entry[when] = {"auc": None if figures is None else figures["auc"],
                           "auc_ci95": None if figures is None else figures["ci95"]["auc"],
                           **promise_check(y[keep], p, [untreated[k] for k in keep], predictor.fracture[part].edges)}
        out["parts"][part] = entry
    files.atomic_write_json(Path(out_dir) / "fine_tune.json", out)
    text = "\n".join(markdown(out)) + "\n"
    files.atomic_write_text(Path(out_dir) / "fine_tune.md", text)
    print(text)
    return out


def markdown(r: dict) -> list[str]:
    lines = ["# Fine-tuning: before and after, on the site's held-out films", "",
             f"Started from `{r['from']}`; measured on {r['films']}, which neither model trained or chose its cuts "
             "on. Each model at its own two cuts. Decision support, not a diagnosis.", "",
             "| part | test films (fractured / normal) | model | AUC [95 %] | promise fractures called No fracture "
             "found | Likely FRACTURE right | uncertain |", "|---|---|---|---|---|---|---|"]

    def share(s):
        return "–" if not s["n"] else f"{s['k']} of {s['n']} ({s['share']:.0%})"

    for part, e in r["parts"].items():
        for when in ("before", "after"):
            f = e.get(when)
            if f is None:
                continue
            ci = f["auc_ci95"] or [None, None]
            auc = "–" if f["auc"] is None or not np.isfinite(f["auc"]) else f"{f['auc']:.3f}" + (
                f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "")
            uncertain = "–" if f["uncertain"] is None else f"{f['uncertain']:.0%}"
            lines.append(f"| {part} | {e['n_fractured']} / {e['n_normal']} | {when} | {auc} | {share(f['missed'])} | "
                         f"{share(f['likely_fracture_right'])} | {uncertain} |")
    if not r["parts"]:
        lines.append("No part had test films.")
    return lines
