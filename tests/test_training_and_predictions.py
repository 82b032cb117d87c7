"""The whole chain for real: tiny models trained on fixture X-rays, then predictions with them."""
import json
import shutil

import numpy as np
import pytest

from fracture_detection import artifacts, data, training
from fracture_detection.images import load_image, to_model_input
from fracture_detection.predictor import Predictor

from conftest import FOLDERS, MURA, TINY, run_script

REQUIRED_KEYS = {"path", "body_part", "body_part_probability", "fracture_probability", "finding", "message"}


@pytest.fixture(scope="module")
def predictor(tiny_weights):
    return Predictor(tiny_weights)


def test_training_writes_models_metadata_and_split(tiny_weights):
    names = sorted(p.name for p in tiny_weights.iterdir())
    assert names == ["body_part.json", "body_part.keras", "fracture_elbow.json", "fracture_elbow.keras",
                     "fracture_hand.json", "fracture_hand.keras", "fracture_shoulder.json",
                     "fracture_shoulder.keras", "split.csv"], "no temporary files may be left behind"
    body = json.loads((tiny_weights / "body_part.json").read_text())
    assert body["classes"] == ["elbow", "hand", "shoulder", "other"] and body["reject_class"] == "other"
    assert body["image_size"] == 64 and body["backbone"] == "mobilenetv2"
    assert len(body["history"]["loss"]) == 1 and "val_accuracy" in body["history"]
    frac = json.loads((tiny_weights / "fracture_hand.json").read_text())
    assert frac["part"] == "hand" and frac["classes"] == ["normal", "fractured"]
    low, high = frac["uncertain_band"]
    assert 0 <= low <= frac["threshold"] <= high <= 1
    assert set(frac["validation"]) >= {"auc", "accuracy", "sensitivity", "specificity", "kappa"}
    # both scripts used one split, saved once, relative to the data root
    recs = data.read_split(tiny_weights / "split.csv", FOLDERS)
    assert {r.split for r in recs} <= set(data.SPLITS) and all(FOLDERS.as_posix() in r.path for r in recs)


def test_prediction_preprocessing_matches_training(tiny_weights, predictor):
    """If inference fed the model different pixels than training did, these would differ."""
    files = sorted((FOLDERS / "Hand").rglob("*.jpg"))
    info = artifacts.find_models(tiny_weights)
    hand = next(m for m in info if m.part == "hand")
    x, kept = training.load_pixels([str(f) for f in files], hand.image_size, verbose=0)
    expected = training.predict(predictor.fracture["hand"].model, x)
    got = [r for r in predictor.predict(files) if r.body_part == "hand"]
    for r in got:
        i = [str(f) for f in files].index(r.path)
        assert r.fracture_probability == pytest.approx(expected[i], abs=1e-3)
    # the same pixels scaled to [0, 1] (a classic inference bug) give other answers:
    # the normalisation lives in the model and expects 0-255
    scaled = training.predict(predictor.fracture["hand"].model, x.astype("float32") / 255.0)
    assert np.abs(scaled - expected).max() > 1e-3


def test_model_normalises_like_imagenet_training(predictor):
    pre = predictor.fracture["hand"].model.get_layer("preprocess")
    grey = np.full((1, 8, 8, 3), 127.5, dtype="float32")
    out = np.asarray(pre(grey))[0, 0, 0]
    np.testing.assert_allclose(out, (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                               atol=1e-4)


def test_predictor_api_on_path_and_array(predictor):
    f = sorted((FOLDERS / "Elbow").rglob("*.jpg"))[0]
    a = predictor.predict_one(f)
    b = predictor.predict_one(load_image(f))
    assert a.finding in ("fractured", "normal", "uncertain", "not_supported")
    assert a.part_probabilities == b.part_probabilities and b.path is None
    assert sum(a.part_probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    if a.fracture_probability is not None:
        heat = a.heatmap()
        assert heat.shape == load_image(f).shape[:2] and 0 <= heat.min() and heat.max() <= 1


def test_cam_equals_grad_cam(predictor):
    """The cheap activation map must equal Grad-CAM computed with real gradients."""
    import tensorflow as tf
    fm = predictor.fracture["hand"]
    x = to_model_input(load_image(sorted((FOLDERS / "Hand").rglob("*.jpg"))[0]), fm.size)[None]
    m = fm.model
    with tf.GradientTape() as tape:
        fmap = m.get_layer("backbone")(m.get_layer("preprocess")(x), training=False)
        tape.watch(fmap)
        prob = m.get_layer("probability")(m.get_layer("pool")(fmap))
    grads = tape.gradient(prob, fmap)
    alpha = tf.reduce_mean(grads, axis=(1, 2))
    grad_cam = tf.nn.relu(tf.reduce_sum(fmap * alpha[:, None, None, :], axis=-1))[0].numpy()
    grad_cam = grad_cam / grad_cam.max() if grad_cam.max() > 0 else grad_cam
    from fracture_detection.predictor import class_activation
    np.testing.assert_allclose(class_activation(np.asarray(fmap)[0], fm.cam_weights), grad_cam, atol=1e-4)


def test_colour_photo_is_not_supported(predictor):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    r = predictor.predict_one(photo)
    assert r.finding == "not_supported" and r.body_part is None and r.message


def test_cli_json_lines_on_a_folder(tiny_weights, image_dir):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    proc = run_script("predictions.py", image_dir, "--json", "--weights", tiny_weights, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == len(list(image_dir.iterdir()))
    for obj in lines:
        assert REQUIRED_KEYS <= set(obj)
        assert obj["finding"] in ("fractured", "normal", "uncertain", "not_supported", "error")
        assert obj["body_part"] in ("elbow", "hand", "shoulder", None)
    broken = [o for o in lines if o["path"].endswith("broken.png")][0]
    assert broken["finding"] == "error" and broken["message"].endswith(".")
    assert sum(o["finding"] != "error" for o in lines) == len(lines) - 1
    assert "Traceback" not in proc.stderr


def test_cli_exit_codes(tiny_weights, image_dir, tmp_path):
    ok = run_script("predictions.py", image_dir, "--weights", tiny_weights, check=False)
    assert ok.returncode == 0 and "Decision support" in ok.stderr
    assert run_script("predictions.py", check=False).returncode == 2
    missing = run_script("predictions.py", image_dir, "--weights", tmp_path / "none", check=False)
    assert missing.returncode == 2 and "No body-part model" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    e = run_script("predictions.py", empty, "--json", "--weights", tiny_weights, check=False)
    assert e.returncode == 1 and json.loads(e.stdout)["message"] == "The folder empty contains no supported images."


def test_mura_training_run(tmp_path):
    """A researcher's MURA run: official valid split kept as test, labels read as 'abnormal'."""
    run_script("training_fracture.py", "--data", MURA, "--out", tmp_path, "--parts", "wrist", *TINY)
    meta = json.loads((tmp_path / "fracture_wrist.json").read_text())
    assert meta["data"]["layout"] == "mura" and "abnormal" in meta["label_meaning"]
    recs = data.read_split(tmp_path / "split.csv", MURA)
    assert all(r.split == "test" for r in recs if "/valid/" in r.path)
    assert not any(r.split == "test" for r in recs if "/train/" in r.path)


def test_training_errors_are_one_sentence(tmp_path):
    proc = run_script("training_parts.py", "--data", tmp_path / "nowhere", "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    shutil.copytree(FOLDERS / "Hand", tmp_path / "d" / "Hand")
    proc = run_script("training_fracture.py", "--data", tmp_path / "d", "--out", tmp_path, "--parts", "elbow",
                      *TINY, check=False)
    assert proc.returncode == 2 and "No labelled images of elbow" in proc.stderr
