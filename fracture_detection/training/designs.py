"""Fracture-model designs compared on the untreated validation films (benchmarks/compare_designs.py).

A design is a weights folder made by ``training_fracture.py`` on the same split: per-part models, one
model on every region, appliance films in or out of the positives.  Each runs on every part's
validation films at its own cuts; what counts is the untreated fractures against the normal films.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..chain import decisions
from ..evaluation import metrics
from ..io import files
from ..models import artifacts
from .fracture import OUT_OF_FOLD_FILE, read_out_of_fold, validation_examples, validation_outputs


def design_figures(weights_dir: Path, data_root: Path, examples: dict) -> dict:
    """Per part and pooled: the untreated figures of one design's models at their stored cuts.
    ``examples`` caches each part's validation examples between designs (same split, same films)."""
    fracture = artifacts.fracture_models(weights_dir)
    pooled = {"y": [], "p": [], "finding": [], "kind": [], "items": []}
    per_part = {}
    for part, info in sorted(fracture.items()):
        if part not in examples:
            examples[part] = validation_examples(weights_dir, data_root, part, info.image_size, verbose=0)
        val = examples[part]
        out = validation_outputs(info, val)
        p = np.round(out["probs"], decisions.DECIMALS)
        edges = decisions.finding_edges(info.meta)
        findings = [decisions.fracture_finding(v, edges) for v in p]
        kinds = metrics.film_kinds(val.y, [r.treated for r in val.records])
        where = info.meta.get("localisation") or {}
        items = metrics.localisation_items(out["maps"], val.y, val.boxes, val.shapes, where.get("region_threshold", 0.5),
                                           where.get("region_extent"))
        f = metrics.promise_figures(val.y, p, findings, kinds, "untreated")
        f["top_region_in_box"] = metrics.localisation([it for it, k in zip(items, kinds) if k == "untreated"]
                                                      )["top_region_in_box"]
        f["cuts"] = list(edges)
        per_part[part] = f
        pooled["y"] += list(val.y)
        pooled["p"] += list(p)
        pooled["finding"] += findings
        pooled["kind"] += list(kinds)
        pooled["items"] += [it for it, k in zip(items, kinds) if k == "untreated"]
    whole = metrics.promise_figures(pooled["y"], pooled["p"], pooled["finding"], pooled["kind"], "untreated")
    return {"untreated": per_part, "pooled_auc": whole["auc"], "called": whole["fractured_called"],
            "pooled": whole, "top_region_in_box": metrics.localisation(pooled["items"])["top_region_in_box"]}


def compare_designs(designs, data_root: Path, out: Path, notes=()) -> dict:
    """``designs``: ``(name, weights folder, shipped)``; writes the comparison to ``out`` (JSON)."""
    examples: dict = {}
    runs = []
    for name, folder, shipped in designs:
        figures = design_figures(folder, data_root, examples)
        fracture = artifacts.fracture_models(folder)
        commands = []  # one per distinct training run behind the design's models
        for info in fracture.values():
            c = (info.meta.get("training") or {}).get("command", "")
            if c not in commands:
                commands.append(c)
        command = " ; ".join(commands)
        runs.append({"design": name, "folder": str(folder), "shipped": bool(shipped), "command": command,
                     **figures})
        print(f"{name}: untreated AUC pooled over its parts {figures['pooled_auc']:.3f}; "
              + ", ".join(f"{p} {v['auc']:.3f}" if v["auc"] is not None else f"{p} –"
                          for p, v in figures["untreated"].items()))
    parts = sorted(examples)
    for r in runs:  # pooled figures compare only between designs with a model for every part
        if sorted(r["untreated"]) != parts:
            r["pooled_auc"], r["called"], r["top_region_in_box"] = None, {}, None
            r.pop("pooled")
    result = {"parts": parts, "runs": runs, "notes": list(notes),
              "method": "Validation films of the weights' split; each design's models as the app runs them "
                        "(LiteRT, mirrored where their metadata says so)."}
    files.atomic_write_json(out, result)
    return result




def compare_out_of_fold(candidate_dir: Path, baseline_dir: Path, data_root: Path, out: Path, n_boot: int = 2000) -> dict:
    """A cross-validated design (``candidate_dir``: its models and out-of-fold scores) against the
    baseline's models, paired on the films both may be judged on: the baseline's validation films,
    which no fold model of the candidate trained on when it scored them.  Untreated fractures against
    normal films, per part and pooled; the AUC difference with its paired bootstrap interval."""
    from ..io import data
    examples: dict = {}
    baseline = artifacts.fracture_models(baseline_dir)
    rows, pooled = {}, {"y": [], "new": [], "old": []}
    for part, info in sorted(baseline.items()):
        oof_file = Path(candidate_dir) / OUT_OF_FOLD_FILE.format(part=part)
        if not oof_file.is_file():
            continue
        oof = {r["path"]: r for r in read_out_of_fold(oof_file)}
        examples[part] = val = validation_examples(baseline_dir, data_root, part, info.image_size, verbose=0)
        old = validation_outputs(info, val)["probs"]
        paths = [data._relative(r.path, Path(data_root)) for r in val.records]
        keep = np.array([p in oof and (r.label == 0 or r.treated is False) for p, r in zip(paths, val.records)])
        y = val.y[keep]
        new = np.array([float(oof[p]["probability"]) for p, k in zip(paths, keep) if k])
        rows[part] = metrics.paired_auc_difference(y, new, old[keep], n_boot)
        pooled["y"] += list(y)
        pooled["new"] += list(new)
        pooled["old"] += list(old[keep])
        r = rows[part]
        print(f"{part}: untreated AUC {r['new']:.3f} (out-of-fold) against {r['old']:.3f} (baseline) on "
              f"{r['n_fractured']} untreated fractures and {r['n'] - r['n_fractured']} normal films; difference "
              f"{r['difference']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]")
    # pooled across parts: each film scored by its own part's models (the ranks mix models, as a worklist would)
    result = {"per_part": rows,
              "pooled": metrics.paired_auc_difference(pooled["y"], pooled["new"], pooled["old"], n_boot),
              "candidate": str(candidate_dir), "baseline": str(baseline_dir),
              "method": "The baseline's validation films (its split.csv), untreated fractured films against every "
                        "normal film of the part; the candidate's out-of-fold score of each (from a fold model that "
                        "did not train on it) against the baseline's score as the app runs it (LiteRT); 95 % paired "
                        f"bootstrap interval of the AUC difference, {n_boot} resamples."}
    files.atomic_write_json(out, result)
    return result
