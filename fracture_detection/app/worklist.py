"""The worklist: every analysed image, coloured by finding, grouped by study, most suspicious first.

Rows are ``v<index>`` (a view, the index into the app's list of views) and ``s<index>`` (a study
row above its views, for studies of several views).  Sorting by *Finding* orders by the finding,
then by how far each probability lies above its own model's "Likely FRACTURE" cut (not by raw
probabilities of different models); a visible cast or implant is marked, never used to re-sort.  Rows are added and moved in place while a folder is analysed, so the
table never jumps back to the top under the reader's pointer.
"""
from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from pathlib import Path
from tkinter import ttk

import customtkinter as ctk

from . import presentation as pres

# column, heading, the widest text it shows (its width is measured in the table's font)
COLUMNS = (("#0", "Image", "image1_IMG0"), ("finding", "Finding", "Not analysed"),
           ("part", "Part", "shoulder"), ("prob", "p · cut", "0.50 in 0.29–0.84"))
FONT_SIZE = 9              # small enough that every column fits the narrowest panel (900 × 640)
PAD = 8                    # pixels beside a column's widest text
ARROWS = {True: " ▼", False: " ▲"}


class Tooltip:
    """A small window with the full text of a cell, shown after the pointer rests on it; it goes
    as soon as the pointer moves to another row (``row``) or leaves the table."""

    def __init__(self, widget):
        self.widget, self.window, self.text, self.row, self._job = widget, None, "", None, None

    def schedule(self, text: str, x: int, y: int, row=None):
        if text == self.text and row == self.row and (self.window or self._job):
            return
        self.hide()
        self.text, self.row = text, row
        if text:
            self._job = self.widget.after(400, lambda: self.show(text, x, y))

    def show(self, text: str, x: int, y: int):
        self._job = None
        self.window = tk.Toplevel(self.widget)
        self.window.wm_overrideredirect(True)
        self.window.wm_geometry(f"+{x + 14}+{y + 16}")
        tk.Label(self.window, text=text, justify="left", background="#ffffe6", relief="solid", borderwidth=1,
                 wraplength=520, padx=4, pady=2).pack()

    def hide(self):
        if self._job:
            self.widget.after_cancel(self._job)
            self._job = None
        if self.window is not None:
            self.window.destroy()
            self.window = None
        self.text, self.row = "", None


class Worklist(ctk.CTkFrame):
    def __init__(self, master, on_select, **kw):
        super().__init__(master, **kw)
        self.on_select = on_select
        self.views: list = []              # objects with .path and .prediction
        self.studies: list[pres.Study] = []
        self.sort_key, self.descending = "finding", True
        self._rows: dict[str, tuple] = {}          # iid -> what the row shows (to skip unchanged rows)
        self._order: dict[str, list[str]] = {}     # parent -> its children, in order
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(0, weight=1)
        style = ttk.Style(self)
        self.font = tkfont.Font(self, family=tkfont.nametofont("TkDefaultFont").cget("family"), size=FONT_SIZE)
        self.bold = tkfont.Font(self, font=self.font)
        self.bold.configure(weight="bold")
        style.configure("Worklist.Treeview", rowheight=20, font=self.font, indent=10)
        style.configure("Worklist.Treeview.Heading", font=self.bold)
        self.table = ttk.Treeview(self, columns=[c for c, *_ in COLUMNS[1:]], show="tree headings",
                                  selectmode="browse", style="Worklist.Treeview")
        self.widths = {}
        for col, title, widest in COLUMNS:
            widest_font = self.font if col in ("#0", "prob") else self.bold   # study rows are bold
            width = self.widths[col] = max(self.bold.measure(title + " ▼"), widest_font.measure(widest)) + PAD
            self.table.heading(col, text=title, command=lambda c=col: self.sort_by(c))
            self.table.column(col, width=width, minwidth=40, stretch=False,
                              anchor="w" if col in ("#0", "finding") else "center")
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self.table.yview)
        self.table.configure(yscrollcommand=self.scroll.set)
        self.table.grid(row=0, column=0, sticky="nsew")
        self.scroll.grid(row=0, column=1, sticky="ns")
        for finding, (_, colour, tint) in pres.FINDING_STYLE.items():
            self.table.tag_configure(finding, background=tint, foreground=colour if finding not in (
                "not_supported", "error") else "#444444")
            self.table.tag_configure(f"study-{finding}", background=tint, foreground=colour, font=self.bold)
        self.table.bind("<Configure>", self._fit_columns)
        self.table.bind("<<TreeviewSelect>>", self._selected)
        self.table.bind("<Return>", self._enter)
        self.table.bind("<Motion>", self._motion)
        for event in ("<Leave>", "<<TreeviewOpen>>", "<<TreeviewClose>>", "<ButtonPress>", "<MouseWheel>",
                      "<KeyPress>"):   # leaving, folding, clicking, scrolling or typing: the tooltip goes
            self.table.bind(event, lambda _e: self.tooltip.hide(), add="+")
        self.tooltip = Tooltip(self.table)
        self._headings()

    def _fit_columns(self, event):
        """The name column takes what the others leave; below a comfortable width for it the body
        part column is left out (it stays in the detail panel, the tooltip and the CSV)."""
        data = [c for c, *_ in COLUMNS[1:]]
        if event.width - sum(self.widths[c] for c in data) < self.widths["#0"]:
            data.remove("part")
        if tuple(self.table.cget("displaycolumns")) != tuple(data):
            self.table.configure(displaycolumns=data)
        self.table.column("#0", width=max(80, event.width - sum(self.widths[c] for c in data) - 2))

    # --- content ---------------------------------------------------------------------

    def clear(self):
        self.views, self.studies = [], []
        self._rows, self._order = {}, {}
        self.table.delete(*self.table.get_children())

    def refresh(self, views, studies):
        """Show ``views`` grouped as ``studies``: new rows are inserted, changed rows updated and
        each level put in order with one call; the selection and the scroll position stay."""
        self.views, self.studies = list(views), list(studies)
        preds = [v.prediction for v in self.views]
        t = self.table
        top, children, wanted = [], {}, set()
        for study in self._ordered_studies(preds):
            members = sorted(study.members, key=self._view_key)
            parent = ""
            if len(study.members) > 1:
                parent = f"s{study.members[0]}"
                verdict = study.verdict(preds)
                values = (pres.TABLE_TEXT[verdict], study.part(preds) or "–", f"{len(study.members)} views")
                self._put(parent, "", study.label, values, f"study-{verdict}")
                top.append(parent)
                children[parent] = []
            for i in members:
                p = preds[i]
                iid = f"v{i}"
                values = (pres.table_finding(p), p.body_part or "–", pres.short_probability(p))
                self._put(iid, parent, Path(self.views[i].path).name, values, p.finding)
                (children[parent] if parent else top).append(iid)
        wanted = set(top).union(*children.values()) if children else set(top)
        stale = [i for i in self._rows if i not in wanted]
        if stale:
            t.delete(*[i for i in stale if t.exists(i)])
            for i in stale:
                self._rows.pop(i)
        for parent, kids in children.items():
            if self._order.get(parent) != kids:
                t.set_children(parent, *kids)
                self._order[parent] = kids
        if self._order.get("") != top:
            t.set_children("", *top)
            self._order[""] = top

    def _put(self, iid, parent, text, values, tag):
        """Insert a row, or update it where it changed (each Tk call counts while a folder loads)."""
        row = (parent, text, values, tag)
        if self._rows.get(iid) == row:
            return
        t = self.table
        if iid in self._rows:
            t.item(iid, text=text, values=values, tags=(tag,))
            if self._rows[iid][0] != parent:
                t.move(iid, parent, "end")
        else:
            t.insert(parent, "end", iid=iid, text=text, values=values, tags=(tag,), open=iid.startswith("s"))
        self._rows[iid] = row

    def rows(self):
        for top in self.table.get_children():
            yield top
            yield from self.table.get_children(top)

    # --- order -----------------------------------------------------------------------

    def _view_key(self, i):
        v, p = self.views[i], self.views[i].prediction
        if self.sort_key == "#0":
            key = (Path(v.path).name.lower(),)
        elif self.sort_key == "part":
            key = (p.body_part or "~",) + pres.suspicion_key(p)
        elif self.sort_key == "prob":  # furthest above its own model's fracture cut first
            m = pres.margin(p)
            key = (-(m if m is not None else -2.0), pres.suspicion_key(p))
        else:  # finding: most suspicious first
            key = pres.suspicion_key(p)
        return key if self._natural_direction() else _Reversed(key)

    def _ordered_studies(self, preds):
        def key(s):
            if self.sort_key == "#0":
                k = (s.label.lower(),)
            elif self.sort_key == "part":
                k = (s.part(preds) or "~",) + pres.study_key(s, preds)
            else:
                k = pres.study_key(s, preds)
            return k if self._natural_direction() else _Reversed(k)
        return sorted(self.studies, key=key)

    def _natural_direction(self) -> bool:
        """The default direction of each column: suspicion descending, names ascending."""
        return self.descending if self.sort_key in ("finding", "prob") else not self.descending

    def sort_by(self, column: str):
        if column == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = column, column in ("finding", "prob")
        self._headings()
        self.refresh(self.views, self.studies)
        self.table.yview_moveto(0)
        sel = self.table.selection()
        if sel:
            self.table.see(sel[0])

    def _headings(self):
        for col, title, _ in COLUMNS:
            arrow = ARROWS[self.descending] if col == self.sort_key else ""
            self.table.heading(col, text=title + arrow)

    # --- selection and keys ----------------------------------------------------------

    def select(self, iid: str):
        if self.table.exists(iid):
            self.table.selection_set(iid)
            self.table.focus(iid)
            self.table.see(iid)

    def selected(self) -> str | None:
        sel = self.table.selection()
        return sel[0] if sel else None

    def first_view(self) -> int | None:
        for top in self.table.get_children():
            if top.startswith("v"):
                return int(top[1:])
            children = self.table.get_children(top)
            if children:
                return int(children[0][1:])
        return None

    def views_of(self, iid: str) -> list[int]:
        """The view indices a row stands for (a study row: its views, most suspicious first)."""
        if iid.startswith("v"):
            return [int(iid[1:])]
        return [int(c[1:]) for c in self.table.get_children(iid)]

    def _selected(self, _event=None):
        iid = self.selected()
        if iid:
            self.on_select(iid)

    def _enter(self, _event=None):
        iid = self.table.focus()
        self.tooltip.hide()
        if iid and iid.startswith("s"):
            self.table.item(iid, open=not self.table.item(iid, "open"))
        elif iid:
            self.on_select(iid)
        return "break"

    def _motion(self, e):
        """A tooltip with the full text where a cell is cut, and the message of a view."""
        iid, col = self.table.identify_row(e.y), self.table.identify_column(e.x)
        if not iid:
            self.tooltip.hide()
            return
        if col == "#0":
            text = self.table.item(iid, "text")
            width = self.table.column("#0", "width") - 20 * (1 + (self.table.parent(iid) != ""))
        else:
            n = int(col[1:]) - 1
            values = self.table.item(iid, "values")
            text = str(values[n]) if n < len(values) else ""
            width = self.table.column(col, "width") - 8
        font = self.bold if iid.startswith("s") else self.font
        tip = text if font.measure(text) > width else ""
        if iid.startswith("v") and col == "#0":
            view = self.views[int(iid[1:])]
            tip = str(view.path) + (f"\n{view.prediction.message}" if view.prediction.message else "")
        self.tooltip.schedule(tip, e.x_root, e.y_root, row=iid)


class _Reversed:
    """Wraps a sort key so that ``sorted`` puts it in descending order."""
    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return other.key < self.key

    def __eq__(self, other):
        return self.key == other.key
