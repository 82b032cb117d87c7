"""The desktop app (customtkinter): a viewer with decision support.

Threads: the Tk event loop runs on the main thread and never runs a model, reads a file or
builds an image pyramid; that is the worker thread's (worker.py), whose results the window polls.

Layout (fixed: nothing moves when a text changes length): toolbar; the study verdict as a
coloured headline; the image view (left) beside a fixed-width panel with the detail of the
current image (fixed height) above the worklist; the disclaimer.
"""
from __future__ import annotations

import queue
import time
import tkinter as tk
from pathlib import Path

import customtkinter as ctk

from . import presentation as pres
from .actions import Actions
from .desktop import ICON_DIR, ICONS
from .labels import elide, elide_to, reconfigure
from .notice import Notice, models_text, unreadable_text
from .report_dialog import ReportDialog
from .studies import PLACEHOLDER, StudyController
from .timing import TIMING, milestone
from .viewer import Viewer
from .worker import View, Worker
from .worklist import Worklist

__all__ = ["App", "View", "ReportDialog", "main"]   # View and ReportDialog are found here too

DEFAULT_SIZE, MIN_SIZE = (1180, 800), (900, 640)
ICON = ICON_DIR / ICONS["256x256"]
DISCLAIMER = "Decision support only, not a diagnosis. A clinician must review every image."
PANEL_WIDTH = (432, 560)   # the right-hand panel (detail and worklist): 42 % of the window, within these
HEADLINE_SIZE = 17          # the study verdict and, under it, the films opened and left out
DETAIL_HEIGHT = (290, 350)  # the detail panel's height: fixed for a window size (the worklist never
                            # moves when another image is selected), taller in taller windows; it holds an
                            # uncertain film's rank (chain.amber) whole at the smallest window

try:  # drag and drop needs the tkdnd Tcl extension that tkinterdnd2 ships
    from tkinterdnd2 import DND_FILES, TkinterDnD
    _Base = type("_Base", (ctk.CTk, TkinterDnD.DnDWrapper), {})
except Exception:  # pragma: no cover - platform without a tkdnd build
    DND_FILES, TkinterDnD, _Base = None, None, ctk.CTk


class App(Actions, StudyController, _Base):
    """The window: its widgets and layout, keys, status line, and the worker's results. What the
    reader does is in :class:`Actions` (actions.py); what is shown, in :class:`StudyController`
    (studies.py)."""

    def __init__(self, weights_dir, paths=(), start_worker: bool = True):
        super().__init__()
        self.title("Fracture screening – elbow, hand, shoulder X-rays")
        self._fit_screen()
        self._icon = tk.PhotoImage(file=str(ICON))   # the launcher's icon, also the window's
        self.iconphoto(True, self._icon)
        ctk.set_appearance_mode("system")
        self.results: queue.Queue = queue.Queue()
        self.worker = Worker(weights_dir, self.results)
        self.predictor = None
        self._init_studies()
        self.pending: list[Path] = []
        self.busy = False
        self.generation = 0
        self.dnd_available = False
        self.notice: Notice | None = None
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

    def _fit_screen(self):
        """Open at 1180 × 800, or as much of it as the screen holds (a 900 × 640 screen gets the whole
        window on it, right panel included); the smallest window is 900 × 640 where the screen has room."""
        scaling = self._get_window_scaling()
        screen_w, screen_h = self.winfo_screenwidth() / scaling, self.winfo_screenheight() / scaling
        width = int(min(DEFAULT_SIZE[0], screen_w))
        height = int(min(DEFAULT_SIZE[1], max(min(MIN_SIZE[1], screen_h), screen_h - 48)))  # room for a title bar
        self.minsize(min(MIN_SIZE[0], width), min(MIN_SIZE[1], height))
        self.first_size = (width, height)   # the panels are laid out for it from the start
        self.geometry(f"{width}x{height}" + ("+0+0" if (width, height) != DEFAULT_SIZE else ""))

    def destroy(self):
        for owner, job in ((self, self._poll_job), (self, self._refresh_job), (self.viewer, self.viewer._pending)):
            if job is not None:   # cancelled by the widget that made it, which forgets its command
                owner.after_cancel(job)
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
        self.status_font = ctk.CTkFont(size=13)
        self.status = ctk.CTkLabel(bar, text="", anchor="e", font=self.status_font)
        self._status = ("", False)
        self.status.grid(row=0, column=9, padx=12, sticky="ew")
        bar.grid_columnconfigure(9, weight=1)

        # the study verdict: first in the window, in the finding's colours, fixed height; under it, in
        # the same size, how many films were opened and which the verdict leaves out
        self.headline = ctk.CTkFrame(self, height=58, corner_radius=6, fg_color=("gray88", "gray20"))
        self.headline.grid(row=1, column=0, columnspan=2, sticky="ew", padx=10, pady=(8, 0))
        self.headline.grid_propagate(False)
        self.headline.grid_columnconfigure(0, weight=1)
        self.verdict_font = ctk.CTkFont(size=HEADLINE_SIZE, weight="bold")
        self.note_font = ctk.CTkFont(size=HEADLINE_SIZE)
        self.verdict_label = ctk.CTkLabel(self.headline, text="No study open", anchor="w", height=25,
                                          font=self.verdict_font, text_color="gray40")
        self.verdict_label.grid(row=0, column=0, sticky="ew", padx=14, pady=(3, 0))
        self.verdict_note = ctk.CTkLabel(self.headline, text="", anchor="w", font=self.note_font,
                                         text_color=("gray20", "gray80"), height=25)
        self.verdict_note.grid(row=1, column=0, sticky="ew", padx=14, pady=(0, 3))

        self.viewer = Viewer(self, corner_radius=6)
        self.viewer.grid(row=2, column=0, padx=10, pady=10, sticky="nsew")
        self.viewer.heat_switch.configure(command=self._overlay_toggled)
        self.viewer.boxes_switch.configure(command=self._overlay_toggled)

        side = self.side = ctk.CTkFrame(self, width=self._panel_width(self.first_size[0]), corner_radius=6)
        side.grid(row=2, column=1, padx=(0, 10), pady=10, sticky="ns")
        side.grid_propagate(False)
        side.grid_columnconfigure(0, weight=1)
        side.grid_rowconfigure(1, weight=1)
        detail = self.detail = ctk.CTkFrame(side, height=self._detail_height(self.first_size[1]), fg_color="transparent")
        detail.grid(row=0, column=0, sticky="ew", padx=8, pady=(8, 0))
        detail.grid_propagate(False)
        detail.grid_columnconfigure(0, weight=1)
        detail.grid_rowconfigure(2, weight=1)
        self.name_label = ctk.CTkLabel(detail, text="", anchor="w", font=ctk.CTkFont(size=13), height=20)
        finding_row = ctk.CTkFrame(detail, fg_color="transparent", height=34)
        self.finding_label = ctk.CTkLabel(finding_row, text="", anchor="w", height=34,
                                          font=ctk.CTkFont(size=22, weight="bold"))
        # beside the finding: "close to the cut: review" where the probability is within the cut's interval
        self.near_label = ctk.CTkLabel(finding_row, text="", anchor="w", height=34, text_color=pres.NEAR_CUT_COLOUR,
                                       font=ctk.CTkFont(size=13, weight="bold"))
        self.finding_label.pack(side="left")
        self.near_label.pack(side="left", padx=(10, 0))
        # a plain Text (a tenth of a CTkTextbox's start-up time); it scrolls with the wheel if ever full
        background = side._apply_appearance_mode(side.cget("fg_color"))
        self.detail_text = tk.Text(detail, wrap="word", borderwidth=0, highlightthickness=0, background=background,
                                   font=("TkDefaultFont", 10), padx=4, pady=4, cursor="arrow")
        self.detail_text.tag_configure("small", foreground="#505050", font=("TkDefaultFont", 9))
        self.detail_text.tag_configure("grey", foreground="#555555")
        self.detail_text.configure(state="disabled")
        # the models and their measured figures: always whole, under the detail however long it is
        self.models_label = tk.Label(detail, text="", justify="left", anchor="w", background=background,
                                     foreground="#505050", font=("TkDefaultFont", 9), padx=4, pady=2)
        self.name_label.grid(row=0, column=0, sticky="ew", padx=4)
        finding_row.grid(row=1, column=0, sticky="ew", padx=4)
        self.detail_text.grid(row=2, column=0, sticky="nsew")
        self.models_label.grid(row=3, column=0, sticky="ew")
        detail.bind("<Configure>", lambda e: self.models_label.configure(wraplength=max(100, e.width - 12)))
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
            if event.width != getattr(self, "_headline_width", None):
                self._headline_width = event.width
                self._show_headline(getattr(self, "_headline_members", None))   # elided to the new width
                self.after_idle(lambda: self.set_status(*self._status))
            scaling = self._get_window_scaling()
            width = self._panel_width(event.width / scaling)
            if self.side.cget("width") != width:
                self.side.configure(width=width)
            height = self._detail_height(event.height / scaling)
            if self.detail.cget("height") != height:
                self.detail.configure(height=height)

    @staticmethod
    def _detail_height(window_height: float) -> int:
        low, high = DETAIL_HEIGHT
        return max(low, min(high, round(low + 0.3 * (window_height - 640))))

    @staticmethod
    def _panel_width(window_width: float) -> int:
        low, high = PANEL_WIDTH
        return max(low, min(high, round(0.42 * window_width)))

    def _bind_keys(self):
        for seq, fn in (("<Control-o>", self.ask_open), ("<Control-O>", self.ask_folder),
                        ("<Control-s>", self.ask_save_report), ("<Control-e>", self.ask_export_csv),
                        ("<Control-h>", self.viewer.toggle_heat), ("<Control-q>", self.destroy)):
            self.bind(seq, lambda _e, f=fn: f())
        keys = {"space": self.viewer.toggle_heat, "h": self.viewer.toggle_heat, "b": self.viewer.toggle_boxes,
                "a": self.viewer.toggle_all_regions,
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
        elif kind == "fatal":   # the first-run check: no usable models
            self.set_status(payload, error=True)
            self.viewer.show(None, placeholder=payload)
            self.show_notice(*models_text(payload))
        elif kind == "analyse":
            generation, views = payload
            self.busy = False
            if generation == self.generation:
                self._add_views(views)
            self._submit()
            if generation == self.generation and not self.pending and not self.busy:
                self.set_status(pres.batch_status([v.prediction for v in self.views]),
                                error=all(v.prediction.finding == "error" for v in self.views))
                unreadable = unreadable_text([v.prediction for v in self.views])
                if unreadable:
                    self.show_notice(*unreadable)
        elif kind == "picture":
            generation, index, picture = payload
            if generation == self.generation and picture is not None and index < len(self.views):
                view = self.views[index]
                if view.picture is not None:
                    view.picture.with_full(picture)
                    self._kept(index)
                if index == self.current:
                    self.viewer.show(view.picture, view.prediction.regions, keep_view=True,
                                     quiet=view.prediction.finding != "fractured")
        elif kind == "report":
            self.set_status(f"Report saved to {Path(payload).name}.")
        elif kind == "error":
            what, request, message = payload
            if what == "analyse":
                self.busy = False
                self._submit()
            self.set_status(message, error=True)

    def show_notice(self, title: str, text: str) -> None:
        """A small dialog the reader must acknowledge (not modal); it replaces one still open."""
        if self.notice is not None and self.notice.winfo_exists():
            self.notice.show(title, text)
        else:
            self.notice = Notice(self, title, text)

    # --- status line -------------------------------------------------------------------

    def set_status(self, text: str, error: bool = False):
        """The status line, elided in the middle to the room the toolbar leaves it (never cut at its start)."""
        self._status = (text, error)
        room = self.status.master.winfo_width() - (self.export_button.winfo_x() + self.export_button.winfo_width()) - 40
        shown = elide_to(text, self.status_font, room) if room > 100 else elide(text, 110)
        reconfigure(self.status, text=shown, text_color="#c62828" if error else ("gray20", "gray80"))


def main(weights_dir, paths) -> None:
    app = App(weights_dir, paths)
    app.mainloop()
