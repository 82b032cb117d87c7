"""The desktop launcher: `GUI.py --install-desktop-entry` (fracture-screen-gui when installed) writes a
freedesktop launcher and the app's icon under $XDG_DATA_HOME without a display, and
--uninstall-desktop-entry removes exactly what it wrote."""
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, run_script
from fracture_detection.app import desktop

MIMES = {"image/jpeg", "image/png", "application/dicom"}


def no_display_env(data_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_DATA_HOME"] = str(data_home)
    return env


def read_entry(path: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str   # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def exec_command(value: str) -> list[str]:
    """The Exec key's command without its %F, read as the spec says: the string escapes first, then
    the arguments, double-quoted ones with their backslash escapes, then %% as %."""
    assert value.endswith(" %F"), value
    escapes = {"\\": "\\", "s": " ", "n": "\n", "r": "\r", "t": "\t"}
    text = re.sub(r"\\([\\snrt])", lambda m: escapes[m[1]], value[:-3])
    args = [re.sub(r"\\(.)", r"\1", m[1]) if m[1] is not None else m[2]
            for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)]
    return [a.replace("%%", "%") for a in args]


def validate(path: Path):
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr   # no error, warning or hint


def test_install_writes_a_valid_launcher_with_icons_and_uninstall_removes_it(tmp_path):
    home = tmp_path / "share"
    other = home / "applications" / "someone-else.desktop"
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=true\n")
    proc = run_script("GUI.py", "--install-desktop-entry", env=no_display_env(home))
    entry_path = home / "applications" / "fracture-screening.desktop"
    assert str(entry_path) in proc.stdout
    entry = read_entry(entry_path)
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert set(filter(None, entry["MimeType"].split(";"))) == MIMES and entry["MimeType"].endswith(";")
    assert "not a diagnosis" in entry["Comment"]
    # Exec runs this checkout's GUI.py with this interpreter, and the files opened (%F)
    assert exec_command(entry["Exec"]) == [sys.executable, str(ROOT / "GUI.py")]
    icons = {p.relative_to(home).as_posix(): p for p in (home / "icons").rglob("*") if p.is_file()}
    assert set(icons) == {"icons/hicolor/scalable/apps/fracture-screening.svg",
                          "icons/hicolor/256x256/apps/fracture-screening.png"}
    assert entry["Icon"] == "fracture-screening"
    with Image.open(icons["icons/hicolor/256x256/apps/fracture-screening.png"]) as png:
        assert png.size == (256, 256) and png.mode == "RGBA"
    assert icons["icons/hicolor/scalable/apps/fracture-screening.svg"].read_text().startswith("<svg")
    validate(entry_path)
    # the launcher's command works as written (no display needed for --version)
    run = subprocess.run([*exec_command(entry["Exec"]), "--version"], capture_output=True, text=True, timeout=120,
                         env=no_display_env(home))
    assert run.returncode == 0 and run.stdout.startswith("fracture-screening "), run.stderr

    proc = run_script("GUI.py", "--uninstall-desktop-entry", env=no_display_env(home))
    assert not entry_path.exists() and not any(p.is_file() for p in (home / "icons").rglob("*"))
    assert other.is_file(), "someone else's launcher is left alone"
    assert "Removed" in proc.stdout
    again = run_script("GUI.py", "--uninstall-desktop-entry", env=no_display_env(home))
    assert "No launcher was installed." in again.stdout


def test_exec_quotes_paths_the_spec_way(tmp_path):
    """A path with a space, a dollar, a percent sign and a backslash survives the Exec key's quoting,
    and desktop-file-validate accepts the result."""
    odd = ["/opt/my apps/py$thon", "/x/100% sure\\GUI.py"]
    line = desktop.exec_line(odd)
    assert line == '"/opt/my apps/py\\\\$thon" "/x/100%% sure\\\\\\\\GUI.py" %F'
    assert exec_command(line) == odd
    written = desktop.install(odd, home=tmp_path)
    assert desktop.desktop_file(tmp_path) in written and all(p.is_file() for p in written)
    validate(desktop.desktop_file(tmp_path))
    assert set(desktop.uninstall(home=tmp_path)) == set(written)


def test_data_home_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert desktop.desktop_file() == tmp_path / "applications" / "fracture-screening.desktop"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")   # the spec: ignored unless absolute
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert desktop.desktop_file() == tmp_path / "home" / ".local" / "share" / "applications" / "fracture-screening.desktop"
