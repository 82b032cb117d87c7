"""The evaluation's report as markdown: ``report.md`` (:func:`report_markdown`) and the tables and
sentences the model card reuses, all read from the figures :mod:`evaluate` computed (``metrics.json``).
"""
from __future__ import annotations

import numpy as np

from . import metrics
from .metrics import SOFT_LINE


def view_markdown(g: dict) -> list[str]:
    """The view named right, on every analysed target film whose view is known and on the sure ones, and
    the hand-versus-wrist line (films: every augmented copy once)."""
    if g.get("view_accuracy_on_accepted") is None:
        return []
    lines = [f"View named right (analysed elbow, hand-region and shoulder films whose view is known, by eye or "
             f"from the dataset's part): {share_text(g['view_accuracy_on_accepted'])} of {g['n_view_known']} films; "
             f"on the films whose view by eye is sure (`views.csv` rates it high, or it comes from a label with no "
             f"rating: Roboflow's `body_parts.csv`, MURA's study type): "
             f"{share_text(g.get('view_accuracy_on_sure'))} of {g.get('n_view_sure', 0)}."]
    soft = hand_wrist_lines(g)
    return ["", *lines] + (["", *(f"- {line}" for line in soft)] if soft else [])


def hand_wrist_lines(g: dict) -> list[str]:
    """How the model treats the soft line between hand and wrist, a sentence for the sure films and one
    for those rated low (:func:`evaluate.hand_wrist_figures`)."""
    lines = []
    hw = g.get("hand_wrist") or {}
    for key, title in (("sure", "whose view by eye is sure"),
                       ("low", "whose view by eye is rated low (mostly hand versus wrist)")):
        f = hw.get(key)
        if not f or not f["n"]:
            continue
        lines.append(f"Hand versus wrist, films {title}: " + "; ".join(
            f"{b} by eye named " + (", ".join(f"{a} {n}" for a, n in f["named"][b].items()) or "–")
            for b in SOFT_LINE) + f" ({f['right']} of {f['n']} right; of those named hand or wrist, "
            f"{share_text(f['crossed'])} the other side of the line).")
    if lines:
        lines.append("Hand and wrist are both the hand region: either word sends the film to the hand model, so "
                     "the soft line changes the view named, never the model that reads the film or its finding.")
    return lines


def gate_markdown(g: dict | None) -> list[str]:
    """The rejection section of a report: per region, what was not analysed and why."""
    if not g:
        return []
    lines = ["", "### What is not analysed, per region", "",
             "| region | films | not analysed | why | findings |", "|---|---:|---:|---|---|"]
    for region, e in g["by_region"].items():
        name = f"**{region}**" if e["target"] else region
        if e.get("by_source"):  # a target region: not analysed per source too
            name += " (" + ", ".join(f"{k} {v['rejected']} of {v['n']}" for k, v in e["by_source"].items()) + ")"
        lines.append(f"| {name} | {e['n']} | {e['rejected']:.1%} | "
                     f"{', '.join(f'{k} {v}' for k, v in e['reasons'].items()) or '–'} | "
                     f"{', '.join(f'{k} {v}' for k, v in e['findings'].items())} |")
    with_appliance = {r: e["rejected_with_appliance"] for r, e in g["by_region"].items() if e.get("rejected_with_appliance")}
    if with_appliance:
        lines += ["", "Not analysed with a cast, splint or implant in view: "
                      + ", ".join(f"{r} {n}" for r, n in with_appliance.items()) + "."]
    by_radiograph = (f" (counted once per radiograph, turned away where more than half of its copies were: "
                     f"{share_text(g['target_rejected_radiographs'])} of {g['n_target_radiographs']})"
                     if g.get("n_target_radiographs") else "")
    lines += ["", f"Elbow, hand or shoulder films not analysed: {share_text(g['target_rejected'])} of {g['n_target']}"
                  f"{by_radiograph}; "
                  f"body part right on {share_text(g['part_accuracy_on_accepted'])} of the analysed ones. "
                  f"Other films given a finding: {g['non_target_given_a_finding']} of {g['n_non_target']}, "
                  f"{g['non_target_called_fractured']} of them *fractured* (films: every augmented copy once)."]
    a = g["appliance"]
    if a["positives"] or a["negatives"]:
        precision = (f"; precision {share_text(a['precision'])} of {a['n_flagged']} flagged"
                     if a.get("n_flagged") is not None else "")
        lines += ["", f"Cast or implant (analysed films with a known label): sensitivity {share_text(a['sensitivity'])} "
                      f"({a['positives']} with one), specificity {share_text(a['specificity'])} ({a['negatives']} without)"
                      f"{precision}."]
    return lines


def share_text(v) -> str:
    """A share as a percentage with one decimal, or "–" where it could not be measured."""
    return "–" if v is None else f"{v:.1%}"


def _fmt(entry, key):
    v, ci = entry.get(key), entry.get("ci95", {}).get(key, [None, None])
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] is not None else f"{v:.3f}"


def fracture_image_table(m: dict, studies: bool = False) -> list[str]:
    """Each fracture model on the radiographs of its true part, at its Youden threshold, with 95 %
    intervals (and, with ``studies``, the MURA study rule's kappa)."""
    extra = " studies | study kappa (> 0.5) |" if studies else ""
    lines = ["| part | radiographs (fractured) | AUC | accuracy | sensitivity | specificity | Cohen's kappa |" + extra,
             "|---|---|---|---|---|---|---|" + ("---:|---|" if studies else "")]
    for part, e in m["fracture"].items():
        im = e["image"]
        row = f"| {part} | {im['n']} ({im['positives']}) | " + " | ".join(
            _fmt(im, k) for k in ("auc", "accuracy", "sensitivity", "specificity", "kappa")) + " |"
        if studies:
            row += f" {e['n_studies']} | {_fmt(e['study_mura_rule'], 'kappa')} |"
        lines.append(row)
    return lines


def findings_table(m: dict) -> list[str]:
    """Markdown table, per part: share of radiographs and studies decided, and how often decided findings
    are right."""
    lines = ["| part | radiographs decided | decided right | fractured findings right | normal findings right | "
             "studies decided | study verdicts right |", "|---|---|---|---|---|---|---|"]
    for part, e in m["fracture"].items():
        f, s = e["findings"], e["study_verdict"]
        lines.append(f"| {part} | {share_text(f['coverage'])} of {f['n']} | {share_text(f['accuracy_of_decided'])} | "
                     f"{share_text(f['fractured_findings_right'])} | {share_text(f['normal_findings_right'])} | "
                     f"{share_text(s['coverage'])} of {s['n']} | {share_text(s['accuracy_of_decided'])} |")
    return lines


KIND_TITLES = {"untreated": "untreated", "appliance": "appliance in view", "all": "all radiographs"}


def promise_table(m: dict) -> list[str]:
    """Per part and pooled, untreated fractures first, each radiograph once: AUC, how fractured radiographs
    were called, whether each finding was right, the uncertain share (with the films behind them), and
    where the top region fell (by film)."""
    rows = [(part, e["by_kind"], dict(e.get("localisation_by_kind") or {}, all=e.get("localisation")),
             (e.get("films") or {}).get("by_kind") or {}) for part, e in m["fracture"].items() if e.get("by_kind")]
    if "fracture_overall" in m and m["fracture_overall"].get("by_kind"):
        o = m["fracture_overall"]
        rows.append(("three parts pooled", o["by_kind"], {}, (o.get("films") or {}).get("by_kind") or {}))
    if not rows:
        return ["No fractured film of these data is labelled for appliances (e.g. MURA): see the figures on all "
                "films below."]
    lines = ["| part | fractured radiographs | radiographs, fractured / normal (films) | AUC | fractures called "
             "fractured / uncertain / normal | \"No fracture found\" right | \"Likely FRACTURE\" right | uncertain | "
             "top region in a true box, films (median IoU) |", "|---|---|---|---|---|---|---|---|---|"]
    for kind in (*metrics.FILM_KINDS, "all"):
        for part, by_kind, loc, films in rows:
            f = by_kind.get(kind)
            if not f or not f["n_fractured"]:
                continue
            ci = f.get("auc_ci95") or [None, None]
            auc = "–" if f["auc"] is None else f"{f['auc']:.3f}" + (
                f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "")
            c = f["fractured_called"]
            where = loc.get(kind)
            top = "–" if not where or where["top_region_in_box"] is None else (
                f"{share_text(where['top_region_in_box'])} of {where['n_fractured_with_boxes']}"
                + (f" ({where['median_top_iou']:.2f})" if where.get("median_top_iou") is not None else ""))
            fl = films.get(kind)
            n_films = f" ({fl['n_fractured'] + fl['n_normal']})" if fl else ""
            lines.append(f"| {part} | {KIND_TITLES[kind]} | {f['n_fractured']} / {f['n_normal']}{n_films} | {auc} | "
                         f"{share_text(c['fractured'])} / {share_text(c['uncertain'])} / {share_text(c['normal'])} | "
                         f"{share_text(f['no_fracture_found_right'])} of {f['n_called_normal']} | "
                         f"{share_text(f['likely_fracture_right'])} of {f['n_called_fractured']} | "
                         f"{share_text(f['uncertain'])} | {top} |")
    return lines


COUNTING = ("How films are counted. Each radiograph counts once: the Roboflow export holds about three "
            "augmented copies (rotated, brightness-shifted) of most uploads, and counting them as films would count "
            "such a radiograph three times. The fracture model runs on every film; a radiograph's probability is "
            "the mean of its copies' probabilities, put through the same two cuts as one film's (as the cuts were "
            "chosen on validation radiographs), and the bootstrap intervals resample radiographs. The fracture "
            "figures score each fracture model on every readable film of its true part (the region where the "
            "body-part model routes by region) with a known label, *including the films the gate turned away* (the "
            "model is run on them all the same: `fracture_probability` in `predictions.csv`), so that a body-part "
            "error does not hide inside them; an *uncertain* radiograph is neither a *Likely FRACTURE* nor a *No "
            "fracture found* finding (it counts in the uncertain share and in no promise). The end-to-end "
            "sensitivity below is what the app itself said on the fractured radiographs: a radiograph's answer is "
            "the one more than half of its copies got from the app (copies that split count as *uncertain*); only "
            "*Likely FRACTURE* counts as flagged; turned away (not analysed), unreadable, *uncertain* or *No "
            "fracture found* counts as not flagged. Where boxes are scored (*top region*), each film counts, its "
            "interval drawn by radiograph. `predictions.csv` holds one row per film, from which every figure can be "
            "computed again (`in_fracture_figures` marks the films the fracture figures count, `radiograph` the "
            "radiograph each is a copy of).")


def end_to_end_markdown(m: dict) -> list[str]:
    """The end-to-end sensitivity, per part and pooled, untreated fractures first, each radiograph once."""
    rows = [(part, e["end_to_end"]) for part, e in m["fracture"].items()]
    if "fracture_overall" in m:
        rows.append(("three parts pooled", m["fracture_overall"]["end_to_end"]))
    lines = ["### End-to-end sensitivity: fractured radiographs the app called *Likely FRACTURE*", "", COUNTING, "",
             "| part | fractured radiographs | flagged | 95 % interval (Wilson) |", "|---|---|---|---|"]
    for kind in (*metrics.FILM_KINDS, "all"):
        for part, ee in rows:
            s = (ee.get("sensitivity") or {}).get(kind)
            if not s or not s["n"]:
                continue
            ci = s.get("ci95")
            lines.append(f"| {part} | {KIND_TITLES[kind]} | {s['k']} of {s['n']} ({share_text(s['share'])}) | "
                         + (f"{ci[0]:.1%} – {ci[1]:.1%}" if ci else "–") + " |")
    return lines


GROUP_TITLES = {"by_source": "source", "by_view": "view by eye"}
FEW = 5  # radiographs of a class below which a group's AUC is given without an interval


def group_table(m: dict, key: str) -> list[str]:
    """Per part, the promises on each source's (``by_source``) or each view's (``by_view``) radiographs:
    all fractured radiographs, and the AUC of the untreated ones against the group's normal ones."""
    lines = [f"| part | {GROUP_TITLES[key]} | radiographs, fractured / normal | AUC, all | AUC, untreated "
             "| fractures called fractured / uncertain / normal | \"No fracture found\" right | "
             "\"Likely FRACTURE\" right | uncertain |", "|---|---|---|---|---|---|---|---|---|"]
    def fmt(f):  # no interval where either class has fewer than FEW radiographs: it would only mislead
        if f["auc"] is None:
            return "–"
        if min(f["n_fractured"], f["n_normal"]) < FEW:
            return f"{f['auc']:.3f} (few)"
        ci = f.get("auc_ci95") or [None, None]
        return f"{f['auc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "")
    for part, e in m["fracture"].items():
        for group, k in (e.get(key) or {}).items():
            a, u = k["all"], k["untreated"]
            c = a["fractured_called"]
            lines.append(f"| {part} | {group} | {a['n_fractured']} / {a['n_normal']} | {fmt(a)} | "
                         + (f"{fmt(u)}; {u['n_fractured']} fractured" if u["n_fractured"] else "–") + " | "
                         f"{share_text(c['fractured'])} / {share_text(c['uncertain'])} / {share_text(c['normal'])} | "
                         f"{share_text(a['no_fracture_found_right'])} of {a['n_called_normal']} | "
                         f"{share_text(a['likely_fracture_right'])} of {a['n_called_fractured']} | "
                         f"{share_text(a['uncertain'])} |")
    return lines if len(lines) > 2 else []


def groups_markdown(m: dict) -> list[str]:
    """The promises per source and per view by eye, each radiograph once."""
    out = []
    for key, title in (("by_source", "source"), ("by_view", "view by eye")):
        table = group_table(m, key)
        if table:
            out += [f"### Per {title}", "", *table, ""]
    if out:
        out = ["Each model at its two cuts, on its part's radiographs of one " + " or one ".join(
            GROUP_TITLES.values()) + " (a radiograph's view: `views.csv` by eye, else the dataset's part where "
            f"it is a view's word). Small groups give wide intervals; where either class has fewer than {FEW} "
            "radiographs the AUC is marked *few* and given without one.", ""] + out
    return out


def counting_summary(m: dict) -> str:
    """One sentence: how many films and radiographs the fracture figures rest on, per part."""
    parts = [(p, e) for p, e in m["fracture"].items() if "n_radiographs" in e]
    if not parts:
        return ""
    return ("The fracture figures count radiographs, not films: " + "; ".join(
        f"{p} {e['n_films']} films = {e['n_radiographs']} radiographs" for p, e in parts)
        + " (augmented copies of one upload are one radiograph; " + ", ".join(
            f"{p} {e['copies_disagree']}" for p, e in parts)
        + " radiographs whose copies the model put on different sides of a cut).")


def chain_table(m: dict) -> list[str]:
    """The whole chain per part, each radiograph once (:func:`evaluate._end_to_end`), its films beside."""
    lines = ["| part | radiographs (films) | routed to its model | findings (radiographs) | \"Likely FRACTURE\" and "
             "\"No fracture found\" right |", "|---|---:|---:|---|---|"]
    for part, e in m["fracture"].items():
        ee = e["end_to_end"]
        acc = (f"{share_text(ee['accuracy_of_decided_findings'])} of {ee['n_decided']}"
               if ee["accuracy_of_decided_findings"] is not None else "–")
        lines.append(f"| {part} | {ee['n']} ({ee.get('n_films', ee['n'])}) | {share_text(ee['routed_to_this_model'])} | "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(ee['findings'].items()))} | {acc} |")
    return lines


def report_markdown(m: dict, plots: list[str]) -> str:
    lines = ["# Evaluation report", "", f"Data: {m['description']}", "",
             f"Films: {m['images']} ({m['unreadable']} unreadable). Intervals are 95 % bootstrap percentile "
             f"intervals over {m['bootstrap']} resamples (of radiographs in the fracture figures). Decision support "
             "only, not a diagnosis.", "", counting_summary(m), ""]
    bp = m["body_part"]
    lines += ["## Body part", "",
              f"Accuracy {bp['accuracy']:.3f} on {bp['n']} films (classes: {', '.join(bp['labels'])}; the "
              "body-part and gate figures count films, every augmented copy once). "
              if bp["accuracy"] is not None else "No films with a known body part. ", ""]
    if bp["n_target"]:
        lines += [f"- elbow, hand or shoulder films wrongly rejected: {bp['target_images_rejected']:.1%} "
                  f"of {bp['n_target']}"]
    if bp["n_non_target"]:
        lines += [f"- other films ({', '.join(f'{k} {v}' for k, v in sorted(bp['non_target_parts'].items()))})"
                  f" rejected: {bp['non_target_radiographs_rejected']:.1%} of {bp['n_non_target']}"]
    if bp["non_radiographs"]["n"]:
        lines += [f"- generated non-radiographs rejected: {bp['non_radiographs']['rejected']:.1%} of "
                  f"{bp['non_radiographs']['n']}"]
    lines += gate_markdown(m.get("gate")) + view_markdown(m.get("gate") or {})
    lines += ["", "## Fractures without a cast, splint or implant in view first", "",
              "The radiographs where a reader needs help: untreated fractured radiographs (nothing in view, by the "
              "data's labels by eye) against every normal radiograph of the part; then fractured radiographs with an "
              "appliance in view, which are easier and often a known, treated fracture. Each model at its own two "
              "cuts: \"No fracture found\" below one, \"Likely FRACTURE\" from the other, uncertain between. Each "
              "radiograph counts once (its copies' mean probability; see *How films are counted* below).", "",
              *promise_table(m), "", *groups_markdown(m)]
    lines += ["## Fracture models on the true body part", "",
              "Radiograph level at each model's validation-chosen threshold; study level is the mean of a study's "
              "radiograph probabilities (MURA rule: abnormal when > 0.5).", "",
              *fracture_image_table(m, studies=True), "",
              "Brier score (mean squared difference between a radiograph's probability and its label, 0 is perfect; "
              "the calibration plot shows the bins with their counts): " + "; ".join(
                  f"{part} {e['brier']:.3f} ({e['image']['n']} radiographs)" for part, e in m["fracture"].items()) + "."]
    if "fracture_overall" in m:
        o = m["fracture_overall"]["image"]
        lines += ["", f"All parts together (each model at its threshold): accuracy {_fmt(o, 'accuracy')}, "
                      f"sensitivity {_fmt(o, 'sensitivity')}, specificity {_fmt(o, 'specificity')}, "
                      f"kappa {_fmt(o, 'kappa')} on {o['n']} radiographs."]
    lines += ["", "## Findings: how many are decided, and how often they are right", "",
              "Each model on its true part, at its two validation-chosen cuts (fractured: p at or above the "
              "fracture cut; normal: below the other). Study verdict as the app shows it: fractured when any "
              "view is, else uncertain when any view is, else normal.", "",
              *findings_table(m)]
    located = {p: e["localisation"] for p, e in m["fracture"].items() if e.get("localisation")}
    if located:
        lines += ["", "## Where: suspected regions against the annotators' fracture boxes", "",
                  "Top region: share of fractured films whose most suspicious region's centre lies inside a "
                  "true fracture box. Region sensitivity: share of true boxes found by some region when regions "
                  "are taken down to one false region per film (over fractured and normal films). Counted by film "
                  "(a copy's boxes turn with it), the intervals drawn by radiograph.", "",
                  "| part | fractured films with boxes | top region inside a box | region sensitivity at 1 "
                  "false region per image |", "|---|---:|---|---|"]
        for part, loc in located.items():
            lines.append(f"| {part} | {loc['n_fractured_with_boxes']} | {_fmt(loc, 'top_region_in_box')} | "
                         f"{_fmt(loc, 'region_sensitivity_at_1_false_per_image')} |")
    lines += ["", "## The whole chain", "", "Each radiograph once, with the answer more than half of its copies got "
              "from the app (copies that split count as *uncertain*).", "", *chain_table(m)]
    lines += ["", *end_to_end_markdown(m)]
    if m.get("recalibration"):
        from .recalibrate import markdown
        lines += ["", *markdown(m["recalibration"])]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "The kappa plot's reference lines are the MURA paper's model (Rajpurkar et al., 2017) on MURA's "
                  "abnormality labels, which are broader than fracture; they are context, not a like-for-like "
                  "comparison unless this evaluation ran on MURA."]
    return "\n".join(lines) + "\n"
