"""The desktop app without models: one clear sentence in the window, nothing crashes.

Kept apart from test_gui.py: Tk allows one root window per process at a time.
"""
from test_gui import XRAY, pump


def test_missing_weights_is_one_sentence(display, tmp_path):
    from fracture_detection.gui import App
    a = App(tmp_path / "nothing", [XRAY])
    try:
        pump(a, lambda: "No body-part model" in a.status.cget("text"), timeout=60)
        a.ask_save_report()
        assert a.status.cget("text") == "Open an X-ray first; there is nothing to report yet."
    finally:
        a.destroy()
