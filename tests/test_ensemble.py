"""A part's fracture model as the mean of trained ones (training_fracture.py --ensemble-of): one model
with one model's outputs, its cuts chosen on the part's whole region."""
import json
import shutil

import numpy as np
import pytest

from conftest import FOLDERS, check_prediction, run_script

pytestmark = pytest.mark.slow  # trains the tiny models and exports LiteRT files


@pytest.fixture(scope="module")
def ensemble_weights(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble")
    shutil.copy(tiny_weights / "split.csv", out)
    for name in ("body_part.json", "body_part.tflite", "body_part.keras"):
        if (tiny_weights / name).is_file():
            shutil.copy(tiny_weights / name, out)
    run_script("training_fracture.py", "--data", FOLDERS, "--out", out, "--parts", "hand", "--quiet",
               "--ensemble-of", f"{tiny_weights}:hand", f"{tiny_weights}:elbow")
    return out


def _outputs(folder, part, pixels):
    from fracture_detection.models import artifacts
    from fracture_detection.models.runtime import load
    return load(artifacts.fracture_models(folder)[part], "litert")(pixels)


def test_the_ensemble_scores_the_mean_of_its_members_and_keeps_the_first_ones_detector(tiny_weights,
                                                                                          ensemble_weights):
    from fracture_detection.io.images import load_image, to_model_input
    films = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[:2] + sorted((FOLDERS / "Hand" / "normal").glob("*.jpg"))[:1]
    meta = json.loads((ensemble_weights / "fracture_hand.json").read_text())
    x = np.stack([to_model_input(load_image(f), meta["image_size"]) for f in films]).astype(np.float32)
    ens = _outputs(ensemble_weights, "hand", x)
    a, b = _outputs(tiny_weights, "hand", x), _outputs(tiny_weights, "elbow", x)
    assert np.allclose(ens[0], (a[0] + b[0]) / 2, atol=1e-4)          # probability
    assert np.allclose(ens[1], (a[1] + b[1]) / 2, atol=1e-4)          # cell probabilities (the map)
    assert len(ens) == len(a)
    if len(a) == 3:                                                    # the cast/implant detector: the first member's
        assert np.allclose(ens[2], a[2], atol=1e-5)
    assert [m["part"] for m in meta["ensemble"]["members"]] == ["hand", "elbow"]


def test_the_ensemble_cuts_are_chosen_on_its_region_and_the_chain_reads_it(ensemble_weights):
    meta = json.loads((ensemble_weights / "fracture_hand.json").read_text())
    cuts = meta["cuts"]
    assert "hand region" in cuts["chosen_on"] and cuts["counted"] == "radiographs"
    assert 0 <= cuts["no_fracture_below"] <= cuts["fracture_from"] <= 1.0001
    assert "test" not in meta  # measured again by predictions_test.py, not carried from a member
    proc = run_script("predictions.py", "--weights", ensemble_weights, "--json",
                      sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[0])
    obj = json.loads(proc.stdout)
    obj = obj[0] if isinstance(obj, list) else obj
    check_prediction(obj)


def test_the_ensemble_is_one_model_whose_members_come_back(ensemble_weights):
    from fracture_detection.models import artifacts, locator
    model = artifacts.fracture_models(ensemble_weights)["hand"].load()
    found = locator.members(model)
    assert [m.name for m in found] == ["member_0", "member_1"]
    assert locator.single(model) is found[0] and locator.is_locator(found[0])


def test_members_on_one_frozen_trunk_run_it_once_with_the_same_outputs(ensemble_weights):
    from fracture_detection.models import artifacts, locator
    model = artifacts.fracture_models(ensemble_weights)["hand"].load()
    assert locator.shared_trunk(model) == "features_13_add"  # both tiny models froze the same ImageNet trunk
    meta = json.loads((ensemble_weights / "fracture_hand.json").read_text())
    assert meta["ensemble"]["shared_trunk"] == "features_13_add"  # the card says so
    shared = locator.shared_trunk_ensemble(model)
    assert "shared_trunk" in {layer.name for layer in shared.layers}
    x = np.random.default_rng(1).uniform(0, 255, (3,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    whole, once = model.predict_on_batch(x), shared.predict_on_batch(x)
    assert len(whole) == len(once)
    for a, b in zip(whole, once):
        assert np.allclose(a, b, atol=1e-5)
    # a member fine-tuned below the cut has a trunk of its own: the ensemble runs each member whole
    layer = locator.members(model)[1].get_layer("backbone").get_layer("features_3_conv_2")
    layer.set_weights([w + 0.01 for w in layer.get_weights()])
    assert locator.shared_trunk(model) is None and locator.shared_trunk_ensemble(model) is None
    changed = locator.inference_model(model).predict_on_batch(x)
    each = [np.asarray(m.predict_on_batch(x)[0]) for m in locator.members(model)]
    assert np.allclose(changed[0], np.mean(each, axis=0), atol=1e-5)


def test_a_wrong_member_is_one_sentence(tiny_weights, tmp_path):
    shutil.copy(tiny_weights / "split.csv", tmp_path)
    for spec, words in (("nowhere", "FOLDER:PART"), (f"{tiny_weights}:knee", "no Keras fracture model of the knee")):
        proc = run_script("training_fracture.py", "--data", FOLDERS, "--out", tmp_path, "--parts", "hand",
                          "--ensemble-of", f"{tiny_weights}:hand", spec, check=False)
        assert proc.returncode != 0 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
