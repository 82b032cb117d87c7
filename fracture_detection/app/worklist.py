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
from .labels import elide_to

# column, heading, the narrowest it may become (its cells are then elided in the middle)
COLUMNS = (("#0", "Image", "image1.jpg"), ("finding", "Finding", "Uncertain"),
           ("part", "Part", "–"), ("prob", "p · cut", "0.50 ≥ 0.84"))
FONT_SIZE = 9              # small enough that every column fits the narrowest panel (900 × 640)
PAD = 8                    # pixels beside a column's widest text
NAME_SHARE = 0.35           # the name column keeps at least this share of the table (or all it needs)
NAME_HEAD = 3               # an elided name keeps this much of its start, the rest from its end
TREE_INDENT = 20           # the name column's indent per level (the expander, then a study's views)
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
        """Below and right of the pointer, moved left or above it where it would leave the screen."""
        self._job = None
        self.window = tk.Toplevel(self.widget)
        self.window.wm_overrideredirect(True)
        screen_w, screen_h = self.widget.winfo_screenwidth(), self.widget.winfo_screenheight()
        tk.Label(self.window, text=text, justify="left", background="#ffffe6", relief="solid", borderwidth=1,
                 wraplength=min(520, screen_w - 16), padx=4, pady=2).pack()
        self.window.update_idletasks()
        w, h = self.window.winfo_reqwidth(), self.window.winfo_reqheight()
        left = max(0, min(x + 14, screen_w - w - 2))
        top = y + 16 if y + 16 + h <= screen_h - 2 else max(0, y - h - 8)
        self.window.wm_geometry(f"+{left}+{top}")

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
        self._rows: dict[str, tuple] = {}          # iid -> what the row says in full (to skip unchanged rows)
        self._shown: dict[str, tuple] = {}         # iid -> (text, values) as shown: elided to the columns
        self.user_widths: dict[str, int] = {}      # columns the reader widened or narrowed by dragging
        self._table_width = 0
        self._widths_of: dict[tuple, int] = {}     # (bold, text) -> pixels
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
        self.widths = {}       # each column's width now
        self.least = {}        # the narrowest each column may become
        for col, title, narrowest in COLUMNS:
            width = self.widths[col] = max(self.bold.measure(title + " ▼"), self.font.measure(narrowest)) + PAD
            self.least[col] = width
            self.table.heading(col, text=title, command=lambda c=col: self.sort_by(c))
            self.table.column(col, width=width, minwidth=20, stretch=False,
                              anchor="w" if col in ("#0", "finding") else "center")
        # a finding's words always whole, with room to say that marks follow; a study row's in bold
        self.least["finding"] = max(self.least["finding"],
                                    max(map(self.bold.measure, pres.TABLE_TEXT.values())) + self.bold.measure("…") + PAD)
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self.table.yview)
        self.table.configure(yscrollcommand=self.scroll.set)
        self.table.grid(row=0, column=0, sticky="nsew")
        self.scroll.grid(row=0, column=1, sticky="ns")
        for finding, (_, colour, tint) in pres.FINDING_STYLE.items():
            self.table.tag_configure(finding, background=tint, foreground=colour if finding not in (
                "not_supported", "error") else "#444444")
            self.table.tag_configure(f"study-{finding}", background=tint, foreground=colour, font=self.bold)
        self.table.bind("<Configure>", self._fit_columns)
        self.table.bind("<ButtonRelease-1>", self._dragged, add="+")
        self.table.bind("<<TreeviewSelect>>", self._selected)
        self.table.bind("<Return>", self._enter)
        self.table.bind("<Motion>", self._motion)
        for event in ("<Leave>", "<<TreeviewOpen>>", "<<TreeviewClose>>", "<ButtonPress>", "<MouseWheel>",
                      "<KeyPress>"):   # leaving, folding, clicking, scrolling or typing: the tooltip goes
            self.table.bind(event, lambda _e: self.tooltip.hide(), add="+")
        self.tooltip = Tooltip(self.table)
        self._headings()

    # --- columns ---------------------------------------------------------------------

    def _fit_columns(self, event):
        self._table_width = event.width
        self.layout()

    def natural_width(self, col: str, views_only: bool = False) -> int:
        """What a column needs to show its heading and every cell whole (a study row's in bold; with
        ``views_only``, the views' rows only)."""
        title = dict((c, t) for c, t, _ in COLUMNS)[col]
        need = self.bold.measure(title + " ▼")
        for iid, (parent, text, values, _tag) in self._rows.items():
            if views_only and iid.startswith("s"):
                continue
            font = self.bold if iid.startswith("s") else self.font
            if col == "#0":
                need = max(need, self._measure(font, text) + TREE_INDENT * (1 + (parent != "")))
            else:
                need = max(need, self._measure(font, str(values[self._index(col)])))
        return need + PAD

    def _measure(self, font, text: str) -> int:
        key = (font is self.bold, text)
        if key not in self._widths_of:
            self._widths_of[key] = font.measure(text)
        return self._widths_of[key]

    @staticmethod
    def _index(col: str) -> int:
        return [c for c, *_ in COLUMNS[1:]].index(col)

    def layout(self):
        """Columns as wide as their content (or as the reader dragged them), all within the table's
        width: the name column takes what the others leave.  Where that is less than it needs (or
        :data:`NAME_SHARE`), the part column is left out (it stays in the detail panel, the study row and
        the CSV), then a finding's marks give way, then the names down to their least, then the columns
        the reader did not drag, then the others, each down to its least width.  Cells that still do not
        fit are elided in the middle, and hovering shows them whole."""
        width = self._table_width - 2
        if width <= 0:
            return
        # the views' names whole where they can be (a study's name is in the headline too: it may be elided)
        name_need = max(self.least["#0"], min(self.natural_width("#0", views_only=True), int(NAME_SHARE * width)))

        data = [c for c, *_ in COLUMNS[1:]]
        want = {c: self.user_widths.get(c, self.natural_width(c)) for c in data}
        if sum(want.values()) + name_need > width:           # the part column goes first
            data.remove("part")
        excess = sum(want[d] for d in data) + name_need - width
        if excess > 0:                                       # then a finding's marks (its words stay whole)
            want["finding"] = max(self.least["finding"], want["finding"] - excess)
            excess = sum(want[d] for d in data) + name_need - width
        if excess > 0:                                       # then the names, down to their least
            name_need = max(self.least["#0"], name_need - excess)
        for c in sorted(data, key=lambda c: c in self.user_widths):   # then undragged columns, then the rest
            excess = sum(want[d] for d in data) + name_need - width
            if excess > 0:
                want[c] = max(self.least[c], want[c] - excess)
        if tuple(self.table.cget("displaycolumns")) != tuple(data):
            self.table.configure(displaycolumns=data)
        widths = {c: want[c] for c in data}
        widths["#0"] = max(40, width - sum(widths.values()))
        if widths != {c: self.widths.get(c) for c in widths}:
            self.widths.update(widths)
            for c, w in widths.items():
                self.table.column(c, width=w)
            for iid in self._rows:
                self._show_row(iid)

    def _dragged(self, event):
        """After the reader drags a column's edge (wherever the pointer is let go): keep that width, and
        fit the others around it."""
        dragged = {c: int(self.table.column(c, "width")) for c in self.table.cget("displaycolumns")}
        dragged = {c: w for c, w in dragged.items() if w != self.widths.get(c)}
        if not dragged:
            return
        self.user_widths.update(dragged)
        self.widths = dict(self.least)   # every column set again
        self.layout()

    def _show_row(self, iid: str):
        """Put the row's texts into the table, each elided in the middle to its column's width."""
        parent, text, values, tag = self._rows[iid]
        font = self.bold if iid.startswith("s") else self.font
        name_width = self.widths["#0"] - TREE_INDENT * (1 + (parent != "")) - 4
        shown = (elide_to(text, font, name_width, head=NAME_HEAD),
                 tuple(self._fit_cell(c, str(v), font, self.widths.get(c, self.least[c]) - PAD)
                       for v, (c, *_) in zip(values, COLUMNS[1:])))
        if self._shown.get(iid) != shown:
            self.table.item(iid, text=shown[0], values=shown[1])
            self._shown[iid] = shown

    @staticmethod
    def _fit_cell(col: str, text: str, font, width: float) -> str:
        """A cell's text within ``width`` pixels: elided in the middle, except that a finding's words stay
        whole where they fit and its marks ("close to the cut", "cast/implant") give way first."""
        words, sep, marks = text.partition(" · ")
        if col == "finding" and marks and font.measure(text) > width and font.measure(words + "…") <= width:
            if font.measure(words + " · …") > width:
                return words + "…"
            return words + " · " + _end_elided(marks, font, width - font.measure(words + " · "))
        return elide_to(text, font, width)

    def full_text(self, iid: str, col: str) -> str:
        """What a cell says in full (the table may show it elided)."""
        _parent, text, values, _tag = self._rows[iid]
        return text if col == "#0" else str(values[self._index(col)])

    # --- content ---------------------------------------------------------------------

    def clear(self):
        self.views, self.studies = [], []
        self._rows, self._order, self._shown = {}, {}, {}
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
                values = (pres.table_finding(p), pres.part_cell(p), pres.short_probability(p))
                self._put(iid, parent, Path(self.views[i].path).name, values, p.finding)
                (children[parent] if parent else top).append(iid)
        wanted = set(top).union(*children.values()) if children else set(top)
        stale = [i for i in self._rows if i not in wanted]
        if stale:
            t.delete(*[i for i in stale if t.exists(i)])
            for i in stale:
                self._rows.pop(i)
                self._shown.pop(i, None)
        for parent, kids in children.items():
            if self._order.get(parent) != kids:
                t.set_children(parent, *kids)
                self._order[parent] = kids
        if self._order.get("") != top:
            t.set_children("", *top)
            self._order[""] = top
        self.layout()

    def _put(self, iid, parent, text, values, tag):
        """Insert a row, or update it where it changed (each Tk call counts while a folder loads)."""
        row = (parent, text, values, tag)
        if self._rows.get(iid) == row:
            return
        t = self.table
        if iid in self._rows:
            t.item(iid, tags=(tag,))
            if self._rows[iid][0] != parent:
                t.move(iid, parent, "end")
        else:
            t.insert(parent, "end", iid=iid, tags=(tag,), open=iid.startswith("s"))
        self._rows[iid] = row
        self._shown.pop(iid, None)
        self._show_row(iid)

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
        if iid not in self._rows:
            self.tooltip.hide()
            return
        name = col if col == "#0" else self.table.column(col, "id")
        text = self.full_text(iid, name)
        shown = self._shown.get(iid, (text, ()))
        cut = shown[0] != text if name == "#0" else shown[1][self._index(name)] != text
        tip = text if cut else ""
        if iid.startswith("v") and col == "#0":
            view = self.views[int(iid[1:])]
            tip = str(view.path) + (f"\n{view.prediction.message}" if view.prediction.message else "")
        self.tooltip.schedule(tip, e.x_root, e.y_root, row=iid)


def _end_elided(text: str, font, width: float) -> str:
    """As much of ``text``'s start as fits ``width`` with "…" after it."""
    while text and font.measure(text + "…") > width:
        text = text[:-1]
    return text.rstrip(" ·") + "…"


class _Reversed:
    """Wraps a sort key so that ``sorted`` puts it in descending order."""
    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return other.key < self.key

    def __eq__(self, other):
        return self.key == other.key
