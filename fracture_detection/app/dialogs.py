"""Tk's own file dialogs made kinder on X11, before each one opens: dot-folders are not listed (a
"Show hidden" button brings them back), and Ctrl+A in a name field selects the whole name, so
that typing replaces it (Tk's X11 default moves to the start of the line, and the typed name
was put in front of the suggested one).
"""
from __future__ import annotations

import tkinter as tk

READY = "::fracture_screening_dialogs"
SELECT_ALL = "%W selection range 0 end; %W icursor end; break"


def prepare(widget) -> None:
    """Set up Tk's file dialogs for ``widget``'s interpreter (once; cheap after the first call)."""
    if widget.tk.call("tk", "windowingsystem") != "x11" or widget.tk.call("info", "exists", READY):
        return
    try:  # loads Tk's dialog code (tkfbox.tcl), whose settings are read when a dialog opens
        widget.tk.call("tk_getOpenFile", "-no-such-option")
    except tk.TclError:
        pass
    widget.tk.call("set", "::tk::dialog::file::showHiddenBtn", "1")
    widget.tk.call("set", "::tk::dialog::file::showHiddenVar", "0")
    for cls in ("TEntry", "Entry"):
        widget.tk.eval(f"bind {cls} <Control-Key-a> {{{SELECT_ALL}}}")
    widget.tk.call("set", READY, "1")
