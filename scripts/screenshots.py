#!/usr/bin/env python3
"""Take the README's screenshots from the running app (needs an X display or Xvfb, and pdftoppm).

    python scripts/screenshots.py [--images DIR] [--weights weights] [--out images]

From FracAtlas test-split images (``--images``: a folder of them; default: the shared data's) it lays out a
small worklist as MURA's patient/study folders, then grabs: one study with its heatmap
(screenshot_result.png), the folder's worklist (screenshot_folder.png), and the first two pages
of the worklist's PDF report (screenshot_report.png).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "fracatlas" / "images"


def pump(app, done, timeout=180):
    end = time.time() + timeout
    while time.time() < end and not done():
        app.update()
        time.sleep(0.03)
    for _ in range(30):
        app.update()
        time.sleep(0.02)


def grab(app, path):
    from PIL import ImageGrab
    x, y = app.winfo_rootx(), app.winfo_rooty()
    img = ImageGrab.grab(bbox=(x, y, x + app.winfo_width(), y + app.winfo_height()), xdisplay=os.environ["DISPLAY"])
    img.save(path, optimize=True)
    print(f"wrote {path}")


TARGET_VIEWS = {"finger", "hand", "wrist", "forearm", "elbow", "shoulder"}


def demo_films(images: Path, weights: Path) -> tuple[list[Path], list[Path], Path]:
    """FracAtlas films of the weights' test split (``split.csv``: the models never trained on them) whose
    view by eye (the shared data's ``views.csv``, surely labelled) is one the app reads, fractured and
    normal, sorted by name, and the first leg film (FracAtlas's own ``leg`` flag) of that split."""
    import csv
    root = images.parent
    with open(weights / "split.csv", newline="") as fh:
        test = {Path(row["path"]).name for row in csv.DictReader(fh) if row["source"] == "fracatlas" and row["split"] == "test"}
    with open(root.parent / "views.csv", newline="") as fh:
        readable = {row["key"] for row in csv.DictReader(fh) if row["source"] == "fracatlas" and row["key"] in test
                    and row["view"] in TARGET_VIEWS and row["confidence"] == "high"}
    with open(root / "dataset.csv", newline="") as fh:
        legs = sorted(row["image_id"] for row in csv.DictReader(fh) if row["leg"] == "1" and row["image_id"] in test)
    fractured = [f for f in sorted((images / "Fractured").glob("*.jpg")) if f.name in readable]
    normal = [f for f in sorted((images / "Non_fractured").glob("*.jpg")) if f.name in readable]
    leg = next(f for name in legs for f in (images / "Fractured" / name, images / "Non_fractured" / name) if f.is_file())
    return fractured, normal, leg


def demo_folder(images: Path, weights: Path, out: Path) -> Path:
    """Five 'studies' of FracAtlas films in MURA's folder layout (a demonstration of the grouping:
    FracAtlas itself has no studies): hand-region, elbow and shoulder films by their view by eye,
    fractured and normal, of the test split, and in the last study a leg film, which the app does not
    analyse."""
    fractured, normal, leg = demo_films(images, weights)
    groups = [fractured[:3], fractured[3:5], normal[:3], normal[3:6], normal[6:8] + [leg]]
    for k, group in enumerate(groups, 1):
        d = out / f"patient{k:05d}" / "study1"
        d.mkdir(parents=True)
        for j, f in enumerate(group, 1):
            shutil.copy(f, d / f"image{j}.jpg")
    return out


def finished(app):
    return app.predictor is not None and app.views and not app.busy and not app.pending


def report_pages(pdf: Path, out: Path):
    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "2", str(pdf), f"{tmp}/page"], check=True)
        pages = [Image.open(p).convert("RGB") for p in sorted(Path(tmp).glob("page*.png"))]
        sheet = Image.new("RGB", (sum(p.width for p in pages) + 10 * (len(pages) + 1), pages[0].height + 20), "#9a9a9a")
        x = 10
        for p in pages:
            sheet.paste(p, (x, 10))
            x += p.width + 10
        sheet.save(out, optimize=True)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=SHARED, help="FracAtlas images/ (Fractured, Non_fractured)")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--out", type=Path, default=ROOT / "images")
    a = ap.parse_args()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":93", "-screen", "0", "1280x860x24"], stderr=subprocess.DEVNULL)
        os.environ["DISPLAY"] = ":93"
        time.sleep(1)
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # leave the user's settings alone
    from fracture_detection.app.window import App
    with tempfile.TemporaryDirectory() as tmp:
        folder = demo_folder(a.images, a.weights, Path(tmp) / "worklist")
        study = sorted((folder / "patient00001" / "study1").iterdir())
        app = App(a.weights, study)
        app.geometry("1180x800+0+0")
        pump(app, lambda: finished(app))
        app.viewer.toggle_heat()
        pump(app, lambda: True, 1)
        grab(app, a.out / "screenshot_result.png")
        app.viewer.toggle_heat()
        app.open_folder(folder)
        pump(app, lambda: finished(app) and len(app.views) == 14)
        grab(app, a.out / "screenshot_folder.png")
        pdf = Path(tmp) / "report.pdf"
        app.save_report(pdf, "worklist", {"Patient or accession": "(typed by the reader)", "Reader": ""})
        pump(app, lambda: "Report saved" in app.status.cget("text"))
        app.destroy()
        report_pages(pdf, a.out / "screenshot_report.png")
    if xvfb:
        xvfb.terminate()


if __name__ == "__main__":
    main()
