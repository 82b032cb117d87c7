"""The desktop app in a real window on a (virtual) X server, with the tiny real models.

Each test builds its own window and opens what it needs (no test relies on another's state).
Events are real Tk events (event_generate): clicks, drags, the wheel, keys, resizes.
"""
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import FOLDERS, MURA, ROOT

XRAY = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[0]
NORMAL = sorted((FOLDERS / "Hand" / "normal").glob("*.jpg"))[0]


def pump(app, done, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        app.update()
        if done():
            app.update()
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out; status: {app.status.cget('text')}")


def settle(app, seconds=0.15):
    end = time.time() + seconds
    while time.time() < end:
        app.update()
        time.sleep(0.01)


def finished(app):
    return app.predictor is not None and app.views and not app.busy and not app.pending


@pytest.fixture
def make_app(display, tiny_weights, tmp_path, monkeypatch):
    """Build a window (1180×800 unless told), open ``paths`` and wait for the results."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    apps = []

    def make(paths=(), size="1180x800"):
        from fracture_detection.app.window import App
        app = App(tiny_weights, [Path(p) for p in paths])
        app.geometry(f"{size}+0+0")
        apps.append(app)
        pump(app, (lambda: finished(app)) if paths else (lambda: app.predictor is not None))
        settle(app)
        return app

    yield make
    for app in apps:
        try:
            app.destroy()
        except Exception:  # already closed by the test
            pass


def screenshot(widget):
    from PIL import ImageGrab
    widget.update()
    x, y = widget.winfo_rootx(), widget.winfo_rooty()
    return np.asarray(ImageGrab.grab(bbox=(x, y, x + widget.winfo_width(), y + widget.winfo_height()),
                                     xdisplay=os.environ["DISPLAY"]))


def big_xray(tmp_path, size=(1500, 1200), name="big.png"):
    """A real fixture X-ray enlarged, with a pixel pattern to check 1:1 against."""
    img = Image.open(XRAY).convert("L").resize(size, Image.BICUBIC)
    arr = np.asarray(img).copy()
    arr[::7, ::5] = 255 - arr[::7, ::5]     # fine detail that any resampling would smear
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return path, arr


def double_click(widget, x, y):
    """Two clicks 50 ms apart (event time), well after any earlier click."""
    start = double_click.time = getattr(double_click, "time", 10_000) + 10_000
    for t in (start, start + 50):
        widget.event_generate("<ButtonPress-1>", x=x, y=y, time=t)
        widget.event_generate("<ButtonRelease-1>", x=x, y=y, time=t + 10)


def iid_of(app, name):
    return next(i for i in app.worklist.rows() if i.startswith("v") and app.views[int(i[1:])].path.name == name)


def inject(app, views, one_study=False):
    """Show views made from real predictions (possibly edited: data, not a mocked model)."""
    app._start([], one_study)
    app._handle_result("analyse", (app.generation, views))
    settle(app)


def view_of(app, path, **changes):
    """A real tiny-model prediction for ``path``, with fields changed as given."""
    from fracture_detection.app.window import View
    from fracture_detection.app.viewer import Picture
    from fracture_detection.io.images import load_image
    rgb = load_image(path)
    pred = app.predictor.predict_loaded([str(path)], [rgb])[0]
    for k, v in changes.items():
        setattr(pred, k, v)
    if pred.cam is None and changes.get("finding") in ("fractured", "uncertain", "normal"):
        pred.cam = np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7)
        pred.image_shape = rgb.shape[:2]
    return View(Path(path), pred, Picture.from_array(rgb, pred.heatmap))


def with_finding(app, path, finding, part="hand", threshold=0.6, band=(0.4, 0.8), **changes):
    """A prediction whose probability the decision rule puts in ``finding`` (``band``: its two cuts)."""
    from fracture_detection.chain import decisions
    p = {"fractured": 0.9, "uncertain": 0.65, "normal": 0.2}[finding]
    v = view_of(app, path, body_part=part, body_part_probability=0.97, fracture_probability=p, threshold=threshold,
                uncertain_band=list(band), finding=finding, message=None, rejection=None, **changes)
    assert decisions.fracture_finding(p, band) == finding
    return v


# --- results as the reader sees them -----------------------------------------------------

def test_opens_an_xray_and_shows_its_finding(make_app):
    from fracture_detection.chain import decisions
    from fracture_detection.app import presentation as pres
    app = make_app([XRAY])
    pred = app.views[0].prediction
    assert app.finding_label.cget("text") == pres.finding_text(pred.finding)
    assert app.finding_label.cget("text_color") == pres.finding_colour(pred.finding)
    assert app.name_label.cget("text") == XRAY.name
    detail = app.detail_text.get("1.0", "end")
    if pred.fracture_probability is not None:
        p, low, high = decisions.format_probabilities(pred.fracture_probability, *pred.uncertain_band)
        assert f"Fracture probability {p} · Likely FRACTURE from {high} · No fracture below {low}" in detail
        assert decisions.fracture_finding(pred.fracture_probability, pred.uncertain_band) == pred.finding, \
            "the edges shown are the ones the finding uses"
        assert "fracture_" in app.models_label.cget("text"), "the model and its measured figures are shown"
    else:
        assert pred.message in detail
    assert "1.00" not in detail
    assert app.verdict_label.cget("text").startswith(pres.finding_text(pred.finding))
    assert "not a diagnosis" in app.disclaimer.cget("text")
    shot = screenshot(app)
    assert shot.shape[0] > 600 and shot.std() > 20, "the window looks blank"
    canvas = screenshot(app.viewer.canvas)
    assert canvas.std() > 10, "the X-ray is not on screen"


def test_finding_label_matches_the_prediction_for_every_kind(make_app, tmp_path):
    from fracture_detection.app import presentation as pres
    app = make_app()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(XRAY.read_bytes()[:300])
    from fracture_detection.app.window import View
    from fracture_detection.chain.predictor import Prediction, safe_load
    error = View(broken, app.predictor.predict_loaded([str(broken)], [safe_load(broken)])[0], None)
    rejected = view_of(app, NORMAL, finding="not_supported", body_part=None, fracture_probability=None,
                       rejection="other_region", cam=None,
                       message="Not an elbow, hand or shoulder radiograph: the body-part model reads it as "
                               "another region.")
    views = [with_finding(app, XRAY, f) for f in ("fractured", "uncertain", "normal")] + [rejected, error]
    assert isinstance(error.prediction, Prediction) and error.prediction.finding == "error"
    inject(app, views)
    for i, v in enumerate(app.views):
        app.worklist.select(f"v{i}")
        settle(app, 0.05)
        f = v.prediction.finding
        assert app.current == i
        assert app.finding_label.cget("text") == pres.finding_text(f)
        assert app.finding_label.cget("text_color") == pres.finding_colour(f)
        assert app.worklist.table.item(f"v{i}", "tags")[0] == f
        assert app.worklist.table.item(f"v{i}", "values")[0] == pres.TABLE_TEXT[f]
        if f in ("not_supported", "error"):
            assert pres.finding_colour(f) == pres.FINDING_STYLE["error"][1], "not analysed is grey, never red"
            assert v.prediction.message in app.detail_text.get("1.0", "end")
    app.worklist.select("v4")
    settle(app)
    texts = [app.viewer.canvas.itemcget(i, "text") for i in app.viewer.canvas.find_withtag("placeholder")]
    assert texts and "broken.jpg" in texts[0] and texts[0].startswith("No picture:")


def test_warning_and_appliance_are_shown(make_app):
    app = make_app()
    v = with_finding(app, XRAY, "fractured")
    v.prediction.warning = "The file ends early; the missing part was filled with grey."
    v.prediction.appliance = "cast or implant"
    inject(app, [v])
    detail = app.detail_text.get("1.0", "end")
    assert "Warning: The file ends early" in detail
    from fracture_detection.app import presentation as pres
    assert pres.appliance_line(v.prediction) in detail and detail.index("Cast or implant in view") < \
        detail.index("Warning:")


def test_corrupt_file_is_a_sentence_not_a_crash(make_app, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(XRAY.read_bytes()[:300])
    app = make_app([bad])
    assert app.finding_label.cget("text") == "Could not be read"
    status = app.status.cget("text")
    assert "broken.jpg" in status and status.endswith(".")


def test_status_counts_what_was_found(make_app, tmp_path):
    from fracture_detection.app import presentation as pres
    for k in range(3):
        (tmp_path / f"bad{k}.jpg").write_bytes(b"not an image at all")
    app = make_app([tmp_path / f"bad{k}.jpg" for k in range(3)])
    assert app.status.cget("text") == "None of the 3 images could be read."
    preds = [SimpleNamespace(finding=f) for f in ("fractured", "normal", "error")]
    assert pres.batch_status(preds) == "3 images: 1 Likely FRACTURE, 1 no fracture found, 1 could not be read."


# --- the image view ------------------------------------------------------------------------

def test_wheel_drag_double_click_and_one_to_one(make_app, tmp_path):
    path, pixels = big_xray(tmp_path)
    app = make_app([path])
    v, c = app.viewer, app.viewer.canvas
    v.apply_preset("As stored")          # 1:1 below compares the drawn pixels with the stored ones
    assert v.fit_mode and v.picture.size == (1500, 1200)
    cw, ch = c.winfo_width(), c.winfo_height()
    assert abs(v.scale - min(cw / 1500, ch / 1200)) < 1e-6
    x, y = 200, 150
    before = ((x - v.ox) / v.scale, (y - v.oy) / v.scale)
    c.event_generate("<Button-4>", x=x, y=y)            # wheel up on X11
    settle(app)
    assert v.scale > 1.2 * min(cw / 1500, ch / 1200) and not v.fit_mode
    after = ((x - v.ox) / v.scale, (y - v.oy) / v.scale)
    assert np.allclose(before, after, atol=0.5), "the point under the pointer stays put"
    c.event_generate("<Button-5>", x=x, y=y)
    settle(app)
    ox, oy = v.ox, v.oy
    c.event_generate("<ButtonPress-1>", x=100, y=100)
    c.event_generate("<B1-Motion>", x=140, y=90)
    c.event_generate("<B1-Motion>", x=160, y=70)
    c.event_generate("<ButtonRelease-1>", x=160, y=70)
    settle(app)
    assert (v.ox - ox, v.oy - oy) == (60, -30), "a drag pans by the pointer's movement"
    double_click(c, 300, 200)
    settle(app)
    assert v.scale == 1.0
    # 1:1 shows the real pixels: the drawn frame is the original, pixel for pixel
    img = np.asarray(v.last_image)
    left, top = v.last_origin
    ix, iy = round(left - v.ox), round(top - v.oy)
    assert np.array_equal(img, pixels[iy:iy + img.shape[0], ix:ix + img.shape[1]])
    shot = screenshot(c)[top:top + 50, left:left + 50, 0].astype(int)
    assert np.abs(shot - pixels[iy:iy + 50, ix:ix + 50]).max() <= 1, "and so is the screen"
    double_click(c, 300, 200)
    settle(app)
    assert v.fit_mode
    assert "Fit" in v.readout


def test_small_film_is_not_upscaled_beyond_fit_and_zoom_shows_pixels(make_app, tmp_path):
    from fracture_detection.app.viewer import Picture
    small = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (100, 120))     # 240 × 200 checkerboard
    pic = Picture.from_array(np.stack([small] * 3, axis=2))
    fit = np.asarray(pic.render((0, 0, 240, 200), (480, 400), smooth=True))
    zoom = np.asarray(pic.render((0, 0, 240, 200), (960, 800), smooth=False))
    assert set(np.unique(zoom)) == {0, 255}, "an explicit 4× zoom shows real pixels, not a blur"
    assert len(np.unique(fit)) > 2, "fit enlarges with a smoothing filter"
    one = np.asarray(pic.render((10, 20, 110, 120), (100, 100)))
    assert np.array_equal(one[..., 0], small[20:120, 10:110])


def test_films_open_in_a_readable_window_and_right_drag_is_gentle(make_app, tmp_path):
    from fracture_detection.app.viewer import AS_STORED
    path, pixels = big_xray(tmp_path)
    flat = tmp_path / "flat.png"
    Image.fromarray((pixels // 6 + 100).astype(np.uint8)).save(flat)      # a washed-out film: 100-142
    app = make_app([flat])
    v, c = app.viewer, app.viewer.canvas
    assert v.preset_menu.get() == "Auto contrast" and v.window == v.picture.auto_window(), \
        "a film opens in its own readable window"
    opened = np.asarray(v.last_image).astype(int)
    assert opened.std() > 3 * (pixels // 6).std(), \
        "the flat film is shown with its contrast stretched"
    level, width = v.window
    c.event_generate("<ButtonPress-3>", x=300, y=300)
    c.event_generate("<B3-Motion>", x=240, y=310)
    c.event_generate("<B3-Motion>", x=180, y=320)         # 120 px to the left, 20 px down
    c.event_generate("<ButtonRelease-3>", x=180, y=320)
    settle(app)
    assert 0.6 < v.window[1] / width < 0.8, f"120 px changes the width by a moderate factor: {v.window}"
    assert level < v.window[0] < level + 0.1 * width
    narrow = np.asarray(v.last_image).astype(int)
    assert narrow.std() > opened.std(), "a narrower window shows more contrast"
    assert v.preset_menu.get() == "Custom" and f"W {v.window[1]:.0f} L {v.window[0]:.0f}" in v.readout
    for k in range(30):                                     # a long, wild drag never gives a black film
        c.event_generate("<ButtonPress-3>", x=400, y=100)
        c.event_generate("<B3-Motion>", x=0, y=500)
        c.event_generate("<ButtonRelease-3>", x=0, y=500)
    settle(app)
    wild = np.asarray(v.last_image.convert("L")).astype(int)
    assert v.window[1] >= 16 and (wild > 60).mean() > 0.01 and (wild < 200).mean() > 0.01
    v.apply_preset("As stored")                             # the stored pixels are a click away
    settle(app)
    assert v.window == AS_STORED and np.asarray(v.last_image).astype(int).std() < opened.std() / 2
    app.viewer.canvas.focus_set()
    c.event_generate("<KeyPress-r>")
    settle(app)
    assert v.window == v.picture.auto_window() and v.fit_mode and v.preset_menu.get() == "Auto contrast"
    assert np.array_equal(np.asarray(v.last_image).astype(int), opened), "reset gives back the opening view"


def test_view_follows_the_window_size(make_app, tmp_path):
    path, _ = big_xray(tmp_path)
    app = make_app([path])
    v = app.viewer
    for size in ("900x640", "1600x1000", "1180x800"):
        app.geometry(size)
        settle(app, 0.4)
        cw, ch = v.canvas.winfo_width(), v.canvas.winfo_height()
        w, h = v.last_image.size
        assert w <= cw and h <= ch and (abs(w - cw) <= 1 or abs(h - ch) <= 1), (size, (w, h), (cw, ch))
        left, top = v.last_origin
        assert left >= 0 and top >= 0, "scaled to fit, not clipped"


def test_layout_stays_put_when_the_detail_changes(make_app, tmp_path):
    """Selecting an image with a long message moves neither the worklist nor its rows."""
    long_name = tmp_path / ("a_very_long_file_name_from_the_scanner_" + "x" * 60 + ".jpg")
    long_name.write_bytes(XRAY.read_bytes()[:300])
    shutil.copy(XRAY, tmp_path / "short.jpg")
    app = make_app([long_name, tmp_path / "short.jpg"])
    t = app.worklist.table
    short, long_iid = iid_of(app, "short.jpg"), iid_of(app, long_name.name)

    def geometry():
        rows = [t.bbox(i) for i in app.worklist.rows()]
        return (t.winfo_rootx(), t.winfo_rooty(), t.winfo_height(), app.viewer.canvas.winfo_rooty(),
                app.viewer.canvas.winfo_height(), rows)

    app.worklist.select(short)
    settle(app)
    before = geometry()
    first = screenshot(app.worklist)
    app.worklist.select(long_iid)
    settle(app)
    assert len(app.detail_text.get("1.0", "end")) > 60
    assert geometry() == before
    app.worklist.select(short)
    settle(app)
    assert geometry() == before
    assert np.abs(screenshot(app.worklist).astype(int) - first.astype(int)).mean() < 1


def test_minimum_size_keeps_everything_on_screen(make_app):
    app = make_app([MURA / "valid" / "XR_SHOULDER"], size="900x640")
    settle(app, 0.3)
    t, v = app.worklist.table, app.viewer
    assert t.winfo_width() > 300 and v.canvas.winfo_width() > 300
    label = app.finding_label
    assert label.winfo_width() >= label._font.measure(label.cget("text")), "the finding is not cut"
    shown = ["#0", *t.cget("displaycolumns")]
    assert "finding" in shown and "prob" in shown
    assert sum(t.column(c, "width") for c in shown) <= t.winfo_width(), "every shown column is on screen"
    # the columns fit their content: every finding and probability cell whole (the body part column gives
    # way to the names at this width; it is in the detail panel, the study row's tooltip and the CSV)
    # (a finding's marks, "close to the cut" or "cast/implant", give way first: its words stay whole)
    from fracture_detection.app import presentation as pres
    for iid in app.worklist.rows():
        font = app.worklist.bold if iid.startswith("s") else app.worklist.font
        whole = app.worklist.full_text(iid, "prob")
        assert t.set(iid, "prob") == whole and font.measure(whole) <= t.column("prob", "width") - 4, iid
        words = app.worklist.full_text(iid, "finding").split(" · ")[0]
        assert words in pres.TABLE_TEXT.values() and t.set(iid, "finding").startswith(words), iid
        assert font.measure(t.set(iid, "finding")) <= t.column("finding", "width") - 4, iid
    assert t.column("#0", "width") >= app.worklist.least["#0"], "the names keep their least width (elided, with a tip)"
    tools = (v.fit_button, v.one_button, v.reset_button, v.preset_menu, v.heat_switch, v.boxes_switch)
    right = max(w.winfo_rootx() + w.winfo_width() for w in tools)
    assert right <= v.winfo_rootx() + v.winfo_width(), "the view's tools are all on screen"
    # a film with a message, a warning, a cast and boxes, with the heatmap on: nothing is cut
    view = with_finding(app, XRAY, "uncertain", appliance="cast or implant",
                        warning="The file ends early; the missing part was filled with grey.")
    view.prediction.message = "The image is small (102 × 128 pixels); the finding is less reliable."
    view.prediction.regions = [{"box": [20, 30, 90, 110], "score": 0.91}]
    inject(app, [view])
    v.toggle_heat()
    settle(app, 0.3)
    m = app.models_label
    assert "fracture_" in m.cget("text") and m.winfo_ismapped()
    assert m.winfo_height() >= m.winfo_reqheight(), "the models' line is whole"
    assert m.winfo_rooty() + m.winfo_height() <= app.detail.winfo_rooty() + app.detail.winfo_height()
    legend = v.legend
    ends = [legend.bbox(i)[2] for i in legend.find_withtag("legend")]
    assert max(ends) <= legend.winfo_width(), "the boxes' legend is whole"
    texts = [legend.itemcget(i, "text") for i in legend.find_withtag("legend") if legend.type(i) == "text"]
    assert "< 0.50" in texts[-1]
    readout = [i for i in v.canvas.find_withtag("readout") if v.canvas.type(i) == "text"]
    if readout:   # over the image: on a dark patch, readable over a white film
        back = v.canvas.find_withtag("readout-back")
        assert back and v.canvas.itemcget(back[0], "fill") == "#000000"
        b, r = v.canvas.bbox(back[0]), v.canvas.bbox(readout[0])
        assert b[0] <= r[0] and b[2] >= r[2] and b[1] <= r[1] and b[3] >= r[3]
        assert v.canvas.find_all().index(back[0]) < v.canvas.find_all().index(readout[0])
    else:
        assert legend.find_withtag("readout")
    # an uncertain film with its rank inside "uncertain" (and a cast in view): the rank's line is whole
    ranked = with_finding(app, XRAY, "uncertain", appliance="cast or implant", amber_share=0.6, amber_n=25,
                          amber_fractured=15, amber_prevalence=0.44, amber_basis="validation")
    ranked.prediction.message = "The fracture probability lies between the model's two cuts; review the image closely."
    inject(app, [ranked])
    settle(app, 0.3)
    detail = app.detail_text
    assert "(15 of 25, against" in detail.get("1.0", "end") and detail.dlineinfo("end-1c") is not None, \
        "the uncertain film's rank is on screen"
    app.geometry("1400x900")
    settle(app, 0.4)
    assert "part" in t.cget("displaycolumns"), "with room, the body part column is shown"
    assert t.set("v0", "finding") == app.worklist.full_text("v0", "finding"), "and every mark whole"


# --- regions and heatmap -----------------------------------------------------------------

def test_regions_are_boxes_coloured_by_score_with_a_legend(make_app):
    from fracture_detection.app.visual import REGION_BINS, region_colour
    app = make_app()
    regions = [{"box": [20, 0, 120, 60], "score": 0.9961}, {"box": [20, 30, 120, 150], "score": 0.91},
               {"box": [150, 40, 200, 90], "score": 0.42}]
    v = with_finding(app, XRAY, "fractured")
    v.prediction.regions = regions
    inject(app, [v])
    c = app.viewer.canvas
    assert app.viewer.image_to_canvas(20, 0)[1] < 12, "the first box starts at the canvas's top edge"
    boxes = c.find_withtag("region-box")
    assert len(boxes) == 3
    for item, r in zip(boxes, regions):
        x0, y0 = app.viewer.image_to_canvas(*r["box"][:2])
        x1, y1 = app.viewer.image_to_canvas(*r["box"][2:])
        assert np.allclose(c.coords(item), [x0, y0, x1, y1], atol=1)
        assert c.itemcget(item, "outline") == region_colour(r["score"])
    labels = c.find_withtag("region-label")
    assert [c.itemcget(i, "text") for i in labels] == ["> 0.99", "0.91", "0.42"]  # never "1.00"
    order = c.find_all()  # stacking order, bottom first: every label above every box's edge
    assert min(order.index(i) for i in labels) > max(order.index(i) for i in c.find_withtag("region-box"))
    assert all(c.bbox(i)[1] >= 0 for i in labels), "a label at the top edge stays on the canvas"
    legend = " ".join(app.viewer.legend.itemcget(i, "text") for i in app.viewer.legend.find_withtag("legend")
                      if app.viewer.legend.type(i) == "text")
    assert "Boxes" in legend and REGION_BINS[0][2] in legend
    app.viewer.canvas.focus_set()
    c.event_generate("<KeyPress-b>")
    settle(app)
    assert not c.find_withtag("region-box") and not app.viewer.boxes_on
    c.event_generate("<KeyPress-b>")
    settle(app)
    assert len(c.find_withtag("region-box")) == 3


CROWDED = [{"box": [20, 20, 70, 80], "score": 0.93}, {"box": [25, 28, 65, 75], "score": 0.88},
           {"box": [22, 24, 60, 70], "score": 0.71}, {"box": [72, 90, 84, 102], "score": 0.55},
           {"box": [86, 92, 98, 104], "score": 0.45}]   # three nested on one place, two side by side


def overlap(a, b):
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def assert_labels_clear(labels, boxes, bounds, line):
    from fracture_detection.app.visual import box_edges
    assert len(labels) == len(boxes)
    for k, a in enumerate(labels):
        assert all(overlap(a, b) == 0 for b in labels[k + 1:]), f"label {k} overlaps another"
        assert all(overlap(a, e) == 0 for b in boxes for e in box_edges(b, line)), f"label {k} is on an outline"
        assert 0 <= a[0] and 0 <= a[1] and a[2] <= bounds[0] and a[3] <= bounds[1], "on the canvas"


def test_a_label_goes_outside_another_box_where_it_can():
    from fracture_detection.app.visual import place_labels
    a, b = (100, 100, 300, 300), (150, 250, 250, 400)     # b's top lies inside a
    rects = place_labels([a, b], [(40, 16)] * 2, (600, 600))
    assert overlap(rects[1], a) == 0, "b's label above its top would sit inside a and read as a's"
    assert rects[0] == (100, 80, 140, 96), "a's label: above its top left corner"


def test_crowded_region_labels_never_overlap_in_the_window_or_the_report(make_app):
    from PIL import ImageFont

    from fracture_detection.app import report
    from fracture_detection.app.visual import draw_regions, place_labels, region_label
    app = make_app()
    v = with_finding(app, XRAY, "fractured")
    v.prediction.regions = CROWDED
    inject(app, [v])
    c = app.viewer.canvas
    backs = [c.coords(i) for i in c.find_withtag("region-label-back")]
    boxes = [c.coords(i) for i in c.find_withtag("region-box")]
    assert_labels_clear(backs, boxes, app.viewer._view_size(), line=2)
    for label, back in zip(c.find_withtag("region-label"), backs):
        t = c.bbox(label)
        assert back[0] <= t[0] + 1 and t[2] <= back[2] + 1 and back[1] <= t[1] + 1 and t[3] <= back[3] + 1
    # the report's picture: the same placement with its font, on a picture of the report's size
    font = ImageFont.truetype(report._fonts().bold, 18)
    img = Image.new("L", (408, 512), 200)
    scaled = [tuple(x * 4 for x in r["box"]) for r in CROWDED]
    drawn = np.asarray(draw_regions(img, CROWDED, 4.0, font))
    extents = [font.getbbox(region_label(r["score"])) for r in CROWDED]
    width = max(2, round(512 / 300))
    rects = place_labels(scaled, [(e[2] - e[0] + 4, e[3] - e[1] + 2) for e in extents], img.size, line=width + 2)
    assert_labels_clear(rects, scaled, img.size, line=width)
    for x0, y0, x1, y1 in rects:   # each label's dark patch is where the layout put it
        assert drawn[round(y0) + 1, round(x0) + 1].max() < 40 and drawn[round(y1) - 1, round(x1) - 1].max() < 40


def test_heatmap_is_on_an_absolute_scale():
    from fracture_detection.app.visual import heat_image, heat_layer, heatmap_overlay
    weak, strong = np.full((20, 20), 0.3), np.full((20, 20), 1.0)
    assert abs(int(np.asarray(heat_image(weak)).max()) - 0.3 * 255) <= 0.5, "0.3 stays 0.3: never rescaled"
    a_weak = np.asarray(heat_layer(heat_image(weak)))[..., 3].mean()
    a_strong = np.asarray(heat_layer(heat_image(strong)))[..., 3].mean()
    assert 0 < a_weak < a_strong
    rgb = np.full((40, 60, 3), 100, np.uint8)
    heat = np.zeros((40, 60))
    heat[10:20, 30:50] = 1.0
    out = np.asarray(heatmap_overlay(rgb, heat)).astype(int)
    assert np.abs(out[:10] - 100).max() == 0, "cold regions stay untouched"
    assert np.abs(out[12:18, 32:48] - 100).mean() > 30
    # the hottest places never hide the bone: at most half opaque, so a film's detail stays visible
    assert np.asarray(heat_layer(heat_image(strong)))[..., 3].max() <= 0.5 * 255
    bone = np.zeros((40, 60, 3), np.uint8)
    bone[:, ::2] = 230                                   # fine bright detail
    under = np.asarray(heatmap_overlay(bone, np.ones((40, 60)))).astype(int).mean(axis=2)
    assert (under[:, ::2] - under[:, 1::2]).mean() > 0.5 * 230, "the detail keeps half its contrast under heat"


def test_space_toggles_the_heatmap_and_its_legend(make_app):
    app = make_app()
    from fracture_detection.io.images import load_image
    # the map is drawn on an absolute scale: cells of a confident model (a tiny one's may all be faint)
    cells = np.linspace(0.5, 1.0, 49, dtype=np.float32).reshape(7, 7)
    inject(app, [with_finding(app, XRAY, "fractured", cam=cells, image_shape=load_image(XRAY).shape[:2])])
    plain = np.asarray(app.viewer.last_image.convert("RGB")).astype(int)
    app.worklist.table.focus_set()
    app.worklist.table.event_generate("<KeyPress-space>")
    settle(app)
    assert app.viewer.heat_on
    assert app.viewer.legend.find_withtag("colourbar"), "the heatmap's colour bar is shown"
    assert np.abs(np.asarray(app.viewer.last_image).astype(int) - plain).mean() > 1
    app.worklist.table.event_generate("<KeyPress-space>")
    settle(app)
    assert not app.viewer.heat_on and not app.viewer.legend.find_withtag("colourbar")


# --- the worklist --------------------------------------------------------------------------

def test_worklist_scrolls_colours_and_orders_by_distance_from_the_fracture_cut(make_app, tmp_path):
    from fracture_detection.app import presentation as pres
    folder = tmp_path / "films"
    folder.mkdir()
    films = sorted(FOLDERS.rglob("*.jpg"))
    for k in range(42):
        shutil.copy(films[k % len(films)], folder / f"{k:02d}_{films[k % len(films)].name}")
    app = make_app()
    app.open_folder(folder)
    pump(app, lambda: finished(app) and len(app.views) == 42)
    settle(app, 0.5)
    t = app.worklist.table
    rows = list(app.worklist.rows())
    assert len(rows) == 42 and all(r.startswith("v") for r in rows), "a flat folder of 42 films is not one study"
    assert t.yview() != (0.0, 1.0) and app.worklist.scroll.winfo_ismapped(), "the list scrolls"
    t.see(rows[-1])
    app.update()
    assert t.bbox(rows[-1]), "the last row can be reached"
    keys = [pres.suspicion_key(app.views[int(r[1:])].prediction) for r in rows]
    assert keys == sorted(keys), "most suspicious first, by finding then by distance above the fracture cut"
    for r in rows:
        assert t.item(r, "tags")[0] == app.views[int(r[1:])].prediction.finding
    assert t.heading("finding", "text").endswith("▼")
    # colour on screen: an unselected row is painted in its finding's tint
    t.yview_moveto(0)
    app.update()
    r = next(r for r in rows if r not in t.selection() and t.bbox(r))
    x, y, w, h = t.bbox(r, "prob")
    tint = pres.FINDING_STYLE[app.views[int(r[1:])].prediction.finding][2]
    pixel = screenshot(t)[y + 2, x + 3]
    assert np.abs(pixel.astype(int) - [int(tint[i:i + 2], 16) for i in (1, 3, 5)]).max() < 8
    # re-sorting shows the arrow and goes back to the top (or to the selected row)
    t.see(rows[-1])
    app.worklist.sort_by("#0")
    app.update()
    names = [app.views[int(i[1:])].path.name.lower() for i in app.worklist.rows()]
    assert names == sorted(names) and t.heading("#0", "text").endswith("▲")
    assert not t.heading("finding", "text").endswith(("▲", "▼"))
    sel = t.selection()[0]
    assert t.bbox(sel), "the selected row is in view after sorting"


def test_raw_probabilities_of_different_models_are_not_ranked_together(make_app):
    app = make_app()
    elbow = with_finding(app, XRAY, "uncertain", part="elbow", threshold=0.95, band=(0.5, 0.95))
    elbow.prediction.fracture_probability = 0.91
    hand = with_finding(app, NORMAL, "fractured", part="hand", threshold=0.68, band=(0.07, 0.68))
    hand.prediction.fracture_probability = 0.90
    inject(app, [elbow, hand])
    order = [app.views[int(i[1:])].prediction.body_part for i in app.worklist.rows() if i.startswith("v")]
    assert order == ["hand", "elbow"], "a fracture at 0.90 ranks above an uncertain 0.91 of another model"
    app.worklist.sort_by("prob")
    order = [app.views[int(i[1:])].prediction.body_part for i in app.worklist.rows() if i.startswith("v")]
    assert order == ["hand", "elbow"], "0.90 is 0.22 above its fracture cut, 0.91 is 0.04 below its own"


def test_mura_studies_are_grouped_with_their_verdict(make_app):
    from fracture_detection.chain import decisions
    from fracture_detection.app import presentation as pres
    app = make_app([MURA / "valid" / "XR_HAND", MURA / "valid" / "XR_ELBOW"])
    t = app.worklist.table
    studies = [i for i in t.get_children() if i.startswith("s")]
    assert len(studies) == 4
    preds = [v.prediction for v in app.views]
    for s in studies:
        children = [int(c[1:]) for c in t.get_children(s)]
        assert len(children) == 2
        study = app.study_of(children[0])
        verdict = decisions.study_verdict(preds[i].finding for i in study.counted(preds))
        assert set(study.counted(preds)) <= set(children) and study.verdict(preds) == verdict
        assert t.item(s, "values")[0] == pres.TABLE_TEXT[verdict]
        assert t.item(s, "tags")[0] == f"study-{verdict}"
        assert app.worklist.full_text(s, "#0").startswith("patient") and " / study1_" in app.worklist.full_text(s, "#0")
        shown, full = t.item(s, "text"), app.worklist.full_text(s, "#0")
        assert shown == full or (shown[:3] == full[:3] and shown[-4:] == full[-4:] and "…" in shown), \
            "a long name is elided in its middle: its start and end kept"
    first = studies[0]
    app.worklist.select(first)
    settle(app)
    verdict = app.study_of(int(t.get_children(first)[0][1:])).verdict(preds)
    assert app.verdict_label.cget("text").startswith(pres.finding_text(verdict))
    assert app.verdict_label.cget("text_color") == pres.finding_colour(verdict)
    note = app.verdict_note.cget("text")
    assert "MURA" not in note and "mean" not in note, "MURA's rule is not a second verdict beside the study's"
    part = app.study_of(int(t.get_children(first)[0][1:])).part(preds)
    assert t.item(first, "values")[1] == (part or "–"), "the study row shows its part"


def test_study_headline_counts_only_views_of_its_part(make_app):
    from fracture_detection.app import presentation as pres
    app = make_app()
    views = [with_finding(app, XRAY, "normal"), with_finding(app, NORMAL, "normal"),
             with_finding(app, XRAY, "fractured", part="elbow")]
    inject(app, views, one_study=True)
    study = next(i for i in app.worklist.rows() if i.startswith("s"))
    app.worklist.select(study)
    settle(app)
    assert app.verdict_label.cget("text").startswith(f"{pres.finding_text('normal')} — 2 views")
    # how many films were opened and which the verdict leaves out: in the headline's size, whole
    note = app.verdict_note.cget("text")
    assert note == f"3 films opened, 1 left out: {XRAY.name} (read as elbow)"
    assert app.note_font.cget("size") == app.verdict_font.cget("size")
    assert app.note_font.measure(note) <= app.verdict_note.winfo_width()
    assert app.worklist.table.item(study, "values")[:2] == (pres.TABLE_TEXT["normal"], "hand")


def test_keyboard_moves_through_the_worklist(make_app):
    app = make_app([MURA / "valid" / "XR_HAND"])
    t = app.worklist.table
    items = list(app.worklist.rows())
    t.focus_set()
    t.focus(items[1])
    t.selection_set(items[1])
    settle(app)
    assert app.current == int(items[1][1:])
    t.event_generate("<Down>")
    settle(app)
    assert t.selection()[0] == items[2] and app.current == int(items[2][1:])
    study = items[0]
    t.focus(study)
    t.event_generate("<Return>")
    settle(app)
    assert not t.item(study, "open"), "Enter folds a study"
    t.event_generate("<Return>")
    settle(app)
    assert t.item(study, "open")
    app.viewer.canvas.focus_set()
    app.viewer.canvas.event_generate("<Down>")
    settle(app)
    assert app.current != int(items[2][1:]) or len(items) == 3


def test_long_names_get_a_tooltip(make_app, tmp_path):
    long_path = tmp_path / ("radiograph_" + "left_wrist_lateral_" * 4 + "final.jpg")
    shutil.copy(XRAY, long_path)
    app = make_app([long_path])
    t = app.worklist.table
    iid = next(i for i in app.worklist.rows() if i.startswith("v"))
    x, y, w, h = t.bbox(iid, "#0")
    t.event_generate("<Motion>", x=x + 40, y=y + h // 2)
    pump(app, lambda: app.worklist.tooltip.window is not None, timeout=5)
    assert str(long_path) in app.worklist.tooltip.text
    t.event_generate("<Leave>")
    app.update()
    assert app.worklist.tooltip.window is None


def test_tooltip_goes_with_the_row_and_when_a_study_is_folded(make_app, tmp_path):
    folder = tmp_path / "patient00001" / "study1"
    folder.mkdir(parents=True)
    names = ["radiograph_" + "left_wrist_lateral_" * 3 + f"{k}.jpg" for k in range(2)]
    for name in names:
        shutil.copy(XRAY, folder / name)
    app = make_app([folder])
    t, tip = app.worklist.table, app.worklist.tooltip
    study = next(i for i in app.worklist.rows() if i.startswith("s"))
    first, second = t.get_children(study)

    def hover(iid):
        x, y, w, h = t.bbox(iid, "#0")
        t.event_generate("<Motion>", x=x + 40, y=y + h // 2)
        pump(app, lambda: tip.window is not None, timeout=5)

    hover(first)
    x, y, w, h = t.bbox(second, "prob")
    t.event_generate("<Motion>", x=x + 5, y=y + h // 2)        # the next row, where nothing is cut
    app.update()
    assert tip.window is None, "the tooltip does not linger over the next row"
    hover(second)
    assert str(folder / app.views[int(second[1:])].path.name) in tip.text
    t.focus(study)
    t.event_generate("<Return>")                                # fold the study
    app.update()
    assert not t.item(study, "open") and tip.window is None, "folding the study takes the tooltip away"
    t.item(study, open=True)
    hover(first)
    t.event_generate("<<TreeviewClose>>")
    app.update()
    assert tip.window is None


def test_file_dialogs_hide_dot_folders_and_ctrl_a_selects_the_suggested_name(make_app, tmp_path):
    from tkinter import filedialog

    from fracture_detection.app import dialogs
    app = make_app([XRAY])
    (tmp_path / ".hidden").mkdir()
    seen = {}

    def look():
        ent = ".__tk_filedialog.contents.f2.ent"
        if not app.tk.call("winfo", "exists", ent):
            app.after(50, look)
            return
        app.tk.call(ent, "icursor", 0)
        app.tk.call(ent, "selection", "clear")
        app.tk.call("event", "generate", ent, "<Control-Key-a>")
        seen["selected"] = app.tk.call(ent, "selection", "present")
        app.tk.call("ttk::entry::Insert", ent, "case32_report.pdf")   # what typing does
        seen["name"] = app.tk.call(ent, "get")
        seen["listed"] = str(app.tk.call("set", "::tk::dialog::file::showHiddenVar"))
        app.tk.call(".__tk_filedialog.contents.f2.cancel", "invoke")

    dialogs.prepare(app)
    app.after(100, look)
    assert filedialog.asksaveasfilename(parent=app, initialfile="study_report.pdf", initialdir=str(tmp_path)) in \
        ("", ())
    assert seen == {"selected": 1, "name": "case32_report.pdf", "listed": "0"}, \
        "Ctrl+A selects the whole name, typing replaces it, and dot-folders are not listed"


# --- reports, export, settings -------------------------------------------------------------

def pdf_text(path):
    from pypdf import PdfReader
    reader = PdfReader(path)
    return reader, [" ".join(page.extract_text().split()) for page in reader.pages]


def test_report_of_the_whole_worklist(make_app, tmp_path):
    from fracture_detection.chain import decisions
    from fracture_detection.app import presentation as pres
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(XRAY, folder / "view1.jpg")
    shutil.copy(NORMAL, folder / "view2.jpg")
    (folder / "broken.jpg").write_bytes(XRAY.read_bytes()[:300])
    app = make_app()
    app.open_folder(folder)
    pump(app, lambda: finished(app) and len(app.views) == 3)
    assert len(app.studies) == 3, "a plain folder is a list of films, not one study"
    app.open_paths(sorted(folder.iterdir()))     # several files opened together: one study
    pump(app, lambda: finished(app) and len(app.views) == 3)
    assert len(app.studies) == 1
    out = tmp_path / "report.pdf"
    app.save_report(out, "worklist", {"Patient or accession": "ACC-20931", "Reader": "Dr Okafor"})
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    reader, pages = pdf_text(out)
    assert len(pages) == 1 + 3, "a summary page, then one page per image"
    summary = pages[0]
    assert "ACC-20931" in summary and "Dr Okafor" in summary and "Reviewed and signed" in summary
    preds = [v.prediction for v in app.views]
    verdict = app.studies[0].verdict(preds)
    assert verdict == decisions.study_verdict(preds[i].finding for i in app.studies[0].counted(preds))
    assert re.search(rf"study( \(\w+\))?: {re.escape(pres.finding_text(verdict))}", summary)
    assert all(f"Page {k} of 4" in text and "ACC-20931" in text for k, text in enumerate(pages, 1))
    assert all(name in summary for name in ("view1.jpg", "view2.jpg", "broken.jpg"))
    assert time.strftime("%Y-%m-%d") in summary and "not a diagnosis" in summary
    for v in app.views:
        p = v.prediction
        page_no = next(k for k, text in enumerate(pages[1:], 1) if f"· {v.path.name}" in text)
        text, page = pages[page_no], reader.pages[page_no]
        assert pres.finding_text(p.finding) in text and time.strftime("%Y-%m-%d") in text
        assert "not a diagnosis" in text
        if p.finding == "error":
            assert "No picture: " in text and not page.images, "an unreadable file gets a line, not a picture"
            continue
        assert page.images, "the X-ray is embedded"
        embedded = page.images[0].image
        assert embedded.size[0] >= 100 and np.asarray(embedded.convert("L")).std() > 10
        if p.fracture_probability is not None:
            prob, low, high = decisions.format_probabilities(p.fracture_probability, *p.uncertain_band)
            assert f"Fracture probability {prob} · Likely FRACTURE from {high} · No fracture below {low}" in text
            assert "fracture_" in text and "Models and their measured figures" in text
            assert "Heatmap scale" in text and len(page.images) == 3, "X-ray, overlay and colour bar"


def test_report_of_the_current_study_shows_regions_and_legend(make_app, tmp_path):
    app = make_app()
    v = with_finding(app, XRAY, "fractured")
    v.prediction.regions = [{"box": [20, 30, 120, 150], "score": 0.91}]
    inject(app, [v, with_finding(app, NORMAL, "normal")], one_study=True)
    out = tmp_path / "study.pdf"
    app.save_report(out, "study")
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    reader, pages = pdf_text(out)
    assert len(pages) == 3
    assert "Study verdict" in pages[0] and "Likely FRACTURE (1 of 2 views)" in pages[0]
    fractured = next(t for t in pages[1:] if "Likely FRACTURE" in t.split("·")[-1][:60] or "Region boxes" in t)
    assert "Region boxes" in fractured and "score ≥ 0.80" in fractured and "most likely: 0.91" in fractured


def test_report_dialog_takes_typed_fields_and_reads_dicom_only_when_asked(make_app, tmp_path, monkeypatch):
    from tkinter import filedialog

    from fracture_detection.app.window import ReportDialog
    from fracture_detection.io.synthetic import write_dicom
    pixels = (np.asarray(Image.open(XRAY).convert("L"), dtype=np.uint16) * 16)
    dcm = write_dicom(tmp_path / "view.dcm", pixels, bits=12)
    app = make_app([dcm, NORMAL])
    out = tmp_path / "dicom.pdf"
    asked = []
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **kw: asked.append(kw) or str(out))
    app.select(next(i for i, v in enumerate(app.views) if v.path == dcm))
    dialog = ReportDialog(app)
    settle(app)
    field = dialog.entries["Patient or accession"]
    assert field.get() == "", "nothing is read from the DICOM header unless the reader asks"
    dialog.from_dicom()
    assert field.get() == "SECRET-123"
    dialog.entries["Reader"].insert(0, "Dr Mensah")
    study = app.study_of(app.current)
    assert len(study.members) == 2 and dialog.suggested_stem("study") == study.file_stem() == tmp_path.name, \
        "the suggested name is the study's (its folder), not its first image's"
    dialog.scope.set("worklist")
    dialog.save()
    assert asked[-1]["initialfile"] == "worklist_report.pdf"
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    reader, pages = pdf_text(out)
    assert "SECRET-123" in pages[0] and "Dr Mensah" in pages[0] and len(pages) == 3


def test_full_resolution_pictures_stay_within_their_budget(make_app, tmp_path, monkeypatch):
    from fracture_detection.app import studies
    folder = tmp_path / "large"
    folder.mkdir()
    paths = [big_xray(folder, (1600, 1300), f"film{k}.png")[0] for k in range(4)]
    monkeypatch.setattr(studies, "FULL_BUDGET", 2 * 1600 * 1300 * 4 // 3 + 1)   # about two films' pyramids
    app = make_app([folder])
    full = [v.picture.has_full for v in app.views]
    assert sum(full) <= 2 and full[app.current], "older films keep only their small levels"
    assert all(max(v.picture.levels[0].size) <= 512 for v, f in zip(app.views, full) if not f)
    dropped = next(i for i, f in enumerate(full) if not f)
    app.select(dropped)
    pump(app, lambda: app.views[dropped].picture.has_full, timeout=30)
    settle(app)
    assert app.viewer.picture.has_full and app.viewer.picture.size == (1600, 1300)
    assert sum(v.picture.has_full for v in app.views) <= 2
    assert len(paths) == len(app.views)


def test_report_that_cannot_be_written_is_a_sentence(make_app, tmp_path):
    app = make_app([XRAY])
    blocker = tmp_path / "file"
    blocker.write_text("")
    app.save_report(blocker / "report.pdf")
    pump(app, lambda: "could not be written" in app.status.cget("text"))
    assert app.status.cget("text").startswith("The report could not be written to report.pdf: ")


def test_export_csv(make_app, tmp_path):
    app = make_app([MURA / "valid" / "XR_HAND"])
    app.export_csv(tmp_path / "out.csv")
    with open(tmp_path / "out.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(app.views) == 4
    assert {"path", "study", "study_verdict", "finding", "fracture_probability", "no_fracture_below",
            "likely_fracture_from", "appliance_probability"} <= set(rows[0])
    from fracture_detection.chain import decisions
    for row in rows:  # the cuts written beside each probability are the ones its finding used
        if row["fracture_probability"]:
            edges = (float(row["no_fracture_below"]), float(row["likely_fracture_from"]))
            assert decisions.fracture_finding(float(row["fracture_probability"]), edges) == row["finding"]


def test_file_dialogs_start_in_the_last_folder(make_app, tmp_path, monkeypatch):
    from tkinter import filedialog

    from fracture_detection.app import settings
    asked = []
    folder = tmp_path / "xrays"
    shutil.copytree(MURA / "valid" / "XR_HAND" / "patient00012", folder)
    monkeypatch.setattr(filedialog, "askdirectory", lambda **kw: asked.append(kw["initialdir"]) or str(folder))
    app = make_app()
    app.ask_folder()
    assert asked == [str(Path.home())], "the first time: the home folder, not the program's"
    pump(app, lambda: finished(app))
    settings.settings_path().unlink()
    film_folder = app.current_view().path.parent
    app.ask_folder()
    assert asked[-1] == str(film_folder), "else the current film's folder"
    app.destroy()
    app2 = make_app()
    app2.ask_folder()
    assert asked[-1] == str(folder), "remembered across runs"
    settings.settings_path().write_text("{ not json")
    assert settings.last_folder() == Path.home(), "a broken settings file is ignored"
    settings.remember_folder(folder)
    assert settings.last_folder() == folder and not list(settings.settings_path().parent.glob(".*tmp"))


# --- responsiveness and the real program -----------------------------------------------------

def test_event_loop_keeps_ticking_while_a_folder_is_analysed(make_app, tmp_path):
    """The largest gap between ticks of an ``after`` timer in the real event loop, while a folder
    (with one large film) is analysed and the view is zoomed and panned, stays under 100 ms.

    A gap counts for as long as the window's own thread was computing in it (its CPU time over the
    gap): a window blocked by its own work computes all along; on a 2-core machine the worker's
    inference, or other jobs, may keep the window's thread waiting for a core or for Python's lock,
    which the process's CPU time over all threads would count as the window's (it did: 107-169 ms
    with the worker busy, on the same code that passed).  Wall-clock, process and thread figures
    are printed."""
    folder = tmp_path / "folder"
    shutil.copytree(FOLDERS, folder)
    big_xray(folder, (3000, 2400), "large.png")
    app = make_app()
    gaps, last = [], [time.perf_counter(), time.process_time(), time.thread_time()]

    def tick():
        now, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        gaps.append((now - last[0], cpu - last[1], own - last[2]))
        last[:] = now, cpu, own
        if finished(app) and len(gaps) > 20:
            app.quit()
        else:
            app.after(10, tick)

    def interact(k=0):
        c = app.viewer.canvas
        c.event_generate("<Button-4>" if k % 4 < 2 else "<Button-5>", x=200, y=200)
        c.event_generate("<ButtonPress-1>", x=200, y=200)
        c.event_generate("<B1-Motion>", x=220 + k % 7, y=210)
        c.event_generate("<ButtonRelease-1>", x=220, y=210)
        if not finished(app):
            app.after(40, interact, k + 1)

    app.open_folder(folder)
    app.after(10, tick)
    app.after(50, interact)
    app.after(120_000, app.quit)
    app.mainloop()
    assert finished(app) and len(app.views) == len(list(FOLDERS.rglob("*.jpg"))) + 1
    wall = max(g for g, _, _ in gaps[1:])
    process = max(min(g, cpu) for g, cpu, _ in gaps[1:])
    busy = max(min(g, own) for g, _, own in gaps[1:])
    print(f"largest gap between event-loop ticks: {wall * 1000:.0f} ms wall-clock, {process * 1000:.0f} ms of "
          f"the process computing, {busy * 1000:.0f} ms of the window's thread, over {len(gaps)} ticks")
    assert busy <= 0.100, f"the event loop was blocked for {busy * 1000:.0f} ms"


def test_gui_script_opens_a_window(display, tiny_weights):
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed (run_tests.sh installs it)")
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


def test_worklist_marks_a_cast_or_implant_without_moving_it(make_app):
    """The appliance is shown in the Finding cell; the order stays finding, then distance above the cut."""
    app = make_app()
    cast = with_finding(app, XRAY, "fractured", appliance="cast or implant", appliance_probability=0.93)
    plain = with_finding(app, NORMAL, "fractured")
    plain.prediction.fracture_probability = 0.85   # both above the 0.8 cut; the film in a cast is further
    inject(app, [plain, cast])
    rows = [i for i in app.worklist.rows() if i.startswith("v")]
    cells = [app.worklist.table.item(i, "values")[0] for i in rows]
    assert cells == ["Likely FRACTURE · cast/implant", "Likely FRACTURE"], "flagged, and first: it lies further above its cut"


# --- the reading room, third pass (issue 28) --------------------------------------------------

THREE = [{"box": [20, 20, 80, 90], "score": 0.91}, {"box": [120, 40, 180, 100], "score": 0.62},
         {"box": [60, 140, 110, 190], "score": 0.45}]


def test_boxes_on_a_film_not_called_fractured_are_quiet_and_top_only_until_asked(make_app):
    app = make_app()
    c, v = app.viewer.canvas, app.viewer
    unsure = with_finding(app, XRAY, "uncertain")
    unsure.prediction.regions = list(THREE)
    inject(app, [unsure])
    boxes = c.find_withtag("region-box")
    assert len(boxes) == 1 and "quiet" in c.gettags(boxes[0]), "the top region only, drawn quietly"
    assert c.itemcget(boxes[0], "dash") and float(c.itemcget(boxes[0], "width")) < 2
    toggle = v.legend.find_withtag("regions-toggle")
    words = v.legend.itemcget(toggle[0], "text") if toggle else ""
    assert "top" in words and "of 3" in words and "A" in words, words   # short or long, as the strip has room
    c.focus_set()
    c.event_generate("<KeyPress-a>")                       # A: every region
    settle(app)
    assert len(c.find_withtag("region-box")) == 3 and v.all_regions
    assert "all 3" in v.legend.itemcget(v.legend.find_withtag("regions-toggle")[0], "text")
    x0, y0, x1, y1 = v.legend.bbox(v.legend.find_withtag("regions-toggle")[0])
    v.legend.event_generate("<Button-1>", x=(x0 + x1) // 2, y=(y0 + y1) // 2)   # a click on the words: back
    settle(app)
    assert len(c.find_withtag("region-box")) == 1
    # a "Likely FRACTURE" film: every region, bold, whatever the toggle
    fractured = with_finding(app, XRAY, "fractured")
    fractured.prediction.regions = list(THREE)
    inject(app, [fractured])
    boxes = c.find_withtag("region-box")
    assert len(boxes) == 3 and all("bold" in c.gettags(b) and not c.itemcget(b, "dash") for b in boxes)
    assert not v.legend.find_withtag("regions-toggle")


def test_the_report_draws_a_quiet_top_region_on_a_film_not_called_fractured(make_app, tmp_path):
    from fracture_detection.app.report import overlay_picture
    app = make_app()
    unsure = with_finding(app, XRAY, "uncertain")
    unsure.prediction.regions = [{"box": [4, 4, 60, 60], "score": 0.91}, {"box": [70, 70, 120, 120], "score": 0.62}]
    img = Image.open(XRAY).convert("L")
    unsure.prediction.cam = np.zeros((7, 7), np.float32)           # no heat: only the boxes differ from the film
    drawn = np.asarray(overlay_picture(img, unsure.prediction).convert("RGB")).astype(int)
    plain = np.asarray(img.convert("RGB")).astype(int)
    changed = np.abs(drawn - plain).sum(axis=2) > 60
    scale = img.width / unsure.prediction.image_shape[1]
    x1, y1 = (round(70 * scale), round(70 * scale))
    assert changed[: round(62 * scale), : round(62 * scale)].any(), "the top region is drawn"
    assert not changed[y1 + 3: round(118 * scale), x1 - 2: x1 + 3].any(), "the second one is not"
    out = tmp_path / "r.pdf"
    inject(app, [unsure])
    app.save_report(out, "study")
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    _, pages = pdf_text(out)
    assert "The top region only, dashed: the film is not called Likely FRACTURE (2 regions marked in all" in pages[1]


def test_close_to_the_cut_is_said_beside_the_finding_in_the_window_the_report_and_the_csv(make_app, tmp_path):
    from fracture_detection.chain import decisions
    app = make_app()
    near = with_finding(app, XRAY, "normal", near_cut="no_fracture_below",
                        cut_ci95={"no_fracture_below": (0.15, 0.45), "fracture_from": (0.7, 0.9)})
    near.prediction.regions = []
    far = with_finding(app, NORMAL, "normal", near_cut=None)
    inject(app, [near, far], one_study=True)
    app.worklist.select("v0")
    settle(app)
    assert app.finding_label.cget("text") == "No fracture found", "the finding stays what the rule says"
    assert app.near_label.cget("text") == decisions.NEAR_CUT_WORDS == "close to the cut: review"
    assert app.near_label.winfo_rootx() >= app.finding_label.winfo_rootx() + app.finding_label.winfo_width()
    assert app.near_label.winfo_rootx() + app.near_label.winfo_width() <= app.detail.winfo_rootx() + \
        app.detail.winfo_width(), "beside the finding, on screen"
    detail = app.detail_text.get("1.0", "end")
    assert "Close to the cut: 0.20 is within the No fracture cut's 95 % interval (0.15–0.45); review." in detail
    assert app.worklist.full_text("v0", "finding") == "No fracture found · close to the cut"
    app.worklist.select("v1")
    settle(app)
    assert app.near_label.cget("text") == "" and "Close to the cut" not in app.detail_text.get("1.0", "end")
    out = tmp_path / "near.pdf"
    app.save_report(out, "study")
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    _, pages = pdf_text(out)
    page = next(t for t in pages[1:] if XRAY.name in t)
    assert "No fracture found close to the cut: review" in page
    assert "close to the cut" in pages[0] and "Notes" in pages[0]
    app.export_csv(tmp_path / "near.csv")
    rows = {Path(r["path"]).name: r for r in csv.DictReader(open(tmp_path / "near.csv"))}
    assert rows[XRAY.name]["near_cut"] == "no_fracture_below" and rows[NORMAL.name]["near_cut"] == ""
    assert rows[XRAY.name]["no_fracture_below_ci95"] == "0.15–0.45"


def test_csv_has_the_regions_and_the_cuts(make_app, tmp_path):
    from fracture_detection.app.actions import CSV_COLUMNS
    app = make_app()
    v = with_finding(app, XRAY, "fractured", cut_ci95={"no_fracture_below": (0.3, 0.5), "fracture_from": (0.7, 0.85)})
    v.prediction.regions = THREE[:2]
    unsure = with_finding(app, NORMAL, "uncertain", amber_share=0.6, amber_n=25, amber_fractured=15,
                          amber_prevalence=0.44, amber_basis="validation")
    inject(app, [v, with_finding(app, NORMAL, "normal"), unsure])
    app.export_csv(tmp_path / "out.csv")
    with open(tmp_path / "out.csv") as fh:
        header = next(csv.reader(fh))
    assert header == CSV_COLUMNS and header[:12] == [
        "path", "study", "study_verdict", "body_part", "body_part_probability", "finding", "fracture_probability",
        "no_fracture_below", "likely_fracture_from", "appliance", "appliance_probability", "message"], \
        "the columns that were there stay where they were"
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    first = rows[0]
    assert first["regions"] == "20 20 80 90 0.91; 120 40 180 100 0.62"
    assert (first["no_fracture_below"], first["likely_fracture_from"]) == ("0.4", "0.8")
    assert (first["no_fracture_below_ci95"], first["likely_fracture_from_ci95"]) == ("0.3–0.5", "0.7–0.85")
    assert rows[2]["regions"] == ""
    assert [(r["finding"], r["amber_share"], r["amber_n"], r["amber_fractured"]) for r in rows] == [
        ("fractured", "", "", ""), ("uncertain", "0.6", "25", "15"), ("normal", "", "", "")], \
        "the rank inside uncertain, on the uncertain row only"


def test_report_summary_marks_a_cast_and_keeps_muras_rule_in_the_notes(make_app, tmp_path):
    app = make_app()
    cast = with_finding(app, XRAY, "uncertain", appliance="cast or implant", appliance_probability=0.9)
    plain = with_finding(app, NORMAL, "uncertain")
    inject(app, [cast, plain], one_study=True)
    out = tmp_path / "cast.pdf"
    app.save_report(out, "study")
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    _, pages = pdf_text(out)
    summary = pages[0]
    row = summary[summary.index(XRAY.name):][:160]
    assert "cast/implant" in row, row
    assert "cast/implant" not in summary[summary.index(NORMAL.name):][:100]
    verdict_at, notes_at = summary.index("Study verdict"), summary.index("Notes")
    mura = summary.index("Mean of the views") if "Mean of the views" in summary else summary.index("mean of the views")
    assert mura > notes_at > verdict_at, "MURA's rule sits in the notes, away from the verdict"
    assert "2 films opened, all counted" in summary
    for page in pages[1:]:
        assert "mean of the views" not in page.lower()


def test_headline_says_how_many_films_were_opened_and_which_left_out_at_900(make_app):
    from fracture_detection.app import presentation as pres
    app = make_app(size="900x640")
    rejected = view_of(app, NORMAL, finding="not_supported", body_part=None, fracture_probability=None,
                       rejection="other_region", cam=None, message="Not a hand radiograph.")
    views = [with_finding(app, XRAY, "uncertain"), with_finding(app, NORMAL, "uncertain"),
             with_finding(app, XRAY, "normal", part="elbow"), rejected]
    inject(app, views, one_study=True)
    settle(app, 0.3)
    assert app.verdict_label.cget("text").startswith(f"{pres.finding_text('uncertain')} — 2 of 2 views")
    note = app.verdict_note.cget("text")
    assert note.startswith("4 films opened, 2 left out: ") and ("read as elbow" in note or "…" in note), note
    assert app.note_font.cget("size") == app.verdict_font.cget("size"), "in the headline's size"
    for label, font in ((app.verdict_label, app.verdict_font), (app.verdict_note, app.note_font)):
        assert font.measure(label.cget("text")) <= app.headline.winfo_width() - 20, "whole on screen"
        assert label.winfo_rootx() + label.winfo_width() <= app.winfo_rootx() + app.winfo_width()


def test_the_app_shows_the_truncation_warning_the_command_line_gives(make_app, tmp_path):
    cut = tmp_path / "cut.jpg"
    data = XRAY.read_bytes()
    cut.write_bytes(data[:-8])                             # a few bytes short: read whole, with a warning
    app = make_app([cut])
    p = app.views[0].prediction
    assert p.warning and "ends early" in p.warning, p.warning
    assert f"Warning: {p.warning}" in app.detail_text.get("1.0", "end")
    assert "warning" in app.worklist.full_text("v0", "finding")


def test_first_window_fits_a_small_screen(tiny_weights, tmp_path):
    """On a 900 × 640 screen the first window fits it whole, right panel included."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for this test", pytrace=False)
    n = next(k for k in range(120, 140) if not Path(f"/tmp/.X{k}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "900x640x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                break
            time.sleep(0.1)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from fracture_detection.app.window import App\n"
                "app = App(sys.argv[2], start_worker=False)\n"
                "for _ in range(20): app.update()\n"
                "s = app.side\n"
                "print(app.winfo_screenwidth(), app.winfo_screenheight(), app.winfo_width(), app.winfo_height(),"
                " s.winfo_rootx() + s.winfo_width(), app.winfo_rooty() + app.winfo_height())\n"
                "app.destroy()\n")
        env = dict(os.environ, DISPLAY=f":{n}", XDG_CONFIG_HOME=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tiny_weights)], capture_output=True,
                             text=True, env=env, timeout=120)
        sw, sh, w, h, panel_right, bottom = map(int, out.stdout.split()[-6:])
        assert (sw, sh) == (900, 640)
        assert w <= 900 and h <= 640 and panel_right <= 900 and bottom <= 640, out.stdout
    finally:
        server.terminate()
        server.wait()


def test_worklist_tip_stays_on_screen_and_a_dragged_column_pushes_none_out(make_app, tmp_path):
    long_path = tmp_path / ("radiograph_" + "left_wrist_lateral_" * 6 + "final.jpg")
    shutil.copy(XRAY, long_path)
    app = make_app([long_path, NORMAL], size="900x640")
    t, tip = app.worklist.table, app.worklist.tooltip
    tip.show("x" * 400, app.winfo_screenwidth() - 5, app.winfo_screenheight() - 5)   # near the corner
    app.update()
    w = tip.window
    assert w.winfo_rootx() >= 0 and w.winfo_rootx() + w.winfo_width() <= app.winfo_screenwidth()
    assert w.winfo_rooty() >= 0 and w.winfo_rooty() + w.winfo_height() <= app.winfo_screenheight()
    tip.hide()
    # the reader widens the finding column by dragging its edge: every column stays within the table
    shown = ["#0", *t.cget("displaycolumns")]
    t.column("finding", width=t.column("finding", "width") + 150)
    x = sum(t.column(c, "width") for c in shown[:shown.index("finding") + 1])
    t.event_generate("<ButtonRelease-1>", x=x - 1, y=5)
    settle(app)
    shown = ["#0", *t.cget("displaycolumns")]
    assert sum(t.column(c, "width") for c in shown) <= t.winfo_width()
    assert "finding" in shown and "prob" in shown and t.column("#0", "width") >= app.worklist.least["#0"]
    assert app.worklist.user_widths.get("finding"), "the reader's width is kept where it fits"


def test_the_view_is_named_beside_the_model_that_read_it_in_the_window_the_report_and_the_csv(make_app, tmp_path):
    """A body-part model of views names what the film shows ("forearm") and routes it by region (the hand
    model); a film whose view is its region's own word says the part alone, as before."""
    app = make_app()
    forearm = with_finding(app, XRAY, "fractured", view="forearm")
    hand = with_finding(app, NORMAL, "normal", view="hand")
    inject(app, [forearm, hand])
    app.worklist.select("v0")
    settle(app)
    assert "Body part: forearm — read by the hand model (97%)" in app.detail_text.get("1.0", "end")
    assert app.worklist.full_text("v0", "part") == "forearm (hand model)"
    assert app.worklist.full_text("v1", "part") == "hand"
    out = tmp_path / "views.pdf"
    app.save_report(out, "worklist")
    pump(app, lambda: "Report saved" in app.status.cget("text"))
    _, pages = pdf_text(out)
    assert "forearm (hand model)" in pages[0]
    page = next(t for t in pages[1:] if XRAY.name in t)
    assert "forearm — read by the hand model" in page
    app.export_csv(tmp_path / "views.csv")
    rows = {Path(r["path"]).name: r for r in csv.DictReader(open(tmp_path / "views.csv"))}
    assert (rows[XRAY.name]["body_part"], rows[XRAY.name]["view"]) == ("hand", "forearm")
    assert rows[NORMAL.name]["view"] == "hand"


def test_the_model_summary_says_whether_its_test_figures_count_radiographs_or_films():
    from fracture_detection.app.visual import model_summary
    untreated = {"n_fractured": 33, "n_normal": 117, "auc": 0.78, "likely_fracture_right": 1.0,
                 "fractured_called": {"normal": 0.03, "uncertain": 0.85, "fractured": 0.12}}
    meta = {"name": "fracture_hand", "backbone": "mobilenetv2", "created": "2026-12-03T00:00",
            "test": {"by_kind": {"untreated": untreated}, "counted": "radiographs"}}
    assert model_summary(meta).endswith("(33 fractured, 117 normal radiographs)")
    del meta["test"]["counted"]   # figures stored before radiographs were counted
    assert model_summary(meta).endswith("(33 fractured, 117 normal films)")
