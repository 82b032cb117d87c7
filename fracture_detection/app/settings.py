"""The app's few remembered settings (the last folder used), in the user's config folder.

``$XDG_CONFIG_HOME/fracture-screening/settings.json`` (``~/.config/...`` by default), written
atomically; a missing or broken file reads as no settings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

APP_DIR = "fracture-screening"


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_DIR / "settings.json"


def load() -> dict:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(**values) -> None:
    """Merge ``values`` into the settings file; a failure to write is not the user's problem."""
    from ..io.files import atomic_write_json
    data = load()
    data.update(values)
    try:
        atomic_write_json(settings_path(), data)
    except OSError:
        pass


def last_folder(fallback=None) -> Path:
    """The folder a file dialog should open in: the last one used, else ``fallback`` (e.g. the
    current film's folder) where it exists, else the home folder."""
    folder = load().get("last_folder")
    if isinstance(folder, str) and Path(folder).is_dir():
        return Path(folder)
    if fallback is not None and Path(fallback).is_dir():
        return Path(fallback)
    return Path.home()


def remember_folder(path) -> None:
    path = Path(path)
    save(last_folder=str(path if path.is_dir() else path.parent))
