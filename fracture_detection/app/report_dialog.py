"""The "Save report" dialog: what goes into the PDF, and the optional fields the reader types."""
from __future__ import annotations

from pathlib import Path
from tkinter import filedialog

import customtkinter as ctk

from . import dialogs, settings


class ReportDialog(ctk.CTkToplevel):
    """What goes into the report: the current study or the whole worklist, and the optional
    fields the reader types (nothing is read from DICOM headers unless the reader asks)."""

    def __init__(self, app):  # app: the window (window.App), which opens this dialog
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

    def suggested_stem(self, scope: str) -> str:
        """The report's suggested file name: the study's name (not its first image's), or "worklist"."""
        study = self.app.study_of(self.app.current) if scope == "study" else None
        return study.file_stem() if study is not None else "worklist"

    def save(self):
        fields = {k: e.get().strip() for k, e in self.entries.items() if e.get().strip()}
        scope = self.scope.get()
        name = f"{self.suggested_stem(scope)}_report.pdf"
        self.grab_release()
        dialogs.prepare(self)
        path = filedialog.asksaveasfilename(parent=self, title="Save report", defaultextension=".pdf",
                                            filetypes=[("PDF", "*.pdf")], initialfile=name,
                                            initialdir=str(self.app.dialog_folder()))
        if path:
            settings.remember_folder(Path(path).parent)
            self.app.save_report(Path(path), scope, fields)
        self.destroy()
