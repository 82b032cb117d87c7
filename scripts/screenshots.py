#!/usr/bin/env python3
"""Take the README's screenshots from the running app (needs an X display or Xvfb).

    python scripts/screenshots.py IMAGE FOLDER [--weights weights] [--out images]
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pump(app, done, timeout=180):
    end = time.time() + timeout
    while time.time() < end and not done():
        app.update()
        time.sleep(0.03)
    for _ in range(20):
        app.update()
        time.sleep(0.02)


def grab(app, path):
    from PIL import ImageGrab
    x, y = app.winfo_rootx(), app.winfo_rooty()
    img = ImageGrab.grab(bbox=(x, y, x + app.winfo_width(), y + app.winfo_height()), xdisplay=os.environ["DISPLAY"])
    img.save(path, optimize=True)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image", type=Path)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--out", type=Path, default=ROOT / "images")
    a = ap.parse_args()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":93", "-screen", "0", "1280x860x24"], stderr=subprocess.DEVNULL)
        os.environ["DISPLAY"] = ":93"
        time.sleep(1)
    from fracture_detection.gui import App
    app = App(a.weights, [a.image])
    app.geometry("1180x800+0+0")
    pump(app, lambda: app.views and not app.busy)
    app.heatmap_switch.select()
    app._show_current()
    pump(app, lambda: True, 1)
    grab(app, a.out / "screenshot_result.png")
    app.heatmap_switch.deselect()
    app.open_folder(a.folder)
    pump(app, lambda: app.views and not app.busy and not app.pending)
    grab(app, a.out / "screenshot_folder.png")
    app.destroy()
    if xvfb:
        xvfb.terminate()


if __name__ == "__main__":
    main()
