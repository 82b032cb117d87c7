"""Recalibration on a site's own films: each fracture model's two cuts chosen again so that they keep
the reader's two promises on those films, written into a new models folder.

The promises (:func:`decisions.select_cuts`): a *No fracture found* falls on at most 5 % of the untreated
fractures (no cast, splint or implant in view, from the site's ``appliances.csv`` or manifest; every
fracture where nothing is labelled), and at least 90 % of the films called *Likely FRACTURE* are
fractured. The models themselves are not changed: the new folder holds a copy of them, with new cuts
and a ``recalibration`` record in each recalibrated model's metadata. A part with too few labelled
films keeps its cuts, and the record says so.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..chain import decisions
from ..chain.amber import amber_bins
from ..io import files
from ..models.artifacts import WeightsError
from . import metrics

MIN_FRACTURED = 20   # labelled fractured films a part needs before its cuts are moved
MIN_NORMAL = 20      # and normal films


def promise_check(y, p, untreated, edges) -> dict:
    """The two promises of cuts ``edges`` on films ``y``/``p``: the share of the promise's fractures
    (untreated ones where any is known, else all) called *No fracture found*, and the share of the films
    called *Likely FRACTURE* that are fractured, each with its count and 95 % Wilson interval; and the
    share left *uncertain*."""
    y, p = np.asarray(y, dtype=int), np.round(np.asarray(p, dtype=float), decisions.DECIMALS)
    u = np.asarray(untreated, dtype=bool) & (y == 1)
    basis = u if u.any() else y == 1
    low, high = edges
    return {"edges": [float(low), float(high)], "basis": "untreated" if u.any() else "all fractured",
            "missed": metrics.proportion(p[basis] < low),
            "likely_fracture_right": metrics.proportion(y[p >= high] == 1),
            "uncertain": float(np.mean((p >= low) & (p < high))) if len(p) else None}


def part_cuts(y, p, untreated, before, n_boot: int = 1000, min_fractured: int = MIN_FRACTURED,
              min_normal: int = MIN_NORMAL) -> dict:
    """New cuts for one part (with their bootstrap intervals) and the promises before and after, or the
    old cuts kept, with the reason, where the part has too few labelled films."""
    y = np.asarray(y, dtype=int)
    n_fx, n_nm = int(y.sum()), int(len(y) - y.sum())
    out = {"n_fractured": n_fx, "n_normal": n_nm, "before": promise_check(y, p, untreated, before)}
    if n_fx < min_fractured or n_nm < min_normal:
        out["kept"] = (f"{n_fx} fractured and {n_nm} normal radiographs, fewer than the {min_fractured} and "
                       f"{min_normal} needed: the bundled cuts are kept")
        return out
    cuts = decisions.select_cuts(y, p, untreated)
    cuts["ci95"] = metrics.cut_intervals(y, p, untreated, n_boot)
    out["cuts"] = cuts
    edges = (cuts["no_fracture_below"], cuts["fracture_from"])
    out["after"] = promise_check(y, p, untreated, edges)
    out["amber"] = amber_bins(y, p, edges, "site")  # the rank inside "uncertain" at the new cuts, same films
    return out


def recalibrate(predictor, records, probs, new_dir: Path, description: str, n_boot: int = 1000,
                min_fractured: int = MIN_FRACTURED, min_normal: int = MIN_NORMAL) -> dict:
    """Choose each part's cuts on ``records`` (``probs``: the part's fracture model on each film's true
    part, NaN where none; each radiograph once, as the evaluation counts them:
    :func:`metrics.part_radiographs`) and write a copy of ``predictor``'s models folder to ``new_dir``
    with them."""
    new_dir, weights_dir = Path(new_dir), Path(predictor.weights_dir)
    check_new_folder(new_dir, weights_dir)
    parts = {}
    for part, fm in predictor.fracture.items():
        # the films the test figures count, each radiograph once (its copies' mean probability)
        rad = metrics.part_radiographs(records, probs, part, getattr(predictor, "names_views", False))
        if rad is None:
            continue
        untreated = [records[i].treated is False for i in rad["first"]]
        parts[part] = part_cuts(rad["y"], rad["p"], untreated, fm.edges, n_boot, min_fractured, min_normal)
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    _write_folder(weights_dir, new_dir, predictor, parts, description, when)
    return {"folder": str(new_dir), "data": description, "created": when, "parts": parts,
            "min_films": [min_fractured, min_normal]}


def check_new_folder(new_dir: Path, weights_dir: Path) -> None:
    """A recalibrated or fine-tuned models folder is a new one: never the folder it comes from, never
    one with files in it."""
    new_dir = Path(new_dir)
    if new_dir.resolve() == Path(weights_dir).resolve():
        raise WeightsError("The new models need a new folder, not the models folder they come from.")
    if new_dir.exists() and (not new_dir.is_dir() or any(new_dir.iterdir())):
        raise WeightsError(f"{new_dir} already exists and is not empty: choose a new folder for the new models.")


def _write_folder(weights_dir: Path, new_dir: Path, predictor, parts: dict, description: str, when: str) -> None:
    """A copy of the models folder with the new cuts, written beside ``new_dir`` and renamed onto it, so
    that a failed run leaves no half-written folder."""
    new_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=new_dir.parent, prefix=f".{new_dir.name}."))
    try:
        shutil.copytree(weights_dir, tmp, dirs_exist_ok=True)
        _keep_data_root(tmp, weights_dir, new_dir)
        for part, entry in parts.items():
            meta_path = tmp / predictor.fracture[part].info.path.with_suffix(".json").name
            meta = json.loads(meta_path.read_text())
            record = {"data": description, "created": when, "from": str(weights_dir),
                      **{k: entry[k] for k in ("n_fractured", "n_normal", "before", "after", "kept") if k in entry}}
            if "cuts" in entry:
                record["bundled_cuts"] = meta.get("cuts")
                meta["cuts"] = entry["cuts"]
                meta["uncertain_band"] = [entry["cuts"]["no_fracture_below"], entry["cuts"]["fracture_from"]]
                meta["amber"] = entry["amber"]  # the bundle's bins cover the old uncertain range only
            meta["recalibration"] = record
            files.atomic_write_json(meta_path, meta)
        if new_dir.exists():
            new_dir.rmdir()  # empty (checked): os.replace onto a folder needs it gone
        os.replace(tmp, new_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _keep_data_root(folder: Path, weights_dir: Path, new_dir: Path) -> None:
    """Model metadata name its training data relative to its folder: point the copies in ``folder`` (to
    become ``new_dir``) at the same data."""
    from ..models.artifacts import resolve_data_root
    for path in sorted(folder.glob("*.json")):
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("data"), dict) or "root" not in meta["data"]:
            continue
        root = resolve_data_root(meta, weights_dir)
        try:
            meta["data"]["root"] = os.path.relpath(root, new_dir.resolve())
        except ValueError:  # another drive on Windows
            meta["data"]["root"] = str(root)
        files.atomic_write_json(path, meta)


def markdown(r: dict) -> list[str]:
    """The report's recalibration section: per part, the cuts and the two promises before and after."""
    lines = ["## Recalibration on these films", "",
             f"New models folder: `{r['folder']}` (the same models; new cuts where a part had at least "
             f"{r['min_films'][0]} fractured and {r['min_films'][1]} normal films). The figures *after* are measured "
             "on the same films the cuts were chosen on, so they keep the promises by construction: check them on "
             "other films of the site (`predictions_test.py --weights NEW --data OTHER`). Intervals: 95 % "
             "bootstrap for the cuts, Wilson for the shares.", "",
             "| part | films (fractured / normal) | cuts: No fracture below · Likely FRACTURE from | promise fractures "
             "called No fracture found (≤ 5 %) | Likely FRACTURE right (≥ 90 %) | uncertain |",
             "|---|---|---|---|---|---|"]

    def share(s):
        if not s["n"]:
            return "– (none)"
        ci = s.get("ci95")
        return f"{s['k']} of {s['n']} ({s['share']:.1%}; {ci[0]:.1%}–{ci[1]:.1%})"

    for part, e in r["parts"].items():
        for when in ("before", "after"):
            if when not in e:
                continue
            c = e[when]
            cuts = f"{c['edges'][0]:.4f} · {c['edges'][1]:.4f}"
            if when == "after":
                ci = e["cuts"]["ci95"]
                cuts += (f" (95 %: [{ci['no_fracture_below'][0]:.4f}, {ci['no_fracture_below'][1]:.4f}] · "
                         f"[{ci['fracture_from'][0]:.4f}, {ci['fracture_from'][1]:.4f}])"
                         if ci["no_fracture_below"][0] is not None else "")
            uncertain = "–" if c["uncertain"] is None else f"{c['uncertain']:.1%}"
            lines.append(f"| {part} ({when}) | {e['n_fractured']} / {e['n_normal']} | {cuts} | {share(c['missed'])} "
                         f"({c['basis']}) | {share(c['likely_fracture_right'])} | {uncertain} |")
        if "kept" in e:
            lines.append(f"| {part} | {e['n_fractured']} / {e['n_normal']} | kept: {e['kept']} | | | |")
    return lines
