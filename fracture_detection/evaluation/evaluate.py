"""Evaluation of the whole chain and of each model, with the figures the field reports.

Sections: choosing the evaluation images, running the models over them in batches,
computing metrics (image and study level, bootstrap intervals), one row per film, the gate's
figures, and :func:`evaluate`, which writes ``metrics.json``, ``predictions.csv``, the PNG plots
(:mod:`plots`) and ``report.md`` (:mod:`report_text`) to an output folder.
"""
from __future__ import annotations

import io
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..chain import decisions
from ..io import data, files
from ..io.images import ImageError
from ..models import artifacts
from . import metrics
from .metrics import SOFT_LINE
from .plots import plot_results, plot_training
from .report_text import report_markdown

NOT_SUPPORTED = "not_supported"


# --- which images ------------------------------------------------------------------

def evaluation_records(weights_dir: Path, data_root: Path | None, layout: str,
                       saved_root: Path | None = None, all_films: bool = False) -> tuple[list, str, Path]:
    """The saved test split of the weights (default; ``saved_root``: where their data is now, when it
    moved), MURA's official valid split, or a whole folder. A folder whose films the weights' split lists
    as training or validation films gives only its test films and the films the split does not list,
    with a warning (``all_films``: every film all the same, with the warning)."""
    if data_root is None:
        body, _ = artifacts.model_set(weights_dir)
        root = Path(saved_root) if saved_root is not None else artifacts.resolve_data_root(body.meta, weights_dir)
        split_file = Path(weights_dir) / body.meta["data"].get("split_file", "split.csv")
        if not split_file.is_file():
            raise data.DatasetError(f"The weights in {weights_dir} have no saved split ({split_file.name}); "
                                    "pass --data to evaluate on a folder.")
        if not root.is_dir():
            raise data.DatasetError(f"The training data ({root}) is not on this machine: pass --data-root with "
                                    "where it is now (the saved split is kept), or --data for other films.")
        records = [r for r in data.read_split(split_file, root) if r.split == "test"]
        if not any(Path(r.path).is_file() for r in records):
            raise data.DatasetError(f"None of the saved test films of {Path(weights_dir).name}/ is in {root}: "
                                    "pass --data-root with the folder the weights were trained on.")
        return records, (f"the test split of {Path(weights_dir).name}/ ({split_file.name}; data in "
                         f"{root})"), root
    records = data.read_dataset(data_root, layout)
    if any(r.split == "test" for r in records):  # MURA: the official valid split
        records = [r for r in records if r.split == "test"]
        return records, f"MURA official valid split ({data_root})", Path(data_root)
    description = f"all labelled images in {data_root}"
    split_file = Path(weights_dir) / data.SPLIT_FILE
    listed = 0
    if split_file.is_file():  # the split's paths are relative to the training data: here, or where it was
        body, _ = artifacts.model_set(weights_dir)
        for root in (Path(data_root), saved_root, artifacts.resolve_data_root(body.meta, weights_dir)):
            if root is not None and Path(root).is_dir():
                listed = data.apply_split(records, split_file, Path(root))
                if listed:
                    break
    trained = [r for r in records if r.split in ("train", "val")]
    if trained:
        print(f"warning: {len(trained)} of the {len(records)} films in {data_root} trained or validated these "
              f"models (their {split_file.name}); " + (
                  "they are evaluated all the same (--all-films)." if all_films else
                  f"they are left out: evaluating the {len(records) - len(trained)} others (the split's test "
                  "films and films it does not list). --all-films evaluates every film."), file=sys.stderr)
        if not all_films:
            records = [r for r in records if r.split not in ("train", "val")]
            description = (f"the films in {data_root} that did not train or validate these models "
                           f"({len(trained)} left out by {split_file.name})")
        else:
            description += f" ({len(trained)} of them trained or validated these models)"
    elif listed:
        description += f" ({listed} of them in the test split of {split_file.name})"
    for r in records:
        r.split = "test"
    return records, description, Path(data_root)


def synthetic_test_images(weights_dir: Path) -> list[np.ndarray]:
    """The generated non-radiographs of the body-part model's test split (rebuilt from its seed)."""
    from ..io.synthetic import non_radiographs, split_of
    body, _ = artifacts.model_set(weights_dir)
    spec = body.meta.get("synthetic_non_radiographs") or {}
    n = int(spec.get("count", 0))
    if not n:
        return []
    return [im for i, im in enumerate(non_radiographs(n, seed=int(spec.get("seed", 0))))
            if split_of(i, n) == "test"]


# --- running the models --------------------------------------------------------------

def run_models(predictor, records, extra_images=(), batch_size: int = 32, progress=None) -> dict:
    """Chain predictions for every record, plus each fracture model on its true part
    (:meth:`data.Record.fracture_part`)."""
    by_region = getattr(predictor, "names_views", False)
    sources = [r.path for r in records] + list(extra_images)
    chain, true_part = [], np.full(len(sources), np.nan)
    maps, shapes = {}, {}  # true-part cell maps and image sizes, by record index
    for chunk, prepared in predictor.read_ahead(sources, batch_size):
        start = len(chain)
        chain += predictor.chain(chunk, prepared)
        for part in predictor.fracture:
            idx = [k for k in range(len(chunk)) if start + k < len(records)
                   and records[start + k].fracture_part(by_region) == part
                   and not isinstance(prepared[k], ImageError)]
            if idx:
                probs, cells = predictor.fracture_outputs([prepared[k] for k in idx], part)
                true_part[[start + k for k in idx]] = probs
                for k, m in zip(idx, cells):
                    maps[start + k], shapes[start + k] = m, prepared[k].shape
        if progress is not None:
            progress(len(chain), len(sources))
    return {"chain": chain, "true_part_probability": true_part, "true_part_maps": maps, "shapes": shapes}


# --- metrics -------------------------------------------------------------------------

def truth_name(rec, by_region: bool) -> str:
    """What a film truly is, for the body-part figures: its region (a body-part model that learns views
    routes by region), or for a film of another region what it shows (humerus, chest, other: by eye) or
    its dataset part (leg, hip, spine); its dataset part for a body-part model made before views."""
    if not by_region:
        return rec.part
    return rec.view if rec.region == data.OTHER_REGION and rec.view else rec.region


def _truth_class(rec, parts, by_region: bool = False) -> str | None:
    name = truth_name(rec, by_region)
    if name in parts:
        return name
    return None if name == "mixed" else NOT_SUPPORTED


def compute_metrics(predictor, records, results, n_boot: int = 1000) -> dict:
    by_region = getattr(predictor, "names_views", False)
    parts = predictor.regions if by_region else predictor.parts
    chain = results["chain"]
    out: dict = {"images": len(records), "unreadable": sum(p.finding == "error" for p in chain)}
    # body part, including the not-supported class
    labels = parts + [NOT_SUPPORTED]
    truth, pred = [], []
    for rec, p in zip(records, chain):
        t = _truth_class(rec, parts, by_region)
        if t is None or p.finding == "error":
            continue
        truth.append(t)
        pred.append(p.body_part if p.body_part else NOT_SUPPORTED)
    from sklearn.metrics import confusion_matrix
    cm = confusion_matrix(truth, pred, labels=labels) if truth else np.zeros((len(labels),) * 2, int)
    truth_a, pred_a = np.array(truth), np.array(pred)
    target = np.isin(truth_a, parts)
    out["body_part"] = {
        "labels": labels, "confusion_matrix": cm.tolist(), "n": len(truth),
        "accuracy": float((truth_a == pred_a).mean()) if truth else None,
        "accuracy_on_target_parts": float((truth_a[target] == pred_a[target]).mean()) if target.any() else None,
        "target_images_rejected": float((pred_a[target] == NOT_SUPPORTED).mean()) if target.any() else None,
        "non_target_radiographs_rejected": float((pred_a[~target] == NOT_SUPPORTED).mean())
        if (~target).any() else None,
        "n_target": int(target.sum()), "n_non_target": int((~target).sum()),
        "non_target_parts": dict(Counter(truth_name(r, by_region) for r in records
                                         if _truth_class(r, parts, by_region) == NOT_SUPPORTED)),
    }
    synth = chain[len(records):]
    out["body_part"]["non_radiographs"] = {
        "n": len(synth), "rejected": float(np.mean([p.finding == NOT_SUPPORTED for p in synth])) if synth else None}
    out["gate"] = gate_metrics(records, chain, parts, by_region)

    # fracture models on their true part, image and study level, each radiograph once
    out["fracture"] = {}
    probs = results["true_part_probability"]
    pooled = defaultdict(list)
    for part, fm in predictor.fracture.items():
        rad = metrics.part_radiographs(records, probs, part, by_region)
        if rad is None:
            continue
        idx, members, first, y, p = rad["films"], rad["members"], rad["first"], rad["y"], rad["p"]
        studies = [records[i].study for i in first]
        findings = [fm.finding(v) for v in p]
        kinds = metrics.film_kinds(y, [records[i].treated for i in first])
        film_y, film_p = np.array([records[i].label for i in idx]), np.round(probs[idx], decisions.DECIMALS)
        film_findings = [fm.finding(v) for v in film_p]
        film_kinds = metrics.film_kinds(film_y, [records[i].treated for i in idx])
        out["fracture"][part] = {
            "model": fm.info.meta.get("name"), "threshold": fm.threshold, "uncertain_band": list(fm.edges),
            "counted": "radiographs", "n_films": len(idx), "n_radiographs": len(first),
            "copies_disagree": sum(len({film_findings[k] for k in m}) > 1 for m in members),
            "by_kind": metrics.promises_by_kind(y, p, findings, kinds, n_boot),
            **fracture_figures(y, p, studies, fm.threshold, n_boot),
            "findings": decided_figures(findings, y),
            "brier": float(np.mean((p - y) ** 2)),
            "calibration": metrics.calibration_bins(y, p),
            "study_verdict": study_verdicts(studies, findings, y),
            "localisation": _localisation(records, idx, results, fm, n_boot),
            "localisation_by_kind": {k: _localisation(records, [i for i, kk in zip(idx, film_kinds) if kk in (k, "normal")],
                                                      results, fm, n_boot) for k in metrics.FILM_KINDS},
            "end_to_end": _end_to_end([chain[i] for i in idx], members, y, part, kinds, n_boot),
            "amber": amber_figures(y, p, fm.info.meta),
            "by_source": _by_group([records[i].source for i in first], y, p, findings, kinds, n_boot),
            "by_view": _by_group([records[i].view or "–" for i in first], y, p, findings, kinds, n_boot),
            # the same figures counted by film (every augmented copy once), to compare; no intervals
            "films": {"auc": metrics.auc(film_y, film_p),
                      "by_kind": metrics.promises_by_kind(film_y, film_p, film_findings, film_kinds)},
        }
        pooled["y"] += list(y)
        pooled["pred"] += list(p >= fm.threshold)  # each model at its own threshold
        pooled["p"] += list(p)
        pooled["study"] += studies
        pooled["finding"] += findings
        pooled["kind"] += list(kinds)
        pooled["members"] += [[k + len(pooled["chain"]) for k in m] for m in members]
        pooled["chain"] += [chain[i] for i in idx]
        pooled["film_y"] += list(film_y)
        pooled["film_p"] += list(film_p)
        pooled["film_finding"] += film_findings
        pooled["film_kind"] += list(film_kinds)
    if pooled["y"]:
        y, p = np.array(pooled["y"]), np.array(pooled["p"])
        out["fracture_overall"] = {
            "counted": "radiographs", "n_films": len(pooled["chain"]), "n_radiographs": len(y),
            "image": metrics.with_intervals(y, p, n_boot=n_boot, predicted=pooled["pred"]),
            "image_auc_pooled_probabilities": metrics.binary_metrics(y, p)["auc"],
            "study_mura_rule": fracture_figures(y, p, pooled["study"], None, n_boot)["study_mura_rule"],
            "by_kind": metrics.promises_by_kind(y, p, pooled["finding"], pooled["kind"], n_boot),
            "end_to_end": _end_to_end(pooled["chain"], pooled["members"], y, None, pooled["kind"], n_boot),
            "films": {"by_kind": metrics.promises_by_kind(pooled["film_y"], pooled["film_p"], pooled["film_finding"],
                                                          pooled["film_kind"])},
        }
    return out


def _by_group(groups, y, p, findings, kinds, n_boot: int) -> dict:
    """:func:`metrics.promises_by_kind` on each group's radiographs (a source, or a view by eye)."""
    groups = np.asarray(groups, dtype=object)
    y, p, findings, kinds = np.asarray(y), np.asarray(p), np.asarray(findings), np.asarray(kinds, dtype=object)
    return {g: metrics.promises_by_kind(y[m], p[m], findings[m], kinds[m], n_boot)
            for g in sorted(set(groups)) for m in [groups == g]}


def fracture_figures(y, p, studies, threshold: float | None, n_boot: int = 1000) -> dict:
    """A fracture model's figures on images with labels ``y`` and probabilities ``p``: per image and
    per study (mean probability) at ``threshold`` (``p >= threshold``, as a finding is decided; left
    out when None), and per study by MURA's rule (mean > 0.5, :func:`decisions.mura_rule`)."""
    ids, ys, ps = metrics.study_level(studies, y, p)
    out = {}
    if threshold is not None:
        out["image"] = metrics.with_intervals(y, p, threshold, n_boot)
        out["study"] = metrics.with_intervals(ys, ps, threshold, n_boot)
    out["study_mura_rule"] = metrics.with_intervals(ys, ps, n_boot=n_boot, predicted=decisions.mura_rule(ps))
    out["n_studies"] = len(ids)
    return out


def amber_figures(y, p, meta: dict) -> dict | None:
    """How the rank inside *uncertain* (:mod:`chain.amber`) holds on these films: per bin of the model's
    metadata, how many of these films fell in it and how many were fractured, and the AUC among the
    uncertain films (None without bins)."""
    bins = (meta.get("amber") or {}).get("bins")
    if not bins:
        return None
    y, p = np.asarray(y, dtype=int), np.round(np.asarray(p, dtype=float), decisions.DECIMALS)
    rows = []
    for b in bins:
        inside = (p >= b["from"]) & (p < b["to"])
        rows.append({"from": b["from"], "to": b["to"], "n": int(inside.sum()), "fractured": int(y[inside].sum())})
    low, high = decisions.finding_edges(meta)
    unsure = (p >= low) & (p < high)
    auc = metrics.binary_metrics(y[unsure], p[unsure])["auc"] if len(set(y[unsure])) == 2 else None
    return {"bins": rows, "n_uncertain": int(unsure.sum()), "auc_among_uncertain": auc}


def decided_figures(findings, y) -> dict:
    """Coverage (share decided) and how often the decided findings were right, overall and for each
    finding (fractured: positive predictive value; normal: negative predictive value)."""
    y = np.asarray(y, dtype=int)
    findings = np.asarray(findings)
    frac, norm = findings == "fractured", findings == "normal"
    decided = frac | norm
    right = (frac & (y == 1)) | (norm & (y == 0))
    share = (lambda a, b: float(a.sum() / b.sum()) if b.sum() else None)
    return {"n": int(len(y)), "coverage": share(decided, np.ones_like(decided)), "n_decided": int(decided.sum()),
            "accuracy_of_decided": share(right & decided, decided),
            "fractured_findings_right": share(frac & (y == 1), frac),
            "normal_findings_right": share(norm & (y == 0), norm),
            "counts": {f: {"fractured": int(((findings == f) & (y == 1)).sum()),
                           "normal": int(((findings == f) & (y == 0)).sum())} for f in ("fractured", "uncertain", "normal")}}


def study_verdicts(study_ids, findings, y) -> dict:
    """The study verdict the app shows (:func:`decisions.study_verdict` over the views' findings),
    scored against the study's label."""
    by_study: dict[str, list] = defaultdict(list)
    label: dict[str, int] = {}
    for s, f, t in zip(study_ids, findings, y):
        by_study[s].append(f)
        label[s] = max(label.get(s, 0), int(t))
    studies = sorted(by_study)
    return decided_figures([decisions.study_verdict(by_study[s]) for s in studies], [label[s] for s in studies])


def _localisation(records, idx, results, fm, n_boot) -> dict | None:
    """Localisation figures of a part's fracture model on images with fracture boxes: counted by film
    (a copy's boxes move with it), its intervals drawn by radiograph (a radiograph's copies together)."""
    from ..io.boxes import square_boxes
    located = [(i, square_boxes(records[i].path)[0]) for i in idx if i in results["true_part_maps"]]
    if not any(len(b) for _, b in located):
        return None
    items = metrics.localisation_items([results["true_part_maps"][i] for i, _ in located],
                                       [records[i].label for i, _ in located], [b for _, b in located],
                                       [results["shapes"][i] for i, _ in located], fm.region_threshold,
                                       fm.region_extent)
    groups = metrics.radiograph_members([records[i].radiograph for i, _ in located])
    return dict(metrics.localisation(items, n_boot, groups=groups), counted="films",
                n_radiographs_with_boxes=len({records[i].radiograph for (i, _), it in zip(located, items)
                                              if it["top_hit"] is not None}))


def _end_to_end(preds, members, y, part, kinds, n_boot: int = 0) -> dict:
    """What the app would have said for these films (routing errors included), and the end-to-end
    sensitivity: the share of fractured radiographs the app called *Likely FRACTURE*, where a film turned
    away by the gate (not analysed), unreadable, *uncertain* or *No fracture found* counts as not
    flagged; per kind of fractured radiograph (untreated first) and for all. ``preds`` per film,
    ``members`` each radiograph's films (:func:`metrics.radiograph_members`), ``y`` and ``kinds`` per
    radiograph. A radiograph's answer is the one more than half of its copies got (copies that split
    count as *uncertain*, routed nowhere). ``part`` None: pooled."""
    finding = metrics.majority([p.finding for p in preds], members, tie="uncertain")
    part_of = metrics.majority([p.body_part for p in preds], members, tie=None)
    mine = [b == part if part else b is not None for b in part_of]
    decided = [(f, t) for f, t, m in zip(finding, y, mine) if m and f in ("fractured", "normal")]
    correct = sum((f == "fractured") == bool(t) for f, t in decided)
    flagged = np.array([f == "fractured" for f in finding], dtype=bool)
    kinds = np.asarray(kinds, dtype=object)
    sensitivity = {}
    for kind in (*metrics.FILM_KINDS, "all"):
        of = (np.asarray(y) == 1) & ((kinds == kind) if kind != "all" else True)
        sensitivity[kind] = metrics.proportion(flagged[of], n_boot)
    return {"n": len(members), "n_films": len(preds), "counted": "radiographs",
            "routed_to_this_model": float(np.mean(mine)) if members else None,
            "findings": dict(Counter(finding)), "films_findings": dict(Counter(p.finding for p in preds)),
            "copies_split": sum(len({preds[i].finding for i in m}) > 1 for m in members),
            "accuracy_of_decided_findings": correct / len(decided) if decided else None,
            "n_decided": len(decided), "sensitivity": sensitivity}


# --- one row per film -------------------------------------------------------------

PREDICTION_COLUMNS = ("path", "true_part", "true_label", "appliance", "patient", "study", "body_part", "finding",
                      "rejection", "app_fracture_probability", "fracture_probability", "model_finding",
                      "in_fracture_figures", "true_view", "view", "fracture_model", "radiograph",
                      "true_view_confidence")


def prediction_rows(predictor, records, results, root: Path) -> list[dict]:
    """One row per film evaluated: its truth (part, label, appliance by eye, patient, study), what the
    app said (``body_part``, ``finding``, ``rejection``, ``app_fracture_probability``: the chain's, empty
    where the film was not analysed) and what the fracture figures use: ``fracture_probability``, the
    fracture model of the film's *true* part on it, also where the gate turned the film away, rounded as
    reported; ``model_finding``, that model's finding at its two cuts; ``in_fracture_figures``, 1 where the
    film counts in the fracture figures (a modelled part, a known label, a readable film); ``true_view``
    (by eye, or the part) and ``view`` (what the app named); ``fracture_model``, the model that scored
    it (:meth:`data.Record.fracture_part`); ``radiograph``, the radiograph it is a copy of (the fracture figures
    count each once: the mean of its copies' ``fracture_probability``, see :func:`metrics.part_radiographs`);
    ``true_view_confidence``, how sure the view by eye is (``views.csv``; empty where not rated)."""
    probs = results["true_part_probability"]
    by_region = getattr(predictor, "names_views", False)
    rows = []
    for i, (r, c) in enumerate(zip(records, results["chain"])):
        p = probs[i] if i < len(probs) else np.nan
        model = r.fracture_part(by_region)
        counted = model in predictor.fracture and r.label is not None and bool(np.isfinite(p))
        rows.append({
            "path": data._relative(r.path, Path(root)), "true_part": r.part,
            "true_label": "" if r.label is None else int(r.label), "appliance": r.appliance,
            "patient": r.patient, "study": r.study, "body_part": c.body_part or "", "finding": c.finding,
            "rejection": c.rejection or "",
            "app_fracture_probability": "" if c.fracture_probability is None else f"{c.fracture_probability:.4f}",
            "fracture_probability": f"{decisions.reported(p):.4f}" if np.isfinite(p) else "",
            "model_finding": predictor.fracture[model].finding(p) if np.isfinite(p) and model in predictor.fracture
            else "",
            "in_fracture_figures": int(counted), "true_view": r.view, "view": getattr(c, "view", None) or "",
            "fracture_model": model if model in predictor.fracture else "", "radiograph": r.radiograph,
            "true_view_confidence": r.view_confidence})
    return rows


def write_predictions_csv(path: Path, rows: list[dict]) -> None:
    import csv
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PREDICTION_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    files.atomic_write_text(path, buf.getvalue())


# --- the gate: what is rejected, per region, and the appliance head ----------------------

GENERATED = "generated"


def gate_metrics(records, chain, parts, views: bool = False) -> dict:
    """Per region (the records' regions, or parts for a body-part model made before views: see
    :func:`truth_name`, ``views``: a model of views; and ``generated`` for the non-radiographs after them): images, share rejected
    and why, findings, and for a target region the same per source; elbow/hand/shoulder images rejected
    and the body part's accuracy on the accepted ones (and, for a model of views, the view named right
    where the film's view is known); non-target images called fractured; the appliance head on the
    analysed images whose cast/implant label is known."""
    regions = [truth_name(r, views) for r in records] + [GENERATED] * (len(chain) - len(records))
    by_region: dict = {}
    for region in sorted(set(regions)):
        preds = [p for p, g in zip(chain, regions) if g == region and p.finding != "error"]
        if not preds:
            continue
        by_region[region] = {
            "n": len(preds), "rejected": float(np.mean([p.finding == NOT_SUPPORTED for p in preds])),
            "reasons": dict(sorted(Counter(p.rejection for p in preds if p.rejection).items())),
            "findings": dict(sorted(Counter(p.finding for p in preds).items())),
            "target": region in parts}
        if region in parts:  # a cause to look for: a cast, splint or implant in view (labelled by eye)
            mine = [(p, r) for p, r, g in zip(chain, records, regions) if g == region and p.finding != "error"]
            by_region[region]["rejected_with_appliance"] = sum(
                p.finding == NOT_SUPPORTED and data.appliance_label(r) == 1 for p, r in mine)
            by_region[region]["by_source"] = {
                src: {"n": sum(r.source == src for _, r in mine),
                      "rejected": sum(r.source == src and p.finding == NOT_SUPPORTED for p, r in mine)}
                for src in sorted({r.source for _, r in mine})}
    non_target = [p for p, g in zip(chain, regions) if g not in parts and g != "mixed"]
    target = [(p, g) for p, g in zip(chain, regions) if g in parts and p.finding != "error"]
    # the same counted once per radiograph: turned away when more than half of its copies were
    target_keys = [r.radiograph for r, p, g in zip(records, chain, regions) if g in parts and p.finding != "error"]
    turned_away = metrics.majority([p.finding == NOT_SUPPORTED for p, _ in target],
                                   metrics.radiograph_members(target_keys), tie=False)
    accepted = [(p, g) for p, g in target if p.finding != NOT_SUPPORTED]
    known = [(p, data.appliance_label(r)) for p, r, g in zip(chain, records, regions)
             if g in parts and p.finding not in (NOT_SUPPORTED, "error") and data.appliance_label(r) != data.UNKNOWN_APPLIANCE]
    # the view named right: accepted target films whose view is one the model names (views by eye or the part)
    named = [(p.view, r.view, r.view_sure) for p, r, g in zip(chain, records, regions)
             if views and g in parts and p.finding not in (NOT_SUPPORTED, "error") and r.view in
             set(getattr(p, "part_probabilities", {}) or {})]
    sure = [(a, b) for a, b, ok in named if ok]
    pos = [p.appliance is not None for p, a in known if a == 1]
    neg = [p.appliance is None for p, a in known if a == 0]
    flagged = [a for p, a in known if p.appliance is not None]
    return {
        "by_region": by_region,
        "target_rejected": float(np.mean([p.finding == NOT_SUPPORTED for p, _ in target])) if target else None,
        "n_target": len(target),
        "target_rejected_radiographs": float(np.mean(turned_away)) if turned_away else None,
        "n_target_radiographs": len(turned_away),
        "part_accuracy_on_accepted": float(np.mean([p.body_part == g for p, g in accepted])) if accepted else None,
        "view_accuracy_on_accepted": float(np.mean([a == b for a, b, _ in named])) if named else None,
        "n_view_known": len(named),
        "views": {v: dict(sorted(Counter(a for a, b, _ in named if b == v).items()))
                  for v in sorted({b for _, b, _ in named})},
        # the films whose view by eye is sure (not rated low: see data.Record.view_sure)
        "view_accuracy_on_sure": float(np.mean([a == b for a, b in sure])) if sure else None,
        "n_view_sure": len(sure),
        "hand_wrist": hand_wrist_figures(named),
        "non_target_called_fractured": sum(p.finding == "fractured" for p in non_target),
        "non_target_given_a_finding": sum(p.finding in ("fractured", "normal", "uncertain") for p in non_target),
        "n_non_target": len(non_target),
        "appliance": {"positives": len(pos), "negatives": len(neg),
                      "sensitivity": float(np.mean(pos)) if pos else None,
                      "specificity": float(np.mean(neg)) if neg else None,
                      # the line's precision: of the films it was said on, the share that show one
                      "n_flagged": len(flagged), "precision": float(np.mean(flagged)) if flagged else None},
    }


def hand_wrist_figures(named) -> dict:
    """How the model treats the soft line between hand and wrist: among the analysed films whose view by
    eye is hand or wrist, what it named, for the sure films and for those rated low (``named``: (named
    view, view by eye, sure) per film); ``crossed``: the share named the other side of the line (of those
    named hand or wrist), ``left``: the share named neither."""
    out = {}
    for key, want in (("sure", True), ("low", False)):
        rows = [(a, b) for a, b, ok in named if b in SOFT_LINE and ok == want]
        inside = [(a, b) for a, b in rows if a in SOFT_LINE]
        out[key] = {"n": len(rows),
                    "named": {b: dict(sorted(Counter(a for a, bb in rows if bb == b).items())) for b in SOFT_LINE},
                    "right": sum(a == b for a, b in rows),
                    "crossed": float(np.mean([a != b for a, b in inside])) if inside else None,
                    "left": float(np.mean([a not in SOFT_LINE for a, _ in rows])) if rows else None}
    return out


# --- the whole evaluation: figures, plots and report ---------------------------------

def evaluate(weights_dir: Path, out_dir: Path, data_root: Path | None = None, layout: str = "auto",
             batch_size: int = 32, n_boot: int = 1000, verbose: bool = True, progress=None,
             saved_root: Path | None = None, all_films: bool = False, recalibrate_to: Path | None = None,
             min_films: tuple[int, int] | None = None) -> dict:
    """``progress(done, total)``, when given, is called as images are evaluated; ``saved_root`` and
    ``all_films``: see :func:`evaluation_records`; ``recalibrate_to``: a new models folder whose cuts
    keep the promises on these films (:mod:`recalibrate`; ``min_films``: fractured and normal films a
    part needs)."""
    from ..chain.predictor import Predictor
    if recalibrate_to is not None:
        from .recalibrate import check_new_folder
        check_new_folder(recalibrate_to, weights_dir)
    records, description, root = evaluation_records(weights_dir, data_root, layout, saved_root, all_films)
    if not records:
        raise data.DatasetError("There are no images to evaluate.")
    predictor = Predictor(weights_dir)
    extra = synthetic_test_images(weights_dir) if data_root is None else []
    if verbose:
        print(f"Evaluating {len(records)} images ({description})" + (
            f" and {len(extra)} generated non-radiographs" if extra else ""), file=sys.stderr)
    results = run_models(predictor, records, extra, batch_size, progress)
    m = compute_metrics(predictor, records, results, n_boot)
    m["description"], m["bootstrap"] = description, n_boot
    m["models"] = {i.meta["name"]: {k: i.meta.get(k) for k in ("task", "part", "backbone", "image_size",
                                                                "created", "threshold", "uncertain_band")}
                   for i in artifacts.find_models(weights_dir)}
    if recalibrate_to is not None:
        from . import recalibrate
        m["recalibration"] = recalibrate.recalibrate(
            predictor, records, results["true_part_probability"], recalibrate_to, description, n_boot,
            *(min_films or (recalibrate.MIN_FRACTURED, recalibrate.MIN_NORMAL)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_training(weights_dir, out_dir) + plot_results(m, predictor, records, results, out_dir)
    write_predictions_csv(out_dir / "predictions.csv", prediction_rows(predictor, records, results, root))
    files.atomic_write_json(out_dir / "metrics.json", files.without_nan(m))
    files.atomic_write_text(out_dir / "report.md", report_markdown(m, plots))
    return m
