"""What the reader must know before going on, in a small dialog: the models could not be loaded (the
first-run check), or files could not be read.  One or two clear sentences and what to do, never a
traceback; not modal, so the window stays usable, and a second notice replaces the first.
"""
from __future__ import annotations

import customtkinter as ctk

from .labels import elide

MAX_LISTED = 3   # unreadable files named in the notice; the worklist lists them all


def models_text(reason: str) -> tuple[str, str]:
    """(title, text) when the models could not be loaded."""
    return ("The models could not be loaded",
            f"{reason}\n\nThe app cannot analyse X-rays without them. Reinstall the app (its models come "
            "with it), or start it with --weights pointing at a folder of trained models.")


def unreadable_text(preds) -> tuple[str, str] | None:
    """(title, text) naming the files of an opening that could not be read, or None when all were read."""
    bad = [p for p in preds if p.finding == "error"]
    if not bad:
        return None
    from pathlib import Path
    lines = [f"{elide(Path(p.path).name if p.path else 'image', 40)}: {p.message or 'it could not be read.'}"
             for p in bad[:MAX_LISTED]]
    more = len(bad) - MAX_LISTED
    if more > 0:
        lines.append(f"… and {more} more, shown in grey in the worklist.")
    head = (f"{len(bad)} of the {len(preds)} files opened could not be read" if len(preds) > 1
            else "The file could not be read")
    return ("Some files could not be read" if len(bad) > 1 else "A file could not be read",
            head + ":\n\n" + "\n".join(lines))


class Notice(ctk.CTkToplevel):
    def __init__(self, master, title: str, text: str):
        super().__init__(master)
        self.transient(master)
        self.resizable(False, False)
        self.label = ctk.CTkLabel(self, text="", justify="left", anchor="w", wraplength=440)
        self.label.pack(padx=20, pady=(18, 10), fill="x")
        self.ok = ctk.CTkButton(self, text="OK", width=96, command=self.destroy)
        self.ok.pack(pady=(0, 16))
        for key in ("<Return>", "<Escape>"):
            self.bind(key, lambda _e: self.destroy())
        self.show(title, text)

    def show(self, title: str, text: str) -> None:
        self.title(title)
        self.text = text
        self.label.configure(text=text)
        self.lift()
