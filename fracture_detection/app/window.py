"""The desktop app (customtkinter): a viewer with decision support.

Threads: the Tk event loop runs on the main thread and never runs a model, reads a file or
builds an image pyramid; that is the worker thread's (worker.py), whose results the window polls.

Layout (fixed: nothing moves when a text changes length): toolbar; the study verdict as a
coloured headline; the image view (left) beside a fixed-width panel with the detail of the
current image (fixed height) above the worklist; the disclaimer.
"""
from __future__ import annotations

import csv
import io
import queue
import time
import tkinter as tk
from pathlib import Path
from tkinter import filedialog

import customtkinter as ctk

from ..io.images import SUPPORTED_SUFFIXES, find_images
from . import presentation as pres
from . import settings
from .labels import elide, reconfigure
from .studies import PLACEHOLDER, StudyController
from .timing import TIMING, milestone
from .viewer import Viewer
from .worker import View, Worker
from .worklist import Worklist

__all__ = ["App", "View", "ReportDialog", "main"]   # View lives in worker.py; importers find it here too

DISCLAIMER = "Decision support only, not a diagnosis. A clinician must review every image."
PANEL_WIDTH = (400, 480)   # the right-hand panel (detail and worklist): 40 % of the window, within these
DETAIL_HEIGHT = 200        # the detail panel's fixed height: the worklist never moves
BATCH = 8                  # images per request to the worker

try:  # drag and drop needs the tkdnd Tcl extension that tkinterdnd2 ships
    from tkinterdnd2 import DND_FILES, TkinterDnD
    _Base = type("_Base", (ctk.CTk, TkinterDnD.DnDWrapper), {})
except Exception:  # pragma: no cover - platform without a tkdnd build
    DND_FILES, TkinterDnD, _Base = None, None, ctk.CTk


class App(StudyController, _Base):
    def __init__(self, weights_dir, paths=(), start_worker: bool = True):
        super().__init__()
        self.title("Fracture screening – elbow, hand, shoulder X-rays")
        self.geometry("1180x800")
        self.minsize(900, 640)
        ctk.set_appearance_mode("system")
        self.results: queue.Queue = queue.Queue()
        self.worker = Worker(weights_dir, self.results)
        self.predictor = None
        self._init_studies()
        self.pending: list[Path] = []
        self.busy = False
        self.generation = 0
        self.dnd_available = False
        self._build()
        self._bind_keys()
        self._enable_drop()
        self.set_status("Loading models…")
        if paths:
            self.open_paths([Path(p) for p in paths])
        if start_worker:
            self.worker.start()
        self._poll_job = self.after(30, self._poll)
        if TIMING:
            self.after_idle(lambda: milestone("window"))

    def destroy(self):
        for job in (self._poll_job, self._refresh_job, self.viewer._pending):
            if job is not None:
                self.after_cancel(job)
        self.worklist.tooltip.hide()
        super().destroy()

    # --- layout -----------------------------------------------------------------------

    def _build(self):
        self.grid_columnconfigure(0, weight=1)
        self.grid_columnconfigure(1, weight=0)
        self.grid_rowconfigure(2, weight=1)
        bar = ctk.CTkFrame(self, corner_radius=0)
        bar.grid(row=0, column=0, columnspan=2, sticky="ew")
        self.open_button = ctk.CTkButton(bar, text="Open X-rays…", width=116, command=self.ask_open)
        self.folder_button = ctk.CTkButton(bar, text="Open folder…", width=116, command=self.ask_folder)
        self.save_button = ctk.CTkButton(bar, text="Save report…", width=116, command=self.ask_save_report)
        self.export_button = ctk.CTkButton(bar, text="Export CSV…", width=106, command=self.ask_export_csv)
        for i, w in enumerate((self.open_button, self.folder_button, self.save_button, self.export_button)):
            w.grid(row=0, column=i, padx=(8 if i == 0 else 0, 8), pady=8)
        self.status = ctk.CTkLabel(bar, text="", anchor="e")
        self.status.grid(row=0, column=9, padx=12, sticky="ew")
        bar.grid_columnconfigure(9, weight=1)

        # the study verdict: first in the window, in the finding's colours, fixed height
        self.headline = ctk.CTkFrame(self, height=58, corner_radius=6, fg_color=("gray88", "gray20"))
        self.headline.grid(row=1, column=0, columnspan=2, sticky="ew", padx=10, pady=(8, 0))
        self.headline.grid_propagate(False)
        self.headline.grid_columnconfigure(0, weight=1)
        self.verdict_label = ctk.CTkLabel(self.headline, text="No study open", anchor="w",
                                          font=ctk.CTkFont(size=20, weight="bold"), text_color="gray40")
        self.verdict_label.grid(row=0, column=0, sticky="ew", padx=14, pady=(4, 0))
        self.verdict_note = ctk.CTkLabel(self.headline, text="", anchor="w", font=ctk.CTkFont(size=11),
                                         text_color=("gray30", "gray70"), height=16)
        self.verdict_note.grid(row=1, column=0, sticky="ew", padx=14, pady=(0, 4))

        self.viewer = Viewer(self, corner_radius=6)
        self.viewer.grid(row=2, column=0, padx=10, pady=10, sticky="nsew")
        self.viewer.heat_switch.configure(command=self._overlay_toggled)
        self.viewer.boxes_switch.configure(command=self._overlay_toggled)

        side = self.side = ctk.CTkFrame(self, width=self._panel_width(1180), corner_radius=6)
        side.grid(row=2, column=1, padx=(0, 10), pady=10, sticky="ns")
        side.grid_propagate(False)
        side.grid_columnconfigure(0, weight=1)
        side.grid_rowconfigure(1, weight=1)
        detail = ctk.CTkFrame(side, height=DETAIL_HEIGHT, fg_color="transparent")
        detail.grid(row=0, column=0, sticky="ew", padx=8, pady=(8, 0))
        detail.grid_propagate(False)
        detail.grid_columnconfigure(0, weight=1)
        detail.grid_rowconfigure(2, weight=1)
        self.name_label = ctk.CTkLabel(detail, text="", anchor="w", font=ctk.CTkFont(size=13), height=20)
        self.finding_label = ctk.CTkLabel(detail, text="", anchor="w", height=34,
                                          font=ctk.CTkFont(size=22, weight="bold"))
        # a plain Text (a tenth of a CTkTextbox's start-up time); it scrolls with the wheel if ever full
        background = side._apply_appearance_mode(side.cget("fg_color"))
        self.detail_text = tk.Text(detail, wrap="word", borderwidth=0, highlightthickness=0, background=background,
                                   font=("TkDefaultFont", 10), padx=4, pady=4, cursor="arrow")
        self.detail_text.tag_configure("small", foreground="#505050", font=("TkDefaultFont", 9))
        self.detail_text.tag_configure("grey", foreground="#555555")
        self.detail_text.configure(state="disabled")
        self.name_label.grid(row=0, column=0, sticky="ew", padx=4)
        self.finding_label.grid(row=1, column=0, sticky="ew", padx=4)
        self.detail_text.grid(row=2, column=0, sticky="nsew")
        self.worklist = Worklist(side, on_select=self._on_row, fg_color="transparent")
        self.worklist.grid(row=1, column=0, sticky="nsew", padx=8, pady=8)

        self.disclaimer = ctk.CTkLabel(self, text=DISCLAIMER, text_color="#a35c00",
                                       font=ctk.CTkFont(size=12, weight="bold"))
        self.disclaimer.grid(row=3, column=0, columnspan=2, pady=(0, 6))
        self.viewer.show(None, placeholder=PLACEHOLDER)
        self.bind("<Configure>", self._fit_panel, add="+")

    def _fit_panel(self, event):
        """The panel's width follows the window's (not its content), so that nothing moves when
        another image is selected and the viewer's tools fit at the smallest window."""
        if event.widget is self:
            width = self._panel_width(event.width / self._get_window_scaling())
            if self.side.cget("width") != width:
                self.side.configure(width=width)

    @staticmethod
    def _panel_width(window_width: float) -> int:
        low, high = PANEL_WIDTH
        return max(low, min(high, round(0.4 * window_width)))

    def _bind_keys(self):
        for seq, fn in (("<Control-o>", self.ask_open), ("<Control-O>", self.ask_folder),
                        ("<Control-s>", self.ask_save_report), ("<Control-e>", self.ask_export_csv),
                        ("<Control-h>", self.viewer.toggle_heat), ("<Control-q>", self.destroy)):
            self.bind(seq, lambda _e, f=fn: f())
        keys = {"space": self.viewer.toggle_heat, "h": self.viewer.toggle_heat, "b": self.viewer.toggle_boxes,
                "f": self.viewer.fit, "1": self.viewer.one_to_one, "r": self.viewer.reset,
                "plus": lambda: self._zoom_centre(1.25), "equal": lambda: self._zoom_centre(1.25),
                "minus": lambda: self._zoom_centre(0.8)}
        for key, fn in keys.items():  # the root's binding serves wherever else the focus is
            for target in (self, self.viewer.canvas, self.worklist.table):
                target.bind(f"<KeyPress-{key}>", lambda _e, f=fn: (f(), "break")[1])
        self.viewer.canvas.bind("<Up>", lambda _e: self.step(-1))
        self.viewer.canvas.bind("<Down>", lambda _e: self.step(1))

    def _zoom_centre(self, factor):
        cw, ch = self.viewer._view_size()
        self.viewer.zoom(factor, cw / 2, ch / 2)

    def _enable_drop(self):
        if TkinterDnD is None:
            return
        try:
            self.TkdndVersion = TkinterDnD._require(self)
            self.drop_target_register(DND_FILES)
            self.dnd_bind("<<Drop>>", self._on_drop)
            self.dnd_available = True
        except Exception:  # the window still works without drag and drop
            self.dnd_available = False

    # --- opening -----------------------------------------------------------------------

    def ask_open(self):
        types = [("X-ray images", " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES)), ("All files", "*")]
        paths = filedialog.askopenfilenames(parent=self, title="Open X-rays (several views of one study)",
                                            filetypes=types, initialdir=str(settings.last_folder()))
        if paths:
            settings.remember_folder(paths[0])
            self.open_paths([Path(p) for p in paths])

    def ask_folder(self):
        folder = filedialog.askdirectory(parent=self, title="Open a folder of X-rays",
                                         initialdir=str(settings.last_folder()))
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

    # --- results -----------------------------------------------------------------------

    def _poll(self):
        start = time.perf_counter()
        try:  # at most ~20 ms of handling per tick, so that the window stays responsive
            while time.perf_counter() - start < 0.02:
                kind, payload = self.results.get_nowait()
                self._handle_result(kind, payload)
        except queue.Empty:
            pass
        self._poll_job = self.after(30, self._poll)

    def _handle_result(self, kind, payload):
        if kind == "ready":
            self.predictor = payload
            self.set_status("Ready." if not self.pending else "Models loaded.")
            self._submit()
        elif kind == "fatal":
            self.set_status(payload, error=True)
            self.viewer.show(None, placeholder=payload)
        elif kind == "analyse":
            generation, views = payload
            self.busy = False
            if generation == self.generation:
                self._add_views(views)
            self._submit()
            if generation == self.generation and not self.pending and not self.busy:
                self.set_status(pres.batch_status([v.prediction for v in self.views]),
                                error=all(v.prediction.finding == "error" for v in self.views))
        elif kind == "picture":
            generation, index, picture = payload
            if generation == self.generation and picture is not None and index < len(self.views):
                view = self.views[index]
                if view.picture is not None:
                    view.picture.with_full(picture)
                    self._kept(index)
                if index == self.current:
                    self.viewer.show(view.picture, view.prediction.regions, keep_view=True)
        elif kind == "report":
            self.set_status(f"Report saved to {Path(payload).name}.")
        elif kind == "error":
            what, request, message = payload
            if what == "analyse":
                self.busy = False
                self._submit()
            self.set_status(message, error=True)

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
        path = filedialog.asksaveasfilename(parent=self, title="Export results", defaultextension=".csv",
                                            filetypes=[("CSV", "*.csv")], initialfile="fracture_results.csv",
                                            initialdir=str(settings.last_folder()))
        if path:
            settings.remember_folder(Path(path).parent)
            self.export_csv(Path(path))

    def export_csv(self, path: Path):
        from ..io.files import atomic_write_text
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "study", "study_verdict", "body_part", "body_part_probability", "finding",
                    "fracture_probability", "threshold", "message"])
        preds = [v.prediction for v in self.views]
        for i in sorted(range(len(self.views)), key=lambda i: pres.suspicion_key(preds[i])):
            v, p, s = self.views[i], preds[i], self.study_of(i)
            w.writerow([v.path, s.label if s else "", s.verdict(preds) if s else "", p.body_part or "",
                        p.body_part_probability or "", p.finding,
                        "" if p.fracture_probability is None else p.fracture_probability,
                        "" if p.threshold is None else p.threshold, p.message or ""])
        try:
            atomic_write_text(path, buf.getvalue())
            self.set_status(f"Exported {len(self.views)} results to {path.name}.")
        except OSError as exc:
            self.set_status(f"Could not write {path.name}: {exc.strerror or exc}.", error=True)

    def set_status(self, text: str, error: bool = False):
        reconfigure(self.status, text=elide(text, 110), text_color="#c62828" if error else ("gray20", "gray80"))


class ReportDialog(ctk.CTkToplevel):
    """What goes into the report: the current study or the whole worklist, and the optional
    fields the reader types (nothing is read from DICOM headers unless the reader asks)."""

    def __init__(self, app: App):
        super().__init__(app)
        self.app = app
        self.title("Save report")
        self.resizable(False, False)
        self.transient(app)
        self.grid_columnconfigure(1, weight=1)
        self.scope = ctk.StringVar(value="study")
        n_study, n_all = len(app.report_views("study")), len(app.views)
        ctk.CTkLabel(self, text="Report on", anchor="w").grid(row=0, column=0, padx=12, pady=(12, 4), sticky="w")
        ctk.CTkRadioButton(self, text=f"the current study ({n_study} image{'s' * (n_study != 1)})",
                           variable=self.scope, value="study").grid(row=0, column=1, padx=12, pady=(12, 4), sticky="w")
        ctk.CTkRadioButton(self, text=f"the whole worklist ({n_all} image{'s' * (n_all != 1)})",
                           variable=self.scope, value="worklist").grid(row=1, column=1, padx=12, pady=4, sticky="w")
        self.entries = {}
        for r, name in enumerate(("Patient or accession", "Reader"), start=2):
            ctk.CTkLabel(self, text=f"{name} (optional)", anchor="w").grid(row=r, column=0, padx=12, pady=4,
                                                                           sticky="w")
            e = ctk.CTkEntry(self, width=260)
            e.grid(row=r, column=1, padx=12, pady=4, sticky="ew")
            self.entries[name] = e
        view = app.current_view()
        from ..io.images import is_dicom
        if view is not None and is_dicom(view.path):
            ctk.CTkButton(self, text="Fill from the DICOM header", width=200, command=self.from_dicom).grid(
                row=4, column=1, padx=12, pady=4, sticky="w")
        buttons = ctk.CTkFrame(self, fg_color="transparent")
        buttons.grid(row=5, column=0, columnspan=2, pady=12)
        ctk.CTkButton(buttons, text="Save…", width=100, command=self.save).grid(row=0, column=0, padx=6)
        ctk.CTkButton(buttons, text="Cancel", width=100, fg_color="gray50", command=self.destroy).grid(
            row=0, column=1, padx=6)
        self.bind("<Escape>", lambda _e: self.destroy())
        self.after(50, self._focus)

    def _focus(self):
        try:
            self.grab_set()
            self.entries["Patient or accession"].focus_set()
        except Exception:  # the window manager may refuse a grab; the dialog still works
            pass

    def from_dicom(self):
        """Patient ID and accession number from the current file's header, at the reader's request."""
        import pydicom
        try:
            ds = pydicom.dcmread(self.app.current_view().path, stop_before_pixels=True, force=True)
        except Exception:
            self.app.set_status("The DICOM header could not be read.", error=True)
            return
        text = " / ".join(str(v) for v in (ds.get("PatientID"), ds.get("AccessionNumber")) if v)
        self.entries["Patient or accession"].delete(0, "end")
        self.entries["Patient or accession"].insert(0, text)

    def save(self):
        fields = {k: e.get().strip() for k, e in self.entries.items() if e.get().strip()}
        scope = self.scope.get()
        view = self.app.current_view()
        name = "worklist_report.pdf" if scope == "worklist" else f"{view.path.stem}_report.pdf"
        self.grab_release()
        path = filedialog.asksaveasfilename(parent=self, title="Save report", defaultextension=".pdf",
                                            filetypes=[("PDF", "*.pdf")], initialfile=name,
                                            initialdir=str(settings.last_folder()))
        if path:
            settings.remember_folder(Path(path).parent)
            self.app.save_report(Path(path), scope, fields)
        self.destroy()


def main(weights_dir, paths) -> None:
    app = App(weights_dir, paths)
    app.mainloop()
