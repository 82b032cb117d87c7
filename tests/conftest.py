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


def stretch_to_uint8(values):
    """The reader's documented scaling of a high-bit image, per pixel: the 0.5-99.5 % window of the
    values mapped linearly to 0-255."""
    import numpy as np
    values = np.asarray(values, dtype="float64")
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        lo, hi = values.min(), values.max()
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip((values - lo) / (hi - lo) * 255.0, 0, 255).round().astype(np.uint8)


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
    """An X display: the current one, or a virtual one (Xvfb) started for the tests."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no X display and no Xvfb (run_tests.sh installs it)")
    for n in range(90, 110):
        if not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DISPLAY"] = f":{n}"
    import time
    for _ in range(50):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            break
        time.sleep(0.1)
    yield f":{n}"
    proc.terminate()
    del os.environ["DISPLAY"]
