"""Test-time mirroring decided again for a saved model (training_fracture.py --cuts-only
--test-time-mirroring): the decision follows the radiographs' AUC with and without the mirror image, and
the LiteRT file the app runs follows the decision."""
import json
import shutil

import numpy as np
import pytest

from conftest import FOLDERS, run_script

pytestmark = pytest.mark.slow  # trains the tiny models and exports LiteRT files


def _copy(tiny_weights, tmp_path):
    out = tmp_path / "weights"
    shutil.copytree(tiny_weights, out)
    return out


def _pixels(meta):
    from fracture_detection.io.images import load_image, to_model_input
    films = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[:2] + sorted((FOLDERS / "Hand" / "normal").glob("*.jpg"))[:1]
    return np.stack([to_model_input(load_image(f), meta["image_size"]) for f in films]).astype(np.float32)


def test_cuts_only_decides_mirroring_by_the_validation_auc_and_keeps_the_model(tiny_weights, tmp_path):
    weights = _copy(tiny_weights, tmp_path)
    before = json.loads((weights / "fracture_hand.json").read_text())
    keras_bytes = (weights / "fracture_hand.keras").read_bytes()
    run_script("training_fracture.py", "--data", FOLDERS, "--out", weights, "--parts", "hand", "--cuts-only",
               "--test-time-mirroring", "auto", "--quiet")
    meta = json.loads((weights / "fracture_hand.json").read_text())
    v = meta["validation"]
    assert meta["localisation"]["test_time_mirroring"] == (v["auc_with_mirroring"] > v["auc_without_mirroring"])
    assert (weights / "fracture_hand.keras").read_bytes() == keras_bytes  # the model itself is unchanged
    assert meta["cuts"]["no_fracture_below"] <= meta["cuts"]["fracture_from"]
    assert not before["localisation"].get("test_time_mirroring")
    # "off" always gives the plain model back, whatever "auto" chose
    run_script("training_fracture.py", "--data", FOLDERS, "--out", weights, "--parts", "hand", "--cuts-only",
               "--test-time-mirroring", "off", "--quiet")
    assert json.loads((weights / "fracture_hand.json").read_text())["localisation"]["test_time_mirroring"] is False


def test_a_changed_mirroring_exports_a_litert_file_that_scores_the_mean_of_image_and_mirror(tiny_weights, tmp_path):
    from fracture_detection.models import artifacts
    from fracture_detection.models.runtime import load
    from fracture_detection.training.fracture import _export_again
    weights = _copy(tiny_weights, tmp_path)
    info = artifacts.fracture_models(weights)["hand"]
    x = _pixels(info.meta)
    plain, flipped = load(info, "litert")(x), load(info, "litert")(np.ascontiguousarray(x[:, :, ::-1]))
    meta = dict(info.meta, localisation=dict(info.meta["localisation"], test_time_mirroring=True))
    _export_again(info, meta)
    (weights / "fracture_hand.json").write_text(json.dumps(meta))
    got = load(artifacts.fracture_models(weights)["hand"], "litert")(x)
    assert np.allclose(got[0], (plain[0] + flipped[0]) / 2, atol=1e-5)                 # probability
    assert np.allclose(got[1], (plain[1] + flipped[1][:, :, ::-1]) / 2, atol=1e-5)     # map, mirror's mirrored back
    assert meta["litert"]["max_difference_to_keras"] <= 1e-4
