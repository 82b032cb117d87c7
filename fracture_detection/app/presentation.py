"""What a reader sees of a prediction, shared by the app and the PDF report.

Finding texts and colours, the probability text with the two cuts the finding uses (through
:func:`decisions.format_probabilities`, so a number never reads the same as a cut while the finding
says the other side), the order "most suspicious first" across models with different cuts, and the
grouping of views into studies with the study verdict of :func:`decisions.study_verdict`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..chain import decisions
from ..chain.amber import amber_text

WORDS = decisions.FINDING_WORDS   # the one vocabulary: the app, the report and the command line
# finding -> (headline text, strong colour for text and boxes, light tint for table rows)
FINDING_STYLE = {
    "fractured": (WORDS["fractured"], "#c62828", "#f9d4d4"),
    "uncertain": (f"{WORDS['uncertain']}: review closely", "#b26a00", "#fbe8c4"),
    "normal": (WORDS["normal"], "#2e7d32", "#d5ecd7"),
    "not_supported": (WORDS["not_supported"], "#616161", "#e4e4e4"),
    "error": (WORDS["error"], "#616161", "#e4e4e4"),
}
TABLE_TEXT = dict(WORDS)
NEAR_CUT_COLOUR = "#b26a00"   # the amber of "Uncertain": the words ask for a closer look
SUSPICION_ORDER = {"fractured": 0, "uncertain": 1, "normal": 2, "not_supported": 3, "error": 4}
_MURA_STUDY = re.compile(r"^study\d+(_(positive|negative))?$", re.IGNORECASE)


def finding_text(finding: str) -> str:
    return FINDING_STYLE[finding][0]


def finding_colour(finding: str) -> str:
    return FINDING_STYLE[finding][1]


def margin(pred) -> float | None:
    """How far the fracture probability lies above its own model's "Likely FRACTURE" cut: comparable
    across models, unlike the raw probabilities."""
    if pred.fracture_probability is None or not pred.uncertain_band:
        return None
    return pred.fracture_probability - pred.uncertain_band[1]


def suspicion_key(pred) -> tuple:
    """Sort key, ascending = most suspicious first: the finding; among uncertain films, the fractured
    share of the measured films scored like each (:mod:`chain.amber`; films without one after those
    with one); then the distance above the model's fracture cut (never the raw probability of one model
    against another's).  A visible cast or implant is shown beside the finding, never used to move a
    film down the list."""
    m = margin(pred)
    share = getattr(pred, "amber_share", None) if pred.finding == "uncertain" else None
    return SUSPICION_ORDER.get(pred.finding, 9), -(share if share is not None else -1.0), -(m if m is not None else -2.0)


def probability_texts(pred) -> tuple[str, str, str] | None:
    """``(p, no fracture below, likely fracture from)`` as text that never contradicts the finding."""
    if pred.fracture_probability is None or not pred.uncertain_band:
        return None
    low, high = pred.uncertain_band
    return decisions.format_probabilities(pred.fracture_probability, low, high)


def short_probability(pred) -> str:
    """For a table cell: the probability beside the cut that decided it (``0.91 ≥ 0.84``,
    ``0.12 < 0.29``, ``0.50 in 0.29–0.84``), or a dash."""
    texts = probability_texts(pred)
    if texts is None:
        return "–"
    p, low, high = texts
    return {"fractured": f"{p} ≥ {high}", "normal": f"{p} < {low}"}.get(pred.finding, f"{p} in {low}–{high}")


def cut_line(pred) -> str | None:
    """The edges the finding uses, in the reader's words."""
    texts = probability_texts(pred)
    if texts is None:
        return None
    p, low, high = texts
    return f"Fracture probability {p} · Likely FRACTURE from {high} · No fracture below {low}"


def near_cut_text(pred) -> str | None:
    """``close to the cut: review`` beside a finding whose probability lies within its deciding cut's
    bootstrap interval (:func:`decisions.near_cut`), else None."""
    return decisions.NEAR_CUT_WORDS if getattr(pred, "near_cut", None) else None


def near_cut_line(pred) -> str | None:
    """Why a finding is close to its cut, with the cut's 95 % interval where the prediction carries it
    (short: the smallest window's detail panel holds it with the cuts and the appliance line)."""
    if not getattr(pred, "near_cut", None):
        return None
    name = {"no_fracture_below": "No fracture", "fracture_from": "Likely FRACTURE"}[pred.near_cut]
    ci = (getattr(pred, "cut_ci95", None) or {}).get(pred.near_cut)
    if ci and pred.fracture_probability is not None:
        p, low, high = decisions.format_probabilities(pred.fracture_probability, *ci)
        return f"Close to the cut: {p} is within the {name} cut's 95 % interval ({low}–{high}); review."
    return f"Close to the {name} cut; review."


def notes(pred) -> list[str]:
    """Short marks beside a finding: close to its cut, a cast or implant in view."""
    out = []
    if getattr(pred, "near_cut", None):
        out.append("close to the cut")
    if getattr(pred, "appliance", None):
        out.append("cast/implant")
    if getattr(pred, "warning", None):
        out.append("warning")
    return out


def table_finding(pred) -> str:
    """The worklist's finding cell, marked where the probability is close to its cut or a cast, splint or
    implant is in view (shown, not sorted by)."""
    return " · ".join([TABLE_TEXT[pred.finding], *notes(pred)])


def part_cell(pred) -> str:
    """The worklist's and the report's part cell: the view and, where it differs, the model that read it."""
    return decisions.part_short(getattr(pred, "view", None), pred.body_part) or "–"


def appliance_line(pred) -> str | None:
    """A visible cast, splint or implant: said beside the finding, with the question it raises (short:
    the detail panel of the smallest window holds it with the cuts and the uncertain sentence)."""
    if not pred.appliance:
        return None
    return f"{pred.appliance[:1].upper()}{pred.appliance[1:]} in view: a follow-up film?"


def detail_lines(pred) -> list[str]:
    """The figures and sentences behind a finding, one line each."""
    lines = []
    if pred.body_part:
        what = decisions.part_words(getattr(pred, "view", None), pred.body_part)
        lines.append(f"Body part: {what} ({pred.body_part_probability:.0%})")
    for line in (cut_line(pred), near_cut_line(pred), appliance_line(pred)):
        if line:
            lines.append(line)
    if pred.message:
        lines.append(pred.message)
    ranking = amber_text(pred)  # an uncertain film's rank inside "uncertain" (chain.amber)
    if ranking:
        lines.append(ranking)
    if pred.warning:
        lines.append(f"Warning: {pred.warning}")
    return lines


def mura_mean_line(preds) -> str | None:
    """MURA's study rule as a secondary figure, worded so that it cannot read as the verdict."""
    probs = [p.fracture_probability for p in preds if p.fracture_probability is not None]
    if len(probs) < 2:
        return None
    return (f"Mean of the views {sum(probs) / len(probs):.2f}; MURA's rule calls a study abnormal above "
            f"{decisions.MURA_RULE_CUT:g}.")


def batch_status(preds) -> str:
    """One sentence for a finished batch: how many of each finding."""
    n = len(preds)
    counts = {f: sum(p.finding == f for p in preds) for f in SUSPICION_ORDER}
    if n and counts["error"] == n:
        return (f"None of the {n} images could be read." if n > 1 else
                (preds[0].message or "The image could not be read."))
    parts = [f"{counts[f]} {WORDS[f] if f == 'fractured' else WORDS[f].lower()}"
             for f in ("fractured", "uncertain", "normal", "not_supported", "error") if counts[f]]
    return f"{n} image{'s' * (n != 1)}: " + ", ".join(parts) + "."


# --- studies ---------------------------------------------------------------------------

@dataclass
class Study:
    """Views of one study: ``members`` are indices into the list that was grouped.

    A study is of one body part: the part most of its views were read as (a tie goes to the surer
    readings).  A view read as another part, or not analysed, is listed with the study but does
    not count for its verdict."""
    key: str
    label: str
    members: list[int] = field(default_factory=list)

    def part(self, preds) -> str | None:
        votes: dict[str, list[float]] = {}
        for i in self.members:
            p = preds[i]
            if p.body_part and p.finding in ("fractured", "uncertain", "normal"):
                v = votes.setdefault(p.body_part, [0, 0.0])
                v[0] += 1
                v[1] += p.body_part_probability or 0.0
        return max(votes, key=lambda k: votes[k]) if votes else None

    def counted(self, preds) -> list[int]:
        """The members its verdict is made of: the views analysed as the study's part."""
        part = self.part(preds)
        if part is None:
            return list(self.members)
        return [i for i in self.members if preds[i].body_part == part and
                preds[i].finding in ("fractured", "uncertain", "normal")]

    def verdict(self, preds) -> str:
        return decisions.study_verdict(preds[i].finding for i in self.counted(preds))

    def count_text(self, preds) -> str:
        """``2 of 3 views`` (how many counted views have the verdict's finding), ``3 views``, or ""."""
        counted, verdict = self.counted(preds), self.verdict(preds)
        n = len(counted)
        if len(self.members) < 2:
            return ""
        if verdict in ("fractured", "uncertain"):
            return f"{sum(preds[i].finding == verdict for i in counted)} of {n} view{'s' * (n != 1)}"
        return f"{n} view{'s' * (n != 1)}"

    def opened_line(self, preds, name=lambda i: f"view {i + 1}") -> str | None:
        """How many films were opened as this study and which its verdict leaves out, and why:
        ``4 films opened, 2 left out: a.png (read as elbow), b.png (not analysed)``; None for one film."""
        n = len(self.members)
        if n < 2:
            return None
        part, counted = self.part(preds), set(self.counted(preds))
        if part is None:
            return f"{n} films opened, none analysed"
        why = []
        for i in self.members:
            if i not in counted:
                p = preds[i]
                reason = (f"read as {p.body_part}" if p.body_part and p.body_part != part and
                          p.finding in ("fractured", "uncertain", "normal") else TABLE_TEXT[p.finding].lower())
                why.append(f"{name(i)} ({reason})")
        if not why:
            return f"{n} films opened, all counted"
        return f"{n} films opened, {len(why)} left out: " + ", ".join(why)

    def file_stem(self) -> str:
        """The study's name as a file name (``patient00012_study1_positive``)."""
        stem = Path(self.label).stem if len(self.members) == 1 else self.label
        return re.sub(r"[^\w.-]+", "_", stem).strip("_.") or "study"


def study_label(folder: Path) -> str:
    """``patient00012 / study1_positive`` for MURA's layout, else the folder's name."""
    if _MURA_STUDY.match(folder.name) and folder.parent.name:
        return f"{folder.parent.name} / {folder.name}"
    return folder.name or str(folder)


def group_studies(paths, one_study: bool = False) -> list[Study]:
    """Group views into studies.  Films are one study only when the reader opened them as one
    (``one_study``: several files opened together) or when their folders say so (MURA's
    ``patientNNNNN/studyN`` folders); any other image stands alone, however many share a folder.
    Unnamed sources (None) stand alone."""
    paths = [None if p is None else Path(p) for p in paths]
    if one_study and paths:
        folder = paths[0].parent if paths[0] is not None else Path("study")
        return [Study("study", study_label(folder), list(range(len(paths))))]
    folders: dict[Path, list[int]] = {}
    for i, p in enumerate(paths):
        if p is not None and _MURA_STUDY.match(p.parent.name):
            folders.setdefault(p.parent, []).append(i)
    studies, grouped = [], set()
    for folder, idx in folders.items():
        if len(idx) > 1:
            studies.append(Study(str(folder), study_label(folder), idx))
            grouped.update(idx)
    for i, p in enumerate(paths):
        if i not in grouped:
            studies.append(Study(f"{p}#{i}", p.name if p is not None else f"image {i + 1}", [i]))
    studies.sort(key=lambda s: s.members[0])
    return studies


def study_key(study: Study, preds) -> tuple:
    """Most suspicious study first: its verdict, then its most suspicious counted view."""
    return (SUSPICION_ORDER.get(study.verdict(preds), 9), min(suspicion_key(preds[i]) for i in study.counted(preds)))


def model_lines(predictor, preds) -> list[str]:
    """One line per model that produced these predictions, with its measured figures."""
    from .visual import model_summary
    if predictor is None:
        return []
    lines = [model_summary(predictor.body_info.meta)] if any(p.part_probabilities for p in preds) else []
    for part in sorted({p.body_part for p in preds if p.body_part}):
        fm = predictor.fracture.get(part)
        if fm is not None:
            lines.append(model_summary(fm.info.meta))
    return lines
