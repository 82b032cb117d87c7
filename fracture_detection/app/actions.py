"""What the reader does from the toolbar, keys and drops: open X-rays (files, a folder, a drop),
save a PDF report, export the results as CSV.

Opening hands the files to the worker a batch at a time; the results come back through the
window's polling (window.py) and the study controller (studies.py).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from tkinter import filedialog

from ..io.images import SUPPORTED_SUFFIXES, find_images
from . import presentation as pres
from . import dialogs, settings
from .report_dialog import ReportDialog

BATCH = 8                  # images per request to the worker
# the exported table's columns: the first twelve as before, then the cuts' 95 % intervals, whether the
# probability is close to its deciding cut, the regions and the file's warning, the amber rank, and what
# the film shows in a reader's word (body_part: the region, the model that read it)
CSV_COLUMNS = ["path", "study", "study_verdict", "body_part", "body_part_probability", "finding",
               "fracture_probability", "no_fracture_below", "likely_fracture_from", "appliance",
               "appliance_probability", "message", "no_fracture_below_ci95", "likely_fracture_from_ci95",
               "near_cut", "regions", "warning", "amber_share", "amber_n", "amber_fractured", "view"]


def csv_regions(regions) -> str:
    """Regions in one cell, most likely first: ``x0 y0 x1 y1 score`` (image pixels), separated by "; "."""
    return "; ".join(" ".join(str(v) for v in r["box"]) + f" {r['score']:g}" for r in regions or [])


class Actions:
    """Mixed into the window (App): the reader's commands. They use the window's status line,
    worker and worklist, and the study controller's views, studies and selection."""

    # --- opening -----------------------------------------------------------------------

    def dialog_folder(self) -> Path:
        """Where a file dialog opens: the last folder used, else the current film's, else home."""
        view = self.current_view()
        return settings.last_folder(view.path.parent if view is not None else None)

    def ask_open(self):
        dialogs.prepare(self)
        types = [("X-ray images", " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES)), ("All files", "*")]
        paths = filedialog.askopenfilenames(parent=self, title="Open X-rays (several views of one study)",
                                            filetypes=types, initialdir=str(self.dialog_folder()))
        if paths:
            settings.remember_folder(paths[0])
            self.open_paths([Path(p) for p in paths])

    def ask_folder(self):
        dialogs.prepare(self)
        folder = filedialog.askdirectory(parent=self, title="Open a folder of X-rays (only folders are listed)",
                                         initialdir=str(self.dialog_folder()))
        if folder:
            settings.remember_folder(folder)
            self.open_folder(Path(folder))

    def _on_drop(self, event):
        paths = [Path(p) for p in self.tk.splitlist(event.data)]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        else:
            self.open_paths(paths)

    def open_folder(self, folder: Path):
        files = find_images(folder)
        if not files:
            self.set_status(f"The folder {folder.name} contains no supported images.", error=True)
            return
        self._start(files, one_study=False)

    def open_paths(self, paths: list[Path]):
        files = [p for p in paths if not p.is_dir()]
        for d in (p for p in paths if p.is_dir()):
            files += find_images(d)
        if not files:
            self.set_status("No image files were given.", error=True)
            return
        self._start(files, one_study=len(paths) > 1 and not any(p.is_dir() for p in paths))

    def _start(self, files, one_study: bool):
        self.generation += 1
        self.views, self.studies, self.current, self.one_study = [], [], None, one_study
        self.full_kept.clear()
        self.worklist.clear()
        self._show_current()
        self.pending = list(files)
        self._submit()

    def _submit(self):
        if self.predictor is None or self.busy or not self.pending:
            return
        self.busy = True
        batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
        total = len(self.views) + len(batch) + len(self.pending)
        self.set_status(f"Analysing… ({len(self.views)} of {total})")
        self.worker.requests.put(("analyse", (self.generation, batch)))

    # --- report and export -----------------------------------------------------------

    def ask_save_report(self):
        if self.current is None:
            self.set_status("Open an X-ray first; there is nothing to report yet.", error=True)
            return
        ReportDialog(self)

    def report_views(self, scope: str) -> list[int]:
        """``study``: the current image's study; ``worklist``: everything open."""
        if scope == "worklist":
            return list(range(len(self.views)))
        study = self.study_of(self.current)
        return list(study.members) if study else [self.current]

    def save_report(self, path: Path, scope: str = "study", fields: dict | None = None):
        indices = self.report_views(scope)
        preds = [self.views[i].prediction for i in indices]
        position = {i: k for k, i in enumerate(indices)}
        studies = [pres.Study(s.key, s.label, [position[i] for i in s.members])
                   for s in self.studies if all(i in position for i in s.members)]
        self.worker.requests.put(("report", (Path(path), preds, studies, fields or {})))
        self.set_status("Saving report…")

    def ask_export_csv(self):
        if not self.views:
            self.set_status("Open X-rays first; there is nothing to export yet.", error=True)
            return
        dialogs.prepare(self)
        path = filedialog.asksaveasfilename(parent=self, title="Export results", defaultextension=".csv",
                                            filetypes=[("CSV", "*.csv")], initialfile="fracture_results.csv",
                                            initialdir=str(self.dialog_folder()))
        if path:
            settings.remember_folder(Path(path).parent)
            self.export_csv(Path(path))

    def export_csv(self, path: Path):
        from ..io.files import atomic_write_text
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        preds = [v.prediction for v in self.views]
        for i in sorted(range(len(self.views)), key=lambda i: pres.suspicion_key(preds[i])):
            v, p, s = self.views[i], preds[i], self.study_of(i)
            ci = p.cut_ci95 or {}
            w.writerow([v.path, s.label if s else "", s.verdict(preds) if s else "", p.body_part or "",
                        p.body_part_probability or "", p.finding,
                        "" if p.fracture_probability is None else p.fracture_probability,
                        *(p.uncertain_band or ["", ""]), p.appliance or "",
                        "" if p.appliance_probability is None else p.appliance_probability, p.message or "",
                        *("–".join(f"{x:g}" for x in ci[k]) if k in ci else "" for k in ("no_fracture_below",
                                                                                         "fracture_from")),
                        p.near_cut or "", csv_regions(p.regions), p.warning or "",
                        # an uncertain film's rank inside "uncertain" (chain.amber), blank otherwise
                        *("" if p.finding != "uncertain" or getattr(p, k) is None else getattr(p, k)
                          for k in ("amber_share", "amber_n", "amber_fractured")), p.view or ""])
        try:
            atomic_write_text(path, buf.getvalue())
            self.set_status(f"Exported {len(self.views)} results to {path.name}.")
        except OSError as exc:
            self.set_status(f"Could not write {path.name}: {exc.strerror or exc}.", error=True)
