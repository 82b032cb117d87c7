"""Fine-tuning from a models folder (the bundle's ``weights/`` or one training wrote) on a site's films.

Each part's model starts from the folder's Keras model and trains on the site's training films; its two
cuts and the rank inside *uncertain* (amber) are chosen again on the site's validation films, or kept from
the model started from, with the reason, where those are too few (:class:`Start`).  The cast/implant
detector reads the frozen trunk, which fine-tuning does not change, so it is carried over as it is; its
cut is chosen again on the site's validation films where enough of them have appliance labels.  At the
end, the figures before and after on the site's held-out (test) films, which neither model trained or
chose its cuts on (:func:`before_and_after`).
"""
from __future__ import annotations

import copy
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation import metrics
from ..evaluation.recalibrate import MIN_FRACTURED, MIN_NORMAL, promise_check
from ..io import data, files
from ..models import artifacts

@dataclass
class Start:
    """What a fine-tuning starts from: the folder, its Keras fracture model per part, and how many of the
    site's validation films are enough to choose again on them: a part's fractured and normal films for
    its cuts and amber bins, films with and without a cast, splint or implant for the detector's cut."""
    source: Path
    models: dict                                  # part -> artifacts.ModelInfo (a .keras file)
    min_films: tuple = (MIN_FRACTURED, MIN_NORMAL)
    appliance_kept: str | None = None             # why the starting cast/implant cut is kept (None: chosen again)
    notes: dict = field(default_factory=dict)     # part -> what was chosen again and what kept, for the report

    def plan_appliance_cut(self, records) -> None:
        """Decide, from the site's validation films, whether the cast/implant cut can be chosen again."""
        val = [r for r in records if r.split == "val" and r.label is not None and r.part in data.TARGET_PARTS
               and data.appliance_label(r) != data.UNKNOWN_APPLIANCE]
        n_with = sum(data.appliance_label(r) == 1 for r in val)
        n_without = len(val) - n_with
        need = self.min_films
        self.appliance_kept = None if n_with >= need[0] and n_without >= need[1] else (
            f"{n_with} validation films with a cast, splint or implant and {n_without} without (labels by eye: "
            f"appliances.csv), fewer than the {need[0]} and {need[1]} needed, --min-films")

    def kept_figures(self, part: str, y_val) -> dict | None:
        """The starting model's cuts and amber bins where the site's validation films of ``part`` are too
        few to choose them again (None: choose them on those films); says which, in one sentence."""
        y = np.asarray(y_val, dtype=int)
        n_fx, n_nm = int(y.sum()), int(len(y) - y.sum())
        if n_fx >= self.min_films[0] and n_nm >= self.min_films[1]:
            self.notes[part] = (f"cuts and amber bins chosen again on the site's {n_fx} fractured and {n_nm} "
                                "normal validation films")
            print(f"  {part}: {self.notes[part]}.", flush=True)
            return None
        meta = self.models[part].meta
        reason = (f"{n_fx} fractured and {n_nm} normal validation films, fewer than the {self.min_films[0]} and "
                  f"{self.min_films[1]} needed, --min-films")
        self.notes[part] = (f"cuts and amber bins kept from {self.source} ({reason}); they were measured on the "
                            "model started from, so check them on the site's films (predictions_test.py "
                            "--recalibrate)")
        print(f"  {part}: {self.notes[part]}.", file=sys.stderr, flush=True)
        cuts = dict(copy.deepcopy(meta["cuts"]), kept_from=f"{self.source}: {reason}")
        amber = meta.get("amber")
        return {"cuts": cuts, "uncertain_band": [cuts["no_fracture_below"], cuts["fracture_from"]],
                "amber": None if amber is None else dict(copy.deepcopy(amber), kept_from=f"{self.source}: {reason}")}

    def finish(self, part: str, model, frozen_through: str | None, backbone: str, meta: dict):
        """The fine-tuned model to save, with the starting model's cast/implant detector where it has one
        and the features it reads were not trained; ``meta`` gets its entry and a ``fine_tune`` record."""
        from ..models.locator import APPLIANCE_OUTPUT, mid_layer, single, with_appliance_head
        info = self.models[part]
        meta["fine_tune"] = {"from": str(self.source), "model": info.path.name, "figures": self.notes.get(part)}
        entry = info.meta.get("appliance")
        source = single(info.load())
        layer = next((x for x in source.layers if x.name == APPLIANCE_OUTPUT), None)
        if layer is None or entry is None:
            return model
        if frozen_through != mid_layer(backbone):
            print(f"  {part}: the cast/implant detector of {self.source} is not carried over: it reads the "
                  "stride-16 features, which this fine-tuning trains (--frozen-through).", file=sys.stderr)
            return model
        w, b = layer.get_weights()
        entry = copy.deepcopy(entry)
        if self.appliance_kept:
            entry["cut"] = dict(entry.get("cut") or {}, kept_from=f"{self.source}: {self.appliance_kept}")
        meta["appliance"] = entry
        meta["fine_tune"]["appliance"] = (f"the detector of {self.source}, unchanged; its cut " + (
            f"kept ({self.appliance_kept})" if self.appliance_kept else "chosen again on the site's validation films"))
        return with_appliance_head(model, backbone, np.asarray(w)[:, 0], float(np.asarray(b)[0]))

    def appliance_cut(self, out_dir: Path, data_root: Path, verbose: int = 1) -> None:
        """Choose the carried detector's cut again on the site's validation films, or say why not."""
        carried = [i for i in artifacts.fracture_models(out_dir).values() if "appliance" in i.meta]
        if not carried:
            return
        if self.appliance_kept:
            print(f"The cast/implant cut is kept from {self.source}: {self.appliance_kept}.", file=sys.stderr)
            return
        from .appliance import rechoose_appliance_cut
        rechoose_appliance_cut(out_dir, data_root, verbose=verbose)


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
    saved = artifacts.fracture_models(out_dir)
    for part in parts:
        test = [r for r in records if r.split == "test" and r.part == part and r.label is not None]
        y = np.array([r.label for r in test], dtype=int)
        untreated = [r.treated is False for r in test]
        entry = {"n_fractured": int(y.sum()), "n_normal": int(len(y) - y.sum())}
        record = saved[part].meta.get("fine_tune") or {} if part in saved else {}
        if record.get("figures"):
            entry["chosen"] = record["figures"]
        if record.get("appliance"):
            cut = saved[part].meta["appliance"].get("threshold")
            out["appliance"] = record["appliance"] + ("" if cut is None else f": {cut:.4f}")
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
        if "before" not in e and "after" not in e:
            lines.append(f"| {part} | {e['n_fractured']} / {e['n_normal']} | – | no test films to measure on | "
                         "| | |")
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
    notes = {p: e["chosen"] for p, e in r["parts"].items() if e.get("chosen")}
    if notes:
        lines += ["", "How each fine-tuned model's figures were chosen:", ""]
        lines += [f"- {part}: {note}." for part, note in notes.items()]
    if r.get("appliance"):
        lines += ["", f"Cast/implant detector: {r['appliance']}."]
    return lines
