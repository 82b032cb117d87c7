"""The desktop app without models, and without a display: one clear sentence, nothing crashes.

Kept apart from test_gui.py: Tk allows one root window per process at a time.
"""
import os
import subprocess
import sys

import pytest

from conftest import BUNDLED, ROOT
from test_gui import XRAY, pump


def test_missing_weights_is_one_sentence(display, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    from fracture_detection.app.window import App
    a = App(tmp_path / "nothing", [XRAY])
    try:
        pump(a, lambda: "No body-part model" in a.status.cget("text"), timeout=60)
        # the first-run check: a dialog says it, with what to do, not only the status line
        pump(a, lambda: a.notice is not None and a.notice.winfo_exists(), timeout=10)
        assert a.notice.title() == "The models could not be loaded"
        assert a.notice.text.startswith(a.status.cget("text").rstrip("…")[:40]) and "--weights" in a.notice.text
        assert "Traceback" not in a.notice.text
        a.notice.ok.invoke()
        pump(a, lambda: not a.notice.winfo_exists(), timeout=10)
        a.ask_save_report()
        assert a.status.cget("text") == "Open an X-ray first; there is nothing to report yet."
    finally:
        a.destroy()


@pytest.mark.slow
def test_unreadable_files_are_named_in_a_dialog(display, tmp_path, monkeypatch):
    """Files that cannot be read: one dialog naming them with the reason, beside the films that could."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    broken, text = tmp_path / "broken.jpg", tmp_path / "notes.png"
    broken.write_bytes(XRAY.read_bytes()[:300])
    text.write_bytes(b"not an image at all")
    from fracture_detection.app.window import App
    a = App(BUNDLED, [XRAY, broken, text])
    try:
        pump(a, lambda: a.notice is not None and a.notice.winfo_exists(), timeout=120)
        assert a.notice.title() == "Some files could not be read"
        body = a.notice.text
        assert body.startswith("2 of the 3 files opened could not be read:")
        assert "broken.jpg: " in body and "notes.png: " in body and XRAY.name not in body
        assert all(line.endswith(".") for line in body.splitlines()[2:]) and "Traceback" not in body
        assert len(a.views) == 3 and a.views[0].prediction.finding != "error"
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
