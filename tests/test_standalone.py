"""The standalone app (scripts/build_app.sh), built from a clean clone of the committed tree: its
executable analyses a fixture film with --json without a display, exactly as predictions.py does, opens
its window on a film without a traceback, and installs a launcher that starts it.

Slow: the build downloads PyInstaller and the app's runtime packages into its own environment and
took 171 s from a fresh clone on the 2-core development machine (81 s with the environment kept).
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import FOLDERS, ROOT, run_script
from test_desktop import exec_command, no_display_env, read_entry, validate

pytestmark = pytest.mark.slow
FILM = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the standalone app is built from a clean clone of the committed tree")
    clone = tmp_path_factory.mktemp("standalone") / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    build = subprocess.run([str(clone / "scripts" / "build_app.sh")], cwd=clone, capture_output=True, text=True,
                           timeout=1800)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    app = clone / "dist" / "fracture-screening" / "fracture-screening"
    assert app.is_file() and os.access(app, os.X_OK)
    assert not (clone / "dist" / "fracture-screening" / "_internal" / "tensorflow").exists()
    return app


def test_json_without_a_display_is_what_predictions_py_prints(standalone, tmp_path):
    proc = subprocess.run([str(standalone), str(FILM), "--json"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=no_display_env(tmp_path / "share"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["finding"] in ("fractured", "uncertain", "normal")
    assert proc.stdout == run_script("predictions.py", FILM, "--json").stdout


def test_the_window_opens_and_shows_the_film_without_a_traceback(standalone, display, tmp_path):
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, FRACTURE_APP_TIMING="1", XDG_CONFIG_HOME=str(tmp_path / "config"))
    with open(log, "w") as err:
        proc = subprocess.Popen([str(standalone), str(FILM)], stderr=err, stdout=subprocess.DEVNULL, env=env)
        try:
            end = time.time() + 120
            while "milestone first_result" not in log.read_text() and time.time() < end and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(3)   # the picture and the heatmap are drawn after the first result
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "milestone first_result" in text and "Traceback" not in text, text


def test_the_launcher_starts_the_standalone_app(standalone, tmp_path):
    home = tmp_path / "share"
    proc = subprocess.run([str(standalone), "--install-desktop-entry"], capture_output=True, text=True,
                          timeout=120, env=no_display_env(home))
    assert proc.returncode == 0, proc.stderr
    entry = home / "applications" / "fracture-screening.desktop"
    assert exec_command(read_entry(entry)["Exec"]) == [str(standalone)]
    validate(entry)
    subprocess.run([str(standalone), "--uninstall-desktop-entry"], check=True, timeout=120, env=no_display_env(home))
    assert not entry.exists()
