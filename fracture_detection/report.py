"""PDF report of one analysis: image, heatmap, findings, models, time, disclaimer."""
from __future__ import annotations

import datetime as _dt
import io
from pathlib import Path

from PIL import Image

from .artifacts import atomic_write_bytes

DISCLAIMER = ("Decision support only, not a diagnosis. The finding is the output of a machine-learning model "
              "trained on public research data; it must be reviewed by a qualified clinician together with "
              "the full study and the patient's history.")


def _font_path() -> str:
    import matplotlib
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def _png(img: Image.Image, max_side: int = 900) -> io.BytesIO:
    img = img.copy()
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    return buf


def write_pdf(path, views: list[dict], study_line: str | None, model_lines: list[str]) -> None:
    """``views``: dicts with ``name``, ``image`` (PIL), ``heatmap`` (PIL or None) and ``lines`` (text)."""
    from fpdf import FPDF
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("DejaVu", "", _font_path())
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    for k, view in enumerate(views):
        pdf.add_page()
        pdf.set_font("DejaVu", size=15)
        pdf.cell(0, 9, "Fracture screening report", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=9)
        pdf.cell(0, 5, f"Created {now} · view {k + 1} of {len(views)} · {view['name']}", new_x="LMARGIN",
                 new_y="NEXT")
        pdf.ln(2)
        y = pdf.get_y()
        pdf.image(_png(view["image"]), x=10, y=y, w=90)
        if view.get("heatmap") is not None:
            pdf.image(_png(view["heatmap"]), x=110, y=y, w=90)
        h = 90 * view["image"].height / max(1, view["image"].width)
        pdf.set_y(y + min(h, 120) + 3)
        pdf.set_font("DejaVu", size=8)
        pdf.cell(0, 4, "Left: the X-ray. Right: where the fracture model looked (class activation map)."
                 if view.get("heatmap") is not None else "The X-ray.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("DejaVu", size=11)
        for line in view["lines"]:
            pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        if study_line and k == len(views) - 1:
            pdf.ln(2)
            pdf.multi_cell(0, 6, study_line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("DejaVu", size=8)
        for line in model_lines:
            pdf.multi_cell(0, 4, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("DejaVu", size=9)
        pdf.multi_cell(0, 5, DISCLAIMER, border=1, new_x="LMARGIN", new_y="NEXT")
    atomic_write_bytes(Path(path), bytes(pdf.output()))

