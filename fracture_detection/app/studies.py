"""The study controller: which image is shown, and what the window says about it.

It adds the worker's results to the worklist (grouped into studies), keeps the selection, steps
through the worklist's order, shows the current view with its detail and the study's headline,
and keeps the full-resolution pictures within :data:`FULL_BUDGET`.
"""
from __future__ import annotations

from collections import OrderedDict

from . import presentation as pres
from .labels import elide, elide_to, reconfigure
from .timing import TIMING, milestone
from .worker import View

FULL_BUDGET = 768 << 20    # bytes of full-resolution pictures kept; older ones keep 512 px levels
REFRESH_MS = 300           # the worklist is refreshed at most this often while a folder is analysed
PLACEHOLDER = "Open an X-ray (Ctrl+O) or a folder (Ctrl+Shift+O), or drop files here."


class StudyController:
    """Mixed into the window (App), which builds the widgets this uses (viewer, worklist,
    name_label, finding_label, detail_text, models_label, verdict_label, verdict_note) and holds the worker."""

    def _init_studies(self):
        self.views: list[View] = []
        self.studies: list[pres.Study] = []
        self.current: int | None = None
        self.one_study = False
        self.full_kept: OrderedDict[int, int] = OrderedDict()   # view index -> bytes, least recent first
        self._refresh_job = None

    def _add_views(self, views: list[View]):
        start = len(self.views)
        self.views += views
        for i, v in enumerate(views, start):
            if v.picture is not None:
                self._kept(i)
        self.studies = pres.group_studies([v.path for v in self.views], one_study=self.one_study)
        if self.current is None:
            self._refresh_worklist()
            first = self.worklist.first_view()
            self.select(first if first is not None else 0)
            self.worklist.table.focus_set()  # the arrow keys work at once
            if TIMING:
                self.update_idletasks()
                milestone("first_result")
        elif self.pending:
            if self._refresh_job is None:
                self._refresh_job = self.after(REFRESH_MS, self._refresh_worklist)
        else:
            self._refresh_worklist()
            self._show_headline()

    def _refresh_worklist(self):
        if self._refresh_job is not None:
            self.after_cancel(self._refresh_job)
            self._refresh_job = None
        self.worklist.refresh(self.views, self.studies)
        if self.current is not None and self.worklist.selected() is None:
            self.worklist.select(f"v{self.current}")
        self._show_headline()

    def _kept(self, index: int):
        """Count a full-resolution picture against :data:`FULL_BUDGET`; drop the least recently
        shown ones beyond it (they keep their small levels and are re-read when shown)."""
        self.full_kept.pop(index, None)
        self.full_kept[index] = self.views[index].picture.nbytes
        while sum(self.full_kept.values()) > FULL_BUDGET and len(self.full_kept) > 1:
            old = next(i for i in self.full_kept if i != self.current)
            self.full_kept.pop(old)
            self.views[old].picture.drop_full()

    # --- selection -------------------------------------------------------------------

    def _on_row(self, iid: str):
        views = self.worklist.views_of(iid)
        if iid.startswith("s"):  # a study row: its headline, and its most suspicious view
            if views and views[0] != self.current:
                self.select(views[0], from_table=True)
            self._show_headline(self.worklist.views_of(iid))
        elif views and views[0] != self.current:
            self.select(views[0], from_table=True)

    def select(self, index: int, from_table: bool = False):
        self.current = index
        view = self.views[index]
        if not from_table:
            self.worklist.select(f"v{index}")
        if view.picture is not None and not view.picture.has_full:
            self.worker.requests.put(("picture", (self.generation, index, view.path)))
        elif index in self.full_kept:
            self.full_kept.move_to_end(index)
        self._show_current()
        self._show_headline()

    def step(self, delta: int):
        """Select the next (+1) or previous (-1) image in the worklist's order."""
        order = [int(i[1:]) for i in self.worklist.rows() if i.startswith("v")]
        if not order:
            return
        k = order.index(self.current) if self.current in order else -1
        self.select(order[max(0, min(len(order) - 1, k + delta))])

    def current_view(self) -> View | None:
        return None if self.current is None else self.views[self.current]

    def _show_current(self):
        v = self.current_view()
        if v is None:
            self.viewer.show(None, placeholder=PLACEHOLDER)
        else:
            p = v.prediction
            placeholder = "" if v.picture else f"No picture: {p.message or 'the file could not be read.'}"
            self.viewer.show(v.picture, p.regions, placeholder=placeholder, quiet=p.finding != "fractured")
        self._show_detail()

    def _show_detail(self):
        v = self.current_view()
        if v is None:
            self.name_label.configure(text="")
            self.finding_label.configure(text="")
            reconfigure(self.near_label, text="")
            self._set_detail([])
            self.models_label.configure(text="")
            return
        p = v.prediction
        self.name_label.configure(text=elide(v.path.name, 56))
        self.finding_label.configure(text=pres.finding_text(p.finding), text_color=pres.finding_colour(p.finding))
        reconfigure(self.near_label, text=pres.near_cut_text(p) or "")
        lines = [(line, "grey" if p.finding in ("not_supported", "error") and line == p.message else None)
                 for line in pres.detail_lines(p)]
        if self.viewer.heat_on and v.picture is not None and v.picture.heat is None:
            lines.append(("No heatmap: no fracture model ran on this image.", "small"))
        self._set_detail(lines)
        reconfigure(self.models_label, text="\n".join(pres.model_lines(self.predictor, [p])))

    def _set_detail(self, lines):
        t = self.detail_text
        t.configure(state="normal")
        t.delete("1.0", "end")
        for k, (line, tag) in enumerate(lines):
            t.insert("end", ("\n" if k else "") + line, tag or ())
        t.configure(state="disabled")

    def _overlay_toggled(self):
        self.viewer.redraw()
        self._show_detail()

    def study_of(self, index: int) -> pres.Study | None:
        return next((s for s in self.studies if index in s.members), None)

    def _show_headline(self, members: list[int] | None = None):
        """The study's verdict (with how many of its counted views have it) and, in the same size under
        it, how many films were opened and which the verdict leaves out; each line elided in the middle
        to the window's width."""
        self._headline_members = members
        if members is None:
            study = self.study_of(self.current) if self.current is not None else None
            members = study.members if study else []
        else:
            study = self.study_of(members[0]) if members else None
        if not members:
            reconfigure(self.verdict_label, text="No study open", text_color="gray40")
            reconfigure(self.verdict_note, text="")
            return
        preds = [v.prediction for v in self.views]
        verdict = study.verdict(preds) if study else preds[members[0]].finding
        n = len(members)
        part = study.part(preds) if study else None
        what = (f"{part} study {study.label}" if part else f"study {study.label}") if n > 1 else \
            f"image {self.views[members[0]].path.name}"
        count = study.count_text(preds) if study else ""
        width = max(200, self.headline.winfo_width() - 30)
        headline = pres.finding_text(verdict) + (f" — {count}" if count else "")
        if self.verdict_font.measure(f"{headline} · {what}") <= width:   # the study's name, where it fits
            headline = f"{headline} · {what}"
        reconfigure(self.verdict_label, text=elide_to(headline, self.verdict_font, width),
                    text_color=pres.finding_colour(verdict))
        opened = study.opened_line(preds, lambda i: self.views[i].path.name) if study else None
        reconfigure(self.verdict_note, text=elide_to(opened or "1 film opened", self.note_font, width))
