"""The desktop launcher (freedesktop.org, Linux desktops): a ``.desktop`` file and the app's icon
under ``$XDG_DATA_HOME`` (default ``~/.local/share``), so that the app is in the desktop's menu and
"Open with" offers it for JPEG, PNG and DICOM files.  Needs no display; every file is written whole
(io.files).  macOS and Windows have their own equivalents (README, "Install").
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..io.files import atomic_write_bytes, atomic_write_text

APP_ID = "fracture-screening"
MIME_TYPES = ("image/jpeg", "image/png", "application/dicom")
ICON_DIR = Path(__file__).resolve().parent / "icons"
ICONS = {"scalable": f"{APP_ID}.svg", "256x256": f"{APP_ID}.png"}   # hicolor size folder -> file
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")   # characters that need quoting in Exec (the spec's list)


def data_home() -> Path:
    """``$XDG_DATA_HOME`` when it is an absolute path, else ``~/.local/share`` (the spec's rule)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def desktop_file(home: Path | None = None) -> Path:
    return (home or data_home()) / "applications" / f"{APP_ID}.desktop"


def icon_files(home: Path | None = None) -> list[Path]:
    base = (home or data_home()) / "icons" / "hicolor"
    return [base / size / "apps" / name for size, name in ICONS.items()]


def launch_command() -> list[str]:
    """How this process was started, as a command that opens the app: the standalone executable,
    the installed ``fracture-screen-gui``, ``python -m fracture_detection`` or ``python GUI.py``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.argv[0]).absolute() if sys.argv and sys.argv[0] not in ("", "-c") else None
    if script is None or script.name == "__main__.py":
        return [sys.executable, "-m", "fracture_detection"]
    if script.suffix == ".py":
        return [sys.executable, str(script)]
    return [str(script)]


def exec_line(command: list[str]) -> str:
    """``command`` followed by ``%F`` (the files to open) as the spec's Exec key: arguments with
    reserved characters double-quoted with ``"`` ``\\`` ``$`` and backquote escaped, ``%`` doubled,
    then the string rule's backslash escape."""
    def quote(arg: str) -> str:
        if not arg or _RESERVED & set(arg):
            arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
        return arg.replace("%", "%%").replace("\\", "\\\\")
    return " ".join(quote(a) for a in command) + " %F"


def entry_text(command: list[str]) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.1",
        "Name=Fracture Screening",
        "GenericName=X-ray Fracture Screening",
        "Comment=Flags likely fractures on elbow, hand and shoulder X-rays (decision support, not a diagnosis)",
        f"Exec={exec_line(command)}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "StartupNotify=true",
        "Categories=Science;MedicalSoftware;",
        "MimeType=" + "".join(f"{m};" for m in MIME_TYPES),
        "Keywords=X-ray;radiograph;fracture;DICOM;elbow;hand;shoulder;",
        "",
    ])


def install(command: list[str], home: Path | None = None) -> list[Path]:
    """Write the launcher and its icons; returns what was written.  Installing again replaces them."""
    written = []
    for target in icon_files(home):
        atomic_write_bytes(target, (ICON_DIR / target.name).read_bytes())
        written.append(target)
    entry = desktop_file(home)
    atomic_write_text(entry, entry_text(command))
    written.append(entry)
    _refresh(entry.parent)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove the launcher and its icons; returns what was removed (nothing when none was there)."""
    removed = []
    for target in [desktop_file(home), *icon_files(home)]:
        if target.is_file():
            target.unlink()
            removed.append(target)
    if removed:
        _refresh(desktop_file(home).parent)
    return removed


def _refresh(applications: Path) -> None:
    """Update the desktop's cache of which launcher opens which MIME type, where the tool exists
    (desktops also rescan by themselves; a failure here changes nothing that was written)."""
    tool = shutil.which("update-desktop-database")
    if tool and applications.is_dir():
        try:
            subprocess.run([tool, "-q", str(applications)], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
