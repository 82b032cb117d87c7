"""The desktop app (customtkinter).

Threads: the Tk event loop runs on the main thread and never runs a model.
One worker thread loads the models and then analyses images one request at a
time; it hands results back through a queue that the event loop polls.
"""
from __future__ import annotations

import csv
import io
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from tkinter import filedialog, ttk

import customtkinter as ctk
import numpy as np
from PIL import Image

from .images import SUPPORTED_SUFFIXES, ImageError, find_images

FINDING_STYLE = {  # text, colour
    "fractured": ("Likely FRACTURE", "#d64545"),
    "normal": ("No fracture found", "#2e9d5b"),
    "uncertain": ("Uncertain: review closely", "#d69a1e"),
    "not_supported": ("Not a supported X-ray", "#7a7a7a"),
    "error": ("Could not be analysed", "#7a7a7a"),
}
TIMING = os.environ.get("FRACTURE_APP_TIMING")  # set by benchmarks/benchmark.py: print milestones
DISCLAIMER = "Decision support only, not a diagnosis. A clinician must review every image."
IMAGE_BOX = 560
SHOWN_SIDE = 1600  # the image kept for the window and the PDF report: more than either needs
SUSPICION_ORDER = {"fractured": 0, "uncertain": 1, "normal": 2, "not_supported": 3, "error": 4}

try:  # drag and drop needs the tkdnd Tcl extension that tkinterdnd2 ships
    from tkinterdnd2 import DND_FILES, TkinterDnD
    _Base = type("_Base", (ctk.CTk, TkinterDnD.DnDWrapper), {})
except Exception:  # pragma: no cover - platform without a tkdnd build
    DND_FILES, TkinterDnD, _Base = None, None, ctk.CTk


@dataclass
class View:
    """One analysed image as the window shows it."""
    path: Path
    prediction: object            # fracture_detection.predictor.Prediction
    image: Image.Image | None     # the X-ray, RGB, at most SHOWN_SIDE pixels a side
    overlay: Image.Image | None   # the X-ray with the heatmap


class Worker(threading.Thread):
    """Loads the models, then runs requests one at a time off the UI thread."""

    def __init__(self, weights_dir, results: queue.Queue):
        super().__init__(daemon=True, name="inference")
        self.weights_dir, self.results, self.requests = weights_dir, results, queue.Queue()
        self.predictor = None

    def run(self):
        try:
            from .predictor import Predictor
            self.predictor = Predictor(self.weights_dir)
            self.results.put(("ready", self.predictor))
        except Exception as exc:  # missing or broken weights: say so in the window
            self.results.put(("fatal", _sentence(exc)))
            return
        while True:
            kind, payload = self.requests.get()
            try:
                self.results.put((kind, self._handle(kind, payload)))
            except Exception as exc:
                self.results.put(("error", _sentence(exc)))

    def _handle(self, kind, payload):
        if kind == "analyse":
            return [self._view(p) for p in payload]
        if kind == "report":
            from .report import write_pdf
            write_pdf(*payload)
            return payload[0]
        raise ValueError(kind)

    def _view(self, path: Path) -> View:
        from .images import load_image
        from .visual import heatmap_overlay
        try:
            rgb = load_image(path)
        except ImageError as exc:
            from .predictor import Prediction
            return View(path, Prediction(path=str(path), message=str(exc)), None, None)
        pred = self.predictor.predict_loaded([str(path)], [rgb])[0]
        shown = Image.fromarray(np.ascontiguousarray(rgb))
        shown.thumbnail((SHOWN_SIDE, SHOWN_SIDE), Image.LANCZOS)
        heat = pred.heatmap((shown.height, shown.width))
        overlay = heatmap_overlay(np.asarray(shown), heat) if heat is not None else None
        return View(path, pred, shown, overlay)


def _sentence(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith(".") else text + "."


class App(_Base):
    def __init__(self, weights_dir, paths=(), start_worker: bool = True):
        super().__init__()
        self.title("Fracture screening – elbow, hand, shoulder X-rays")
        self.geometry("1180x800")
        self.minsize(900, 640)
        ctk.set_appearance_mode("system")
        self.results: queue.Queue = queue.Queue()
        self.worker = Worker(weights_dir, self.results)
        self.predictor = None
        self.views: list[View] = []
        self.current: View | None = None
        self.is_study = False
        self.pending: list[Path] = []
        self.busy = False
        self.dnd_available = False
        self._build()
        self._bind_keys()
        self._enable_drop()
        self.set_status("Loading models…")
        if paths:
            self.open_paths([Path(p) for p in paths])
        if start_worker:
            self.worker.start()
        self.after(50, self._poll)
        if TIMING:
            self.after_idle(lambda: self._milestone("window"))

    def _milestone(self, name: str):
        import sys
        import time
        print(f"milestone {name} {time.time():.3f}", file=sys.stderr, flush=True)

    # --- layout -----------------------------------------------------------------------

    def _build(self):
        self.grid_columnconfigure(0, weight=3)
        self.grid_columnconfigure(1, weight=2)
        self.grid_rowconfigure(1, weight=1)
        bar = ctk.CTkFrame(self, corner_radius=0)
        bar.grid(row=0, column=0, columnspan=2, sticky="ew")
        self.open_button = ctk.CTkButton(bar, text="Open X-rays…", width=120, command=self.ask_open)
        self.folder_button = ctk.CTkButton(bar, text="Open folder…", width=120, command=self.ask_folder)
        self.save_button = ctk.CTkButton(bar, text="Save report…", width=120, command=self.ask_save_report)
        self.export_button = ctk.CTkButton(bar, text="Export CSV…", width=110, command=self.ask_export_csv)
        self.heatmap_switch = ctk.CTkSwitch(bar, text="Heatmap", command=self._show_current)
        for i, w in enumerate((self.open_button, self.folder_button, self.save_button, self.export_button,
                               self.heatmap_switch)):
            w.grid(row=0, column=i, padx=6, pady=8)
        self.status = ctk.CTkLabel(bar, text="", anchor="e")
        self.status.grid(row=0, column=9, padx=12, sticky="e")
        bar.grid_columnconfigure(9, weight=1)

        self.image_label = ctk.CTkLabel(self, text="Open an X-ray (Ctrl+O) or drop files here.",
                                        width=IMAGE_BOX, height=IMAGE_BOX, fg_color=("gray85", "gray17"),
                                        corner_radius=8)
        self.image_label.grid(row=1, column=0, padx=10, pady=10, sticky="nsew")

        side = ctk.CTkFrame(self)
        side.grid(row=1, column=1, padx=(0, 10), pady=10, sticky="nsew")
        side.grid_columnconfigure(0, weight=1)
        side.grid_rowconfigure(6, weight=1)
        self.name_label = ctk.CTkLabel(side, text="", anchor="w", font=ctk.CTkFont(size=13))
        self.finding_label = ctk.CTkLabel(side, text="", anchor="w", font=ctk.CTkFont(size=24, weight="bold"))
        self.detail_label = ctk.CTkLabel(side, text="", anchor="w", justify="left", wraplength=420)
        self.model_label = ctk.CTkLabel(side, text="", anchor="w", justify="left", wraplength=420,
                                        font=ctk.CTkFont(size=11), text_color=("gray35", "gray65"))
        self.study_label = ctk.CTkLabel(side, text="", anchor="w", justify="left", wraplength=420,
                                        font=ctk.CTkFont(size=14, weight="bold"))
        for r, w in enumerate((self.name_label, self.finding_label, self.detail_label, self.model_label,
                               self.study_label)):
            w.grid(row=r, column=0, padx=12, pady=(8 if r == 0 else 2, 2), sticky="ew")

        style = ttk.Style(self)
        style.configure("Treeview", rowheight=24)
        columns = ("file", "part", "finding", "probability")
        self.table = ttk.Treeview(side, columns=columns, show="headings", selectmode="browse", height=10)
        for col, title, width in zip(columns, ("Image", "Body part", "Finding", "Fracture prob."),
                                     (170, 80, 110, 90)):
            self.table.heading(col, text=title, command=lambda c=col: self.sort_table(c))
            self.table.column(col, width=width, anchor="w" if col == "file" else "center")
        self.table.grid(row=6, column=0, padx=12, pady=8, sticky="nsew")
        self.table.bind("<<TreeviewSelect>>", self._on_select)
        self.sort_key, self.sort_reverse = "probability", True

        self.disclaimer = ctk.CTkLabel(self, text=DISCLAIMER, text_color="#b36b00",
                                       font=ctk.CTkFont(size=12, weight="bold"))
        self.disclaimer.grid(row=2, column=0, columnspan=2, pady=(0, 8))

    def _bind_keys(self):
        for seq, fn in (("<Control-o>", self.ask_open), ("<Control-O>", self.ask_folder),
                        ("<Control-s>", self.ask_save_report), ("<Control-e>", self.ask_export_csv),
                        ("<Control-h>", self.heatmap_switch.toggle), ("<Control-q>", self.destroy)):
            self.bind(seq, lambda _e, f=fn: f())

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

    # --- user actions ----------------------------------------------------------------

    def ask_open(self):
        types = [("X-ray images", " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES)), ("All files", "*")]
        paths = filedialog.askopenfilenames(parent=self, title="Open X-rays (several views of one study)",
                                            filetypes=types)
        if paths:
            self.open_paths([Path(p) for p in paths])

    def ask_folder(self):
        folder = filedialog.askdirectory(parent=self, title="Open a folder of X-rays")
        if folder:
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
        self._start(files, study=False)

    def open_paths(self, paths: list[Path]):
        files = [p for p in paths if not p.is_dir()]
        for d in (p for p in paths if p.is_dir()):
            files += find_images(d)
        if not files:
            self.set_status("No image files were given.", error=True)
            return
        self._start(files, study=len(paths) > 1 and not any(p.is_dir() for p in paths))

    def _start(self, files, study: bool):
        self.views, self.current, self.is_study = [], None, study
        self.table.delete(*self.table.get_children())
        self._show_current()
        self.pending = list(files)
        self._submit()

    def _submit(self):
        if self.predictor is None or self.busy or not self.pending:
            return
        self.busy = True
        batch, self.pending = self.pending[:8], self.pending[8:]
        self.set_status(f"Analysing… ({len(self.views)} of {len(self.views) + len(batch) + len(self.pending)})")
        self.worker.requests.put(("analyse", batch))

    def ask_save_report(self):
        if self.current is None:
            self.set_status("Open an X-ray first; there is nothing to report yet.", error=True)
            return
        path = filedialog.asksaveasfilename(parent=self, title="Save report", defaultextension=".pdf",
                                            filetypes=[("PDF", "*.pdf")],
                                            initialfile=f"{self.current.path.stem}_report.pdf")
        if path:
            self.save_report(Path(path))

    def save_report(self, path: Path):
        views = self.views if self.is_study else [self.current]
        pages = [{"name": v.path.name, "image": v.image or Image.new("RGB", (64, 64)),
                  "heatmap": v.overlay, "lines": self._result_lines(v)} for v in views]
        models = sorted({self._model_line(v) for v in views if self._model_line(v)})
        self.worker.requests.put(("report", (path, pages, self._study_line() if self.is_study else None, models)))
        self.set_status("Saving report…")

    def ask_export_csv(self):
        if not self.views:
            self.set_status("Open X-rays first; there is nothing to export yet.", error=True)
            return
        path = filedialog.asksaveasfilename(parent=self, title="Export results", defaultextension=".csv",
                                            filetypes=[("CSV", "*.csv")], initialfile="fracture_results.csv")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path):
        from .artifacts import atomic_write_text
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "body_part", "body_part_probability", "finding", "fracture_probability", "threshold",
                    "message"])
        for v in self._sorted_views():
            p = v.prediction
            w.writerow([v.path, p.body_part or "", p.body_part_probability or "", p.finding,
                        "" if p.fracture_probability is None else p.fracture_probability,
                        "" if p.threshold is None else p.threshold, p.message or ""])
        try:
            atomic_write_text(path, buf.getvalue())
            self.set_status(f"Exported {len(self.views)} results to {path.name}.")
        except OSError as exc:
            self.set_status(f"Could not write {path.name}: {exc.strerror or exc}.", error=True)

    def sort_table(self, column: str):
        self.sort_reverse = not self.sort_reverse if column == self.sort_key else column == "probability"
        self.sort_key = column
        self._fill_table()

    # --- results -----------------------------------------------------------------------

    def _poll(self):
        try:
            while True:
                kind, payload = self.results.get_nowait()
                self._handle_result(kind, payload)
        except queue.Empty:
            pass
        self.after(50, self._poll)

    def _handle_result(self, kind, payload):
        if kind == "ready":
            self.predictor = payload
            self.set_status("Ready." if not self.pending else "Models loaded.")
            self._submit()
        elif kind == "fatal":
            self.set_status(payload, error=True)
            self.image_label.configure(text=payload)
        elif kind == "analyse":
            self.busy = False
            self.views += payload
            self._fill_table()
            if self.current is None and self.views:
                self.select(self._sorted_views()[0] if not self.is_study else self.views[0])
                if TIMING:
                    self.update_idletasks()
                    self._milestone("first_result")
            self._show_study()
            if self.pending:
                self._submit()
            else:
                errors = sum(v.prediction.finding == "error" for v in self.views)
                self.set_status(f"Analysed {len(self.views)} image{'s' * (len(self.views) != 1)}"
                                + (f"; {errors} could not be read." if errors else "."), error=bool(errors)
                                and len(self.views) == errors)
                if len(self.views) == 1 and errors:
                    self.set_status(self.views[0].prediction.message, error=True)
        elif kind == "report":
            self.set_status(f"Report saved to {Path(payload).name}.")
        elif kind == "error":
            self.busy = False
            self.set_status(payload, error=True)
            self._submit()

    def _sorted_views(self):
        def key(v):
            p = v.prediction
            if self.sort_key == "file":
                return v.path.name.lower()
            if self.sort_key == "part":
                return p.body_part or "~"
            if self.sort_key == "finding":
                return SUSPICION_ORDER.get(p.finding, 9)
            return -1.0 if p.fracture_probability is None else p.fracture_probability
        return sorted(self.views, key=key, reverse=self.sort_reverse)

    def _fill_table(self):
        self.table.delete(*self.table.get_children())
        for v in self._sorted_views():
            p = v.prediction
            prob = "–" if p.fracture_probability is None else f"{p.fracture_probability:.2f}"
            self.table.insert("", "end", iid=str(self.views.index(v)),
                              values=(v.path.name, p.body_part or "–", p.finding.replace("_", " "), prob))
        if self.current is not None and self.current in self.views:
            self.table.selection_set(str(self.views.index(self.current)))

    def _on_select(self, _event=None):
        sel = self.table.selection()
        if sel and self.views[int(sel[0])] is not self.current:
            self.select(self.views[int(sel[0])])

    def select(self, view: View):
        self.current = view
        self._show_current()

    def _result_lines(self, v: View) -> list[str]:
        p = v.prediction
        text, _ = FINDING_STYLE[p.finding]
        lines = [f"Finding: {text}"]
        if p.body_part:
            lines.append(f"Body part: {p.body_part} ({p.body_part_probability:.0%})")
        if p.fracture_probability is not None:
            lo, hi = p.uncertain_band
            lines.append(f"Fracture probability {p.fracture_probability:.2f} (threshold {p.threshold:.2f}; "
                         f"uncertain between {lo:.2f} and {hi:.2f})")
        if p.message:
            lines.append(p.message)
        return lines

    def _model_line(self, v: View) -> str | None:
        if self.predictor is None or not v.prediction.body_part:
            return None
        from .visual import model_summary
        fm = self.predictor.fracture.get(v.prediction.body_part)
        lines = [model_summary(self.predictor.body_info.meta)]
        if fm is not None:
            lines.append(model_summary(fm.info.meta))
        return "Models: " + "; ".join(lines)

    def _show_current(self):
        v = self.current
        if v is None:
            self._set_picture(None, "Open an X-ray (Ctrl+O) or drop files here.")
            for w in (self.name_label, self.finding_label, self.detail_label, self.model_label):
                w.configure(text="")
            return
        shown = v.overlay if (self.heatmap_switch.get() and v.overlay is not None) else v.image
        if shown is not None:
            box = max(IMAGE_BOX, min(self.image_label.winfo_width(), self.image_label.winfo_height()) - 16)
            scale = min(box / shown.width, box / shown.height)
            img = shown.resize((max(1, round(shown.width * scale)), max(1, round(shown.height * scale))),
                               Image.LANCZOS)
            self._set_picture(img, "")
        else:
            self._set_picture(None, v.prediction.message or "")
        text, colour = FINDING_STYLE[v.prediction.finding]
        self.name_label.configure(text=v.path.name)
        self.finding_label.configure(text=text, text_color=colour)
        self.detail_label.configure(text="\n".join(self._result_lines(v)[1:]))
        self.model_label.configure(text=self._model_line(v) or "")
        if self.heatmap_switch.get() and v.overlay is None and v.image is not None:
            self.set_status("No heatmap: no fracture model ran on this image.")

    def _set_picture(self, img: Image.Image | None, text: str):
        """Show a picture (or only text). The old CTkImage must outlive the reconfiguration."""
        img = img if img is not None else Image.new("RGBA", (1, 1), (0, 0, 0, 0))
        photo = ctk.CTkImage(light_image=img, dark_image=img, size=img.size)
        self.image_label.configure(image=photo, text=text)
        self._photo = photo

    def _study_line(self) -> str | None:
        probs = [v.prediction.fracture_probability for v in self.views
                 if v.prediction.fracture_probability is not None]
        if not self.is_study or len(self.views) < 2:
            return None
        if not probs:
            return "Study: no view could be scored for fracture."
        mean = sum(probs) / len(probs)
        parts = {v.prediction.body_part for v in self.views if v.prediction.fracture_probability is not None}
        verdict = "abnormal (likely fracture)" if mean > 0.5 else "normal"
        note = "" if len(parts) == 1 else " Views were read as different body parts; check they are one study."
        return (f"Study ({len(probs)} of {len(self.views)} views scored): mean fracture probability {mean:.2f}, "
                f"{verdict} by the MURA rule (mean > 0.5).{note}")

    def _show_study(self):
        self.study_label.configure(text=self._study_line() or "")

    def set_status(self, text: str, error: bool = False):
        self.status.configure(text=text, text_color="#d64545" if error else ("gray20", "gray80"))


def main(weights_dir, paths) -> None:
    app = App(weights_dir, paths)
    app.mainloop()
