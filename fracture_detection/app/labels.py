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


def elide_to(text: str, font, width: float) -> str:
    """``text``, or as much of its start and end as fits ``width`` pixels in ``font`` with "…" between
    (the middle goes: a file's number and suffix, a probability's cut stay readable)."""
    if font.measure(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:   # the most characters kept that still fit
        k = (lo + hi + 1) // 2
        if font.measure(_middle(text, k)) <= width:
            lo = k
        else:
            hi = k - 1
    return _middle(text, lo)


def _middle(text: str, keep: int) -> str:
    head = (keep + 1) // 2
    return text[:head] + "…" + (text[len(text) - (keep - head):] if keep - head else "")
