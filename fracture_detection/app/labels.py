"""Texts into labels: elided to fit a fixed layout, and set only where something changed."""
from __future__ import annotations


def reconfigure(widget, **options):
    """Reconfigure a customtkinter widget only where something changed (each change redraws it)."""
    changed = {k: v for k, v in options.items() if widget.cget(k) != v}
    if changed:
        widget.configure(**changed)


def elide(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 12] + "…" + text[-11:]
