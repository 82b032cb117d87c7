"""The PDF report of a batch: a summary page, then one page per image.

Used by the app ("Save report…") and by ``predictions.py PATHS --report FILE.pdf``.

Page 1: who and when (optional patient/accession and reader typed by the reader, with lines to
sign), the study verdict(s) as coloured headlines, every image with its finding (most suspicious
first), the models with their measured figures, and the disclaimer.  Then per image: the X-ray,
the same with the heatmap and fracture regions and their legends, the finding, the figures behind
it, the models, the date and time, and the disclaimer.  A file that could not be read gets a line
saying why, not a picture.
"""
from __future__ import annotations

import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..io.files import atomic_write_bytes
from ..chain import decisions
from . import presentation as pres

DISCLAIMER = ("Decision support only, not a diagnosis. The finding is the output of a machine-learning model "
              "trained on public research data; it must be reviewed by a qualified clinician together with "
              "the full study and the patient's history.")
PICTURE_SIDE = 1000        # pixels of the longest side kept for a picture in the PDF
FIELDS = ("Patient or accession", "Reader")


def read_picture(pred) -> Image.Image | None:
    """The X-ray of a prediction, at most :data:`PICTURE_SIDE` a side (None when unreadable)."""
    from ..io.images import ImageError, is_grey, load_image
    if not pred.path or pred.finding == "error":
        return None
    try:
        rgb = load_image(pred.path)
    except (ImageError, OSError):
        return None
    img = Image.fromarray(rgb[:, :, 0] if is_grey(rgb) else rgb)
    img.thumbnail((PICTURE_SIDE, PICTURE_SIDE), Image.LANCZOS)
    return img


@dataclass
class _Fonts:
    regular: str
    bold: str


def _fonts() -> _Fonts:
    import matplotlib
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return _Fonts(str(folder / "DejaVuSans.ttf"), str(folder / "DejaVuSans-Bold.ttf"))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _jpeg(img: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90)
    buf.seek(0)
    return buf


def overlay_picture(img: Image.Image, pred, font=None) -> Image.Image | None:
    """The X-ray with the heatmap (absolute scale) and the fracture regions, or None when there
    is neither."""
    from .visual import compose, draw_regions, heat_image, shown_regions
    heat = pred.heatmap((img.height, img.width)) if getattr(pred, "cam", None) is not None else None
    if heat is None and not pred.regions:
        return None
    out = compose(img, heat_image(heat) if heat is not None else None)
    if pred.regions and pred.image_shape:
        out = draw_regions(out, shown_regions(pred), img.width / pred.image_shape[1], font,
                           quiet=pred.finding != "fractured")
    return out


def time_stamp(now: _dt.datetime) -> str:
    """``2026-11-30 09:12 UTC``, or local time with its zone and offset
    (``2026-11-30 10:12 CET, UTC+01:00``); a naive time is taken as local."""
    now = now.astimezone() if now.tzinfo is None else now
    offset = now.utcoffset() or _dt.timedelta(0)
    if not offset:
        return now.strftime("%Y-%m-%d %H:%M UTC")
    minutes = int(offset.total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    name = now.tzname() or ""
    name = f"{name}, " if name and name[0].isalpha() and not name.startswith("UTC") else ""
    return f"{now:%Y-%m-%d %H:%M} {name}UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _pdf_class():
    """FPDF with a footer on every page: who the report is about, and "page x of y"."""
    from fpdf import FPDF

    class _PDF(FPDF):
        footer_text = ""

        def footer(self):
            self.set_y(-11)
            self.set_font("DejaVu", "", 7.5)
            self.set_text_color(80, 80, 80)
            self.cell(0, 4, self.footer_text, align="L")
            self.set_x(self.l_margin)
            self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="R")
            self.set_text_color(0, 0, 0)

    return _PDF


class _Report:
    def __init__(self, predictions, predictor, studies, fields, picture, now):
        self.preds = list(predictions)
        self.predictor = predictor
        self.studies = studies if studies is not None else pres.group_studies([p.path for p in self.preds])
        self.study_of = {i: s for s in self.studies for i in s.members}
        self.fields = fields or {}
        self.picture = picture or read_picture
        self.now = time_stamp(now or _dt.datetime.now().astimezone())
        self.order = sorted(range(len(self.preds)), key=lambda i: pres.suspicion_key(self.preds[i]))
        fonts = _fonts()
        self.pdf = _pdf_class()(format="A4")
        patient = self.fields.get(FIELDS[0]) or "________________"
        self.pdf.footer_text = f"{FIELDS[0]}: {patient} · Fracture screening report, {self.now}"
        self.pdf.set_auto_page_break(True, margin=14)
        self.pdf.add_font("DejaVu", "", fonts.regular)
        self.pdf.add_font("DejaVu", "B", fonts.bold)
        self.pdf.set_title("Fracture screening report")
        self.pdf.set_creator("fracture_detection")
        from PIL import ImageFont
        self.label_font = ImageFont.truetype(fonts.bold, 18)

    # --- small pieces ----------------------------------------------------------------

    def text(self, line: str, size: float = 10, bold: bool = False, colour: str = "#000000", h: float = 5):
        self.pdf.set_font("DejaVu", "B" if bold else "", size)
        self.pdf.set_text_color(*_rgb(colour))
        self.pdf.multi_cell(0, h, line, align="L", new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_text_color(0, 0, 0)

    def header(self, subtitle: str):
        self.pdf.add_page()
        self.text("Fracture screening report", 15, bold=True, h=8)
        self.text(f"Created {self.now} · {subtitle}", 9, colour="#444444")
        self.pdf.ln(2)

    def models(self, preds):
        lines = pres.model_lines(self.predictor, preds)
        if lines:
            self.pdf.ln(2)
            self.text("Models and their measured figures:", 8, bold=True, h=4)
            for line in lines:
                self.text(line, 8, h=4)

    def disclaimer(self):
        self.pdf.ln(3)
        self.pdf.set_font("DejaVu", "", 9)
        self.pdf.multi_cell(0, 5, DISCLAIMER, border=1, new_x="LMARGIN", new_y="NEXT")

    def verdict_line(self, study: pres.Study, size: float = 13):
        """The study's verdict, then how many films were opened and which it leaves out (MURA's mean-of-views
        rule is an evaluation figure: it goes to the notes at the end of the summary, never under a verdict)."""
        verdict = study.verdict(self.preds)
        count = study.count_text(self.preds)
        part = study.part(self.preds)
        what = f"{study.label} ({part})" if part and len(study.members) > 1 else study.label
        self.text(f"{what}: {pres.finding_text(verdict)}{f' ({count})' if count else ''}", size, bold=True,
                  colour=pres.finding_colour(verdict), h=size * 0.5)
        opened = study.opened_line(self.preds, self.name)
        if opened:
            self.text(opened, max(9.0, size * 0.75), colour="#222222", h=max(4.5, size * 0.4))

    def notes(self, studies):
        """What the verdicts do not rest on, apart from them: MURA's study rule, and what the table's marks mean."""
        lines = []
        for study in studies:
            mura = pres.mura_mean_line([self.preds[i] for i in study.counted(self.preds)])
            if mura:
                lines.append(f"{study.label}: {mura[:1].lower()}{mura[1:]}")
        marks = {m for p in self.preds for m in pres.notes(p)}
        if lines:
            lines.insert(0, "MURA's study rule, an evaluation figure and not this tool's verdict (each verdict above "
                            "comes from its views' own findings):")
        if "close to the cut" in marks:
            lines.append(f"Close to the cut: the probability lies within the 95 % bootstrap interval of the cut that "
                         f"decided the finding; the finding is what the rule says, but {decisions.NEAR_CUT_WORDS}.")
        if "cast/implant" in marks:
            lines.append("Cast/implant: a cast, splint or implant is in view (a follow-up film?); shown, never used "
                         "to move a film down the list.")
        if "warning" in marks:
            lines.append("Warning: the file was read with a warning (e.g. it ends early); see its page.")
        if lines:
            self.pdf.ln(2)
            self.text("Notes", 9, bold=True, h=4.5)
            for line in lines:
                self.text(line, 8, colour="#444444", h=4)

    def name(self, i: int) -> str:
        return Path(self.preds[i].path).name if self.preds[i].path else f"image {i + 1}"

    # --- pages -----------------------------------------------------------------------

    def summary(self):
        n, grouped = len(self.preds), [s for s in self.studies if len(s.members) > 1]
        singles = len(self.studies) - len(grouped)
        what = [f"{len(grouped)} stud{'ies' if len(grouped) != 1 else 'y'} of several views"] if grouped else []
        what += [f"{singles} image{'s' * (singles != 1)} read on {'their' if singles != 1 else 'its'} own"] \
            if singles else []
        self.header(f"{n} image{'s' * (n != 1)}: " + ", ".join(what))
        pdf = self.pdf
        pdf.set_font("DejaVu", "", 10)
        for name in FIELDS:
            value = self.fields.get(name) or ""
            pdf.cell(45, 7, f"{name}:")
            pdf.cell(0, 7, value if value else "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.cell(45, 7, "Reviewed and signed:")
        pdf.cell(0, 7, "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        ordered = sorted(grouped, key=lambda s: pres.study_key(s, self.preds))
        if ordered:
            self.text("Study verdict" if len(ordered) == 1 else "Study verdicts, most suspicious first", 11, bold=True)
            for study in ordered:
                self.verdict_line(study, 16 if len(ordered) == 1 else 11)
            self.text("A study is fractured when any of its views is, else uncertain when any view is, each view at "
                      "its own model's two cuts (Likely FRACTURE from one, No fracture found below the other). "
                      "Films are one study when they were opened together or their folders say so (MURA's "
                      "patient/study folders); a view read as another body part, or not analysed, does not count "
                      "for the verdict.", 8, colour="#555555", h=4)
        else:
            self.text("Each image is read on its own: none were opened together as one study, and no folder "
                      "names a study.", 9, colour="#555555", h=4.5)
        pdf.ln(3)
        self.text("Images, most suspicious first", 11, bold=True)
        self.table()
        self.notes(ordered)
        self.models(self.preds)
        self.disclaimer()

    def table(self):
        pdf = self.pdf
        widths = (9, 36, 22, 33, 28, 30, 32)  # the part cell names the view and its model
        heads = ("Page", "Image", "Study", "Part", "Finding", "p and its cut", "Notes")
        pdf.set_font("DejaVu", "B", 8)
        for w, h in zip(widths, heads):
            pdf.cell(w, 6, h, border="B")
        pdf.ln(6)
        for page, i in enumerate(self.order, start=2):
            p = self.preds[i]
            study = self.study_of.get(i)
            cells = (str(page), _fit(pdf, self.name(i), widths[1], head=3),
                     _fit(pdf, study.label if study and len(study.members) > 1 else "–", widths[2], head=3),
                     _fit(pdf, pres.part_cell(p), widths[3]), pres.TABLE_TEXT[p.finding], pres.short_probability(p),
                     _fit(pdf, ", ".join(pres.notes(p)), widths[6]))
            for k, (w, c) in enumerate(zip(widths, cells)):
                pdf.set_font("DejaVu", "B" if k == 4 else "", 8)
                pdf.set_text_color(*_rgb(pres.finding_colour(p.finding) if k == 4 else
                                         pres.NEAR_CUT_COLOUR if k == 6 else "#000000"))
                pdf.set_fill_color(*_rgb(pres.FINDING_STYLE[p.finding][2]))
                pdf.cell(w, 5.5, c, fill=(k == 4))
            pdf.ln(5.5)
        pdf.set_text_color(0, 0, 0)

    def image_page(self, number: int, i: int):
        p = self.preds[i]
        self.header(f"image {number} of {len(self.preds)} · {self.name(i)}")
        self.text(pres.finding_text(p.finding), 18, bold=True, colour=pres.finding_colour(p.finding), h=9)
        if pres.near_cut_text(p):   # beside the finding: the words warn, the finding stays
            self.text(pres.near_cut_text(p), 12, bold=True, colour=pres.NEAR_CUT_COLOUR, h=6)
        study = self.study_of.get(i)
        if study is not None and len(study.members) > 1:
            self.verdict_line(study, 10)
        self.pdf.ln(1)
        img = self.picture(p) if p.finding != "error" else None
        if img is None:
            why = p.message or "The file could not be read."
            self.text(f"No picture: {why}", 11, colour=pres.finding_colour("error"))
        else:
            self.pictures(img, p)
        self.pdf.ln(2)
        for line in pres.detail_lines(p) if img is not None else []:
            grey = p.finding in ("not_supported", "error") and line == p.message
            self.text(line, 10, colour="#555555" if grey else "#000000")
        self.models([p])
        self.disclaimer()

    def pictures(self, img: Image.Image, p):
        from .visual import REGION_BINS, colourbar, region_label
        pdf = self.pdf
        over = overlay_picture(img, p, self.label_font)
        box_w, box_h = 90.0, 105.0
        scale = min(box_w / img.width, box_h / img.height)
        w, h = img.width * scale, img.height * scale
        y = pdf.get_y()
        pdf.image(_jpeg(img), x=10, y=y, w=w, h=h)
        if over is not None:
            pdf.image(_jpeg(over), x=110, y=y, w=w, h=h)
        pdf.set_y(y + h + 2)
        if over is None:
            self.text("The X-ray." + (" No fracture model ran on this image, so there is no heatmap."
                                      if p.fracture_probability is None else ""), 8, h=4)
            return
        self.text("Left: the X-ray. Right: the fracture model's map (heatmap)"
                  + (" and the regions it marks." if p.regions else "."), 8, h=4)
        yb = pdf.get_y() + 1
        if getattr(p, "cam", None) is not None:
            pdf.set_font("DejaVu", "", 7)
            pdf.set_xy(10, yb)
            pdf.cell(24, 4, "Heatmap scale:")
            pdf.image(_jpeg(colourbar(256, 12, background=128)), x=34, y=yb + 0.5, w=50, h=3)
            for value, x in ((0, 34), (0.5, 59), (1, 84)):
                pdf.set_xy(x - 3, yb + 3.6)
                pdf.cell(6, 3, f"{value:g}", align="C")
            pdf.set_xy(88, yb)
            pdf.cell(0, 4, "fracture probability at each place, 0–1 (absolute: not rescaled per image)")
            yb += 8
        if p.regions:
            pdf.set_xy(10, yb)
            pdf.set_font("DejaVu", "", 7)
            pdf.cell(24, 4, "Region boxes:")
            for _, colour, label in REGION_BINS:
                pdf.set_fill_color(*_rgb(colour))
                pdf.cell(4, 4, "", border=1, fill=True)
                pdf.cell(pdf.get_string_width(" " + label) + 4, 4, " " + label)
            pdf.ln(4)
            n = len(p.regions)
            if p.finding != "fractured":
                self.text(f"The top region only, dashed: the film is not called Likely FRACTURE "
                          f"({n} region{'s' * (n != 1)} marked in all; score {region_label(p.regions[0]['score'])}).",
                          7, h=4)
            else:
                self.text((f"{n} regions, each labelled with its score" if n != 1 else
                           "1 region, labelled with its score")
                          + f" (most likely: {region_label(p.regions[0]['score'])}).", 7, h=4)
        pdf.set_y(max(pdf.get_y(), yb))

    def build(self) -> bytes:
        self.summary()
        for number, i in enumerate(self.order, start=1):
            self.image_page(number, i)
        return bytes(self.pdf.output())


def _fit(pdf, text: str, width: float, head: int | None = None) -> str:
    """``text`` shortened with an ellipsis in the middle to fit ``width`` mm at the current font;
    ``head``: keep at most that much of its start, the rest from its end (``pat…00012 / study1``)."""
    pdf.set_font("DejaVu", "", 8)
    if pdf.get_string_width(text) <= width - 1:
        return text

    def cut(keep):
        first = (keep + 1) // 2 if head is None else min(head, keep)
        return text[:first] + "…" + (text[len(text) - (keep - first):] if keep - first else "")
    keep = len(text)
    while keep > 4 and pdf.get_string_width(cut(keep)) > width - 1:
        keep -= 1
    return cut(keep)


def write_report(path, predictions, predictor=None, *, studies=None, fields: dict | None = None,
                 picture=None, now: _dt.datetime | None = None) -> Path:
    """Write the PDF for ``predictions`` (a batch, in any order) to ``path``, atomically.

    ``predictor``: the :class:`Predictor` whose models made them (for the models' figures).
    ``studies``: :class:`presentation.Study` groups (default: by folder).  ``fields``: what the
    reader typed (keys of :data:`FIELDS`); nothing is read from DICOM headers here.
    ``picture(prediction)``: the X-ray as a PIL image (default: read from the file)."""
    data = _Report(predictions, predictor, studies, fields, picture, now).build()
    atomic_write_bytes(Path(path), data)
    return Path(path)
