"""The desktop app without models, and without a display: one clear sentence, nothing crashes.

Kept apart from test_gui.py: Tk allows one root window per process at a time.
"""
import os
import subprocess
import sys

from conftest import ROOT
from test_gui import XRAY, pump


def test_missing_weights_is_one_sentence(display, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    from fracture_detection.app.window import App
    a = App(tmp_path / "nothing", [XRAY])
    try:
        pump(a, lambda: "No body-part model" in a.status.cget("text"), timeout=60)
        a.ask_save_report()
        assert a.status.cget("text") == "Open an X-ray first; there is nothing to report yet."
    finally:
        a.destroy()


def test_no_xvfb_is_a_failure_that_says_so(tmp_path):
    """Without a display and without Xvfb the GUI tests fail with a sentence; they are not skipped."""
    test = tmp_path / "test_needs_display.py"
    test.write_text("def test_x(display):\n    pass\n")
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PATH"] = str(empty_path)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                           "--rootdir", str(tmp_path), "-c", os.devnull, str(test)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT / "tests")
    assert proc.returncode == 1, proc.stdout
    assert "Xvfb is not installed, so the GUI tests cannot run" in proc.stdout
