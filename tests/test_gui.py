"""The desktop app in a real window on a (virtual) X server."""
import csv
import os
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import FOLDERS, ROOT

XRAY = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[0]
FINDING_TEXTS = {"Likely FRACTURE", "No fracture found", "Uncertain: review closely", "Not a supported X-ray"}


def pump(app, done, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        app.update()
        if done():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out; status: {app.status.cget('text')}")


@pytest.fixture(scope="module")
def app(display, tiny_weights):
    from fracture_detection.gui import App
    a = App(tiny_weights, [XRAY])
    pump(a, lambda: a.views and not a.busy and not a.pending)
    yield a
    a.destroy()


def screenshot(app):
    from PIL import ImageGrab
    app.update()
    x, y = app.winfo_rootx(), app.winfo_rooty()
    return np.asarray(ImageGrab.grab(bbox=(x, y, x + app.winfo_width(), y + app.winfo_height()),
                                     xdisplay=os.environ["DISPLAY"]))


def test_opens_an_xray_and_shows_the_result(app):
    assert app.finding_label.cget("text") in FINDING_TEXTS
    assert app.name_label.cget("text") == XRAY.name
    detail = app.detail_label.cget("text")
    assert "Body part:" in detail or app.views[0].prediction.finding == "not_supported"
    if app.views[0].prediction.fracture_probability is not None:
        assert "threshold" in detail and "Models:" in app.model_label.cget("text")
    assert "not a diagnosis" in app.disclaimer.cget("text")
    shot = screenshot(app)
    assert shot.shape[0] > 300 and shot.std() > 20, "the window looks blank"


def test_heatmap_toggle_switches_the_picture(app):
    view = app.views[0]
    if view.overlay is None:
        pytest.skip("the tiny body-part model did not route this image to a fracture model")

    def shown():
        return np.asarray(app._photo.cget("light_image")).astype(int)

    def fitted(img):
        return np.asarray(img.resize(app._photo.cget("size"))).astype(int)

    app.heatmap_switch.deselect()
    app._show_current()
    assert np.abs(shown() - fitted(view.image)).mean() < 1
    app.heatmap_switch.toggle()  # as a click does: flips the switch and redraws
    app.update()
    assert np.abs(shown() - fitted(view.overlay)).mean() < 1
    app.heatmap_switch.deselect()
    app._show_current()


def test_heatmap_overlay_marks_hot_regions():
    from fracture_detection.visual import heatmap_overlay
    rgb = np.full((40, 60, 3), 100, np.uint8)
    heat = np.zeros((40, 60))
    heat[10:20, 30:50] = 1.0
    out = np.asarray(heatmap_overlay(rgb, heat)).astype(int)
    assert np.abs(out[:10] - 100).max() == 0, "cold regions stay untouched"
    assert np.abs(out[12:18, 32:48] - 100).mean() > 30


def test_saves_a_pdf_report_with_the_finding(app, tmp_path):
    from pypdf import PdfReader
    out = tmp_path / "report.pdf"
    app.save_report(out)
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    assert out.read_bytes()[:5] == b"%PDF-"
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert app.finding_label.cget("text") in text
    assert "not a diagnosis" in text and XRAY.name in text


def test_corrupt_file_shows_a_message_not_a_crash(app, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(XRAY.read_bytes()[:300])
    app.open_paths([bad])
    pump(app, lambda: app.views and not app.busy)
    assert app.finding_label.cget("text") == "Could not be analysed"
    assert "broken.jpg" in app.status.cget("text") and app.status.cget("text").endswith(".")
    assert app.winfo_exists()


def test_folder_table_sorted_and_exported(app, tmp_path):
    folder = tmp_path / "folder"
    shutil.copytree(FOLDERS / "Elbow", folder)
    app.open_folder(folder)
    pump(app, lambda: len(app.views) == 8 and not app.busy and not app.pending)
    rows = [app.table.item(i, "values") for i in app.table.get_children()]
    assert len(rows) == 8
    probs = [float(r[3]) if r[3] != "–" else -1 for r in rows]
    assert probs == sorted(probs, reverse=True), "most suspicious first"
    app.sort_table("file")
    names = [app.table.item(i, "values")[0] for i in app.table.get_children()]
    assert names == sorted(names)
    app.table.selection_set(app.table.get_children()[-1])
    app.update()
    assert app.name_label.cget("text") == names[-1]
    app.export_csv(tmp_path / "out.csv")
    with open(tmp_path / "out.csv") as fh:
        exported = list(csv.DictReader(fh))
    assert len(exported) == 8 and {"path", "finding", "fracture_probability"} <= set(exported[0])


def test_study_of_several_views_and_drop(app, tmp_path):
    a = tmp_path / "view one.jpg"
    b = tmp_path / "view two.jpg"
    shutil.copy(XRAY, a)
    shutil.copy(sorted((FOLDERS / "Hand" / "normal").glob("*.jpg"))[0], b)
    app._on_drop(SimpleNamespace(data=f"{{{a}}} {{{b}}}"))  # how tkdnd hands over paths with spaces
    pump(app, lambda: len(app.views) == 2 and not app.busy)
    probs = [v.prediction.fracture_probability for v in app.views if v.prediction.fracture_probability is not None]
    study = app.study_label.cget("text")
    if probs:
        assert f"mean fracture probability {sum(probs) / len(probs):.2f}" in study
    else:
        assert "no view could be scored" in study


def test_gui_script_opens_a_window(display, tiny_weights):
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed")
    proc = subprocess.Popen([sys.executable, str(ROOT / "GUI.py"), "--weights", str(tiny_weights), str(XRAY)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "Fracture screening"],
                               capture_output=True, text=True, timeout=60)
        assert found.stdout.strip(), "no window appeared"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.terminate()
        proc.wait(timeout=20)
