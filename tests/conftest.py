"""Shared fixtures: tiny real models trained on the committed fixture images, and the JSON contract
every prediction keeps.

Tests that need the tiny models (or train, or import TensorFlow) are marked ``slow``:
``./run_tests.sh --fast`` leaves them out and runs every decision and contract test in under a minute.
"""
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
BUNDLED = ROOT / "weights"
# one epoch, pinned backbone and ImageNet weights (installed by setup.sh, nothing downloaded)
TRAIN = ["--epochs", "1", "--head-epochs", "0", "--batch-size", "8", "--quiet", "--backbone", "mobilenetv2",
         "--pretrained", "offline"]
TINY = ["--image-size", "64", *TRAIN]
PARTS = ["elbow", "hand", "shoulder"]
BODY_SIZE, FRACTURE_SIZE = 64, 96  # different, so that each model must get its own input size

sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SLOW_FIXTURES = {"tiny_weights"}


def pytest_collection_modifyitems(config, items):
    """Every test that uses the tiny trained models is slow (they train for minutes, once per run)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def run_script(script, *args, check=True, **kw):
    """Run a top-level script in a fresh interpreter, as a user would."""
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True, text=True,
                          timeout=900, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A body-part model (64 px) and three fracture models (96 px), trained for one epoch on the
    fixtures, once per test run."""
    out = tmp_path_factory.mktemp("weights")
    run_script("training_parts.py", "--data", FOLDERS, "--out", out, "--synthetic-negatives", "6",
               "--image-size", BODY_SIZE, "--parts", *PARTS, *TRAIN)
    run_script("training_fracture.py", "--data", FOLDERS, "--out", out, "--image-size", FRACTURE_SIZE,
               "--parts", *PARTS, *TRAIN)
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


# --- what every prediction promises (README, predictions.py --json) ------------------------

DOCUMENTED_KEYS = {"path", "body_part", "view", "body_part_probability", "fracture_probability", "finding", "message",
                   "threshold", "uncertain_band", "part_probabilities", "model", "rejection", "regions",
                   "appliance", "appliance_probability", "warning", "near_cut", "amber_share", "amber_n",
                   "amber_fractured", "amber_prevalence", "amber_basis"}
ANALYSED = ("fractured", "normal", "uncertain")


def check_prediction(obj: dict, image_shape=None, parts=PARTS) -> None:
    """Assert the contract of one prediction (a ``Prediction.to_json()`` or a ``--json`` line):
    the finding follows from the reported probability and the model's two cuts; the body part is null
    exactly when nothing was analysed; every probability is in [0, 1]; regions lie inside the
    image (``(height, width)``) and exist only for an analysed, not-normal image."""
    from fracture_detection.chain.decisions import FINDINGS
    assert DOCUMENTED_KEYS <= set(obj), DOCUMENTED_KEYS - set(obj)
    finding, p = obj["finding"], obj["fracture_probability"]
    assert finding in FINDINGS, obj
    probabilities = [obj["body_part_probability"], p, obj["threshold"], obj["appliance_probability"],
                     *(obj["uncertain_band"] or []), *obj["part_probabilities"].values(),
                     *(r["score"] for r in obj["regions"])]
    assert all(0.0 <= v <= 1.0 for v in probabilities if v is not None), obj
    message = obj["message"]
    assert message is None or (message.endswith(".") and "\n" not in message), obj
    if finding in ANALYSED:
        low, high = obj["uncertain_band"]
        assert obj["body_part"] in parts and obj["model"] and obj["rejection"] is None, obj
        # the view a reader names is one of the region's (the part itself for a model made before views)
        assert obj["view"] in obj["part_probabilities"] and region_of(obj["view"]) == obj["body_part"], obj
        parts_sum = sum(v for k, v in obj["part_probabilities"].items() if region_of(k) in parts)
        region_p = sum(v for k, v in obj["part_probabilities"].items() if region_of(k) == obj["body_part"])
        # the region's confidence: its views' share of the target regions' probability (as printed, 4 decimals)
        assert obj["body_part_probability"] == pytest.approx(region_p / parts_sum, abs=4e-4), obj
        assert low <= high, obj
        expected = "fractured" if p >= high else "normal" if p < low else "uncertain"
        assert finding == expected, f"{finding} for p={p}, cuts [{low}, {high}]: {obj}"
        assert finding != "uncertain" or message, obj
    else:
        assert obj["body_part"] is None and obj["view"] is None and obj["body_part_probability"] is None, obj
        assert p is None and obj["threshold"] is None and obj["uncertain_band"] is None, obj
        assert message, obj
        if finding == "not_supported":
            from fracture_detection.chain import decisions
            assert obj["rejection"] in (decisions.REJECT_OTHER, decisions.REJECT_DOUBT,
                                        decisions.REJECT_UNFAMILIAR, decisions.REJECT_COLOUR), obj
        else:
            assert obj["rejection"] is None and obj["part_probabilities"] == {}, obj
    if obj["part_probabilities"]:
        assert abs(sum(obj["part_probabilities"].values()) - 1.0) < 2e-3, obj
    if finding in ("normal", "not_supported", "error"):
        assert obj["regions"] == [], obj
    scores = [r["score"] for r in obj["regions"]]
    assert scores == sorted(scores, reverse=True), "regions: most likely first"
    for r in obj["regions"]:
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 < x1 and 0 <= y0 < y1, r
        if image_shape is not None:
            assert x1 <= image_shape[1] and y1 <= image_shape[0], (r, image_shape)
    if obj["appliance"] is not None:
        assert obj["appliance"] == "cast or implant" and obj["appliance_probability"] is not None, obj
    assert obj["warning"] is None or isinstance(obj["warning"], str)
    # "close to the cut" only beside a finding a cut decided, and only that cut
    assert obj["near_cut"] in (None, {"fractured": "fracture_from", "normal": "no_fracture_below"}.get(finding)), obj
    amber = [obj[k] for k in ("amber_share", "amber_n", "amber_fractured", "amber_prevalence", "amber_basis")]
    if finding != "uncertain" or obj["amber_share"] is None:  # the rank inside amber: only for uncertain
        assert amber == [None] * 5, obj
    else:
        assert 0 <= obj["amber_fractured"] <= obj["amber_n"] and 0 <= obj["amber_prevalence"] <= 1, obj
        assert obj["amber_share"] == pytest.approx(obj["amber_fractured"] / obj["amber_n"], abs=1e-4), obj
        from fracture_detection.chain.amber import BASES as AMBER_BASES  # "site" after --recalibrate
        assert obj["amber_basis"] in AMBER_BASES, obj


def region_of(name: str) -> str:
    """The region a body-part class is routed to (the data's view-to-region table; a part is its own)."""
    from fracture_detection.io.data import VIEW_REGIONS
    return VIEW_REGIONS.get(name, name)


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
