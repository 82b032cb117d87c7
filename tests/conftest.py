"""Shared fixtures: tiny real models trained on the committed fixture images."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FOLDERS = FIXTURES / "folders"
MURA = FIXTURES / "MURA-v1.1"
TINY = ["--image-size", "64", "--epochs", "1", "--head-epochs", "0", "--batch-size", "8", "--quiet"]

sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_script(script, *args, check=True, **kw):
    """Run a top-level script in a fresh interpreter, as a user would."""
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=900, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A body-part model and three fracture models, trained for one epoch on the fixtures."""
    out = tmp_path_factory.mktemp("weights")
    run_script("training_parts.py", "--data", FOLDERS, "--out", out, "--synthetic-negatives", "6", *TINY)
    run_script("training_fracture.py", "--data", FOLDERS, "--out", out, *TINY)
    return out


@pytest.fixture
def image_dir(tmp_path):
    """A writable copy of a few fixture images."""
    d = tmp_path / "images"
    d.mkdir()
    for src in sorted(FOLDERS.rglob("*.jpg"))[::4]:
        shutil.copy(src, d / src.name)
    return d


@pytest.fixture(scope="session")
def display():
    """An X display: the current one, or a virtual one (Xvfb) started for the tests.  No display
    and no working Xvfb is a failure that says so, not a skip: the GUI tests must run."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.fail("No X display and Xvfb is not installed, so the GUI tests cannot run: "
                    "install it (apt-get install xvfb) or run ./run_tests.sh, which does.", pytrace=False)
    for n in range(90, 110):
        if not Path(f"/tmp/.X{n}-lock").exists():
            break
    import tempfile
    import time
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not Path(f"/tmp/.X11-unix/X{n}").exists():
        proc.kill()
        proc.wait()
        log.seek(0)
        err = log.read().decode(errors="replace").strip().splitlines()
        pytest.fail(f"Xvfb did not start on display :{n}, so the GUI tests cannot run"
                    + (f" (it said: {err[-1]})." if err else "."), pytrace=False)
    os.environ["DISPLAY"] = f":{n}"
    yield f":{n}"
    proc.terminate()
    del os.environ["DISPLAY"]
