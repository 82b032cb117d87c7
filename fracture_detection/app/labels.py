"""Texts into labels: elided to fit a fixed layout (by characters, or by pixels in a font), and set only
where something changed."""
from __future__ import annotations


def reconfigure(widget, **options):
    """Reconfigure a customtkinter widget only where something changed (each change redraws it)."""
    changed = {k: v for k, v in options.items() if widget.cget(k) != v}
    if changed:
        widget.configure(**changed)


def elide(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 12] + "…" + text[-11:]


def elide_to(text: str, font, width: float, head: int | None = None) -> str:
    """``text``, or as much of its start and end as fits ``width`` pixels in ``font`` with "…" between
    (the middle goes: a file's number and suffix, a probability's cut stay readable).  ``head``: keep
    at most that many characters of the start, the rest from the end (names differ at their end:
    ``pat…00012 / study1``, ``IMG…0000087.jpg``)."""
    if font.measure(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:   # the most characters kept that still fit
        k = (lo + hi + 1) // 2
        if font.measure(_middle(text, k, head)) <= width:
            lo = k
        else:
            hi = k - 1
    return _middle(text, lo, head)


def _middle(text: str, keep: int, head: int | None = None) -> str:
    first = (keep + 1) // 2 if head is None else min(head, keep)
    return text[:first] + "…" + (text[len(text) - (keep - first):] if keep - first else "")
