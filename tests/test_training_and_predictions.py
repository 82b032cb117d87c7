"""The whole chain for real: tiny models trained on fixture X-rays, then predictions with them."""
import json
import shutil

import numpy as np
import pytest

from fracture_detection.models import artifacts
from fracture_detection.io import data
from fracture_detection.chain import decisions
from fracture_detection.evaluation import metrics
from fracture_detection.training import trainer
from fracture_detection.io.images import load_image, to_model_input
from fracture_detection.chain.predictor import Predictor

from conftest import BODY_SIZE, FOLDERS, FRACTURE_SIZE, MURA, TINY, check_prediction, run_script


@pytest.fixture(scope="module")
def predictor(tiny_weights):
    return Predictor(tiny_weights)


def test_training_writes_models_metadata_and_split(tiny_weights):
    names = sorted(p.name for p in tiny_weights.iterdir())
    assert names == sorted([f"{m}.{ext}" for m in ("body_part", "fracture_elbow", "fracture_hand",
                                                   "fracture_shoulder") for ext in ("json", "keras", "tflite")]
                           + ["split.csv"]), "no temporary files may be left behind"
    body = json.loads((tiny_weights / "body_part.json").read_text())
    assert body["litert"]["file"] == "body_part.tflite" and body["litert"]["max_difference_to_keras"] < 1e-4
    assert body["classes"] == ["elbow", "hand", "shoulder", "other"] and body["reject_class"] == "other"
    assert body["image_size"] == BODY_SIZE and body["backbone"] == "mobilenetv2"
    assert len(body["history"]["loss"]) == 1 and "val_accuracy" in body["history"]
    frac = json.loads((tiny_weights / "fracture_hand.json").read_text())
    assert frac["part"] == "hand" and frac["classes"] == ["normal", "fractured"]
    assert frac["image_size"] == FRACTURE_SIZE and frac["backbone"] == "mobilenetv2"
    assert set(frac["validation"]) >= {"auc", "accuracy", "sensitivity", "specificity", "kappa"}
    # both scripts used one split, saved once, relative to the data root
    recs = data.read_split(tiny_weights / "split.csv", FOLDERS)
    assert {r.split for r in recs} <= set(data.SPLITS) and all(FOLDERS.as_posix() in r.path for r in recs)


def test_threshold_and_cuts_are_chosen_on_validation(tiny_weights):
    """The stored threshold and the two cuts are what the decision rules choose on this model's
    predictions for the validation images (not the training or test images, not a default), with the
    fixtures' appliance labels telling untreated fractures from treated ones."""
    hand = next(m for m in artifacts.find_models(tiny_weights) if m.part == "hand")
    recs = [r for r in data.fracture_records(data.read_split(tiny_weights / "split.csv", FOLDERS), "hand")
            if r.split == "val"]
    x, kept = data.load_pixels([r.path for r in recs], hand.image_size, verbose=0)
    y, p = [recs[i].label for i in kept], trainer.predict(hand.load(), x)
    assert len(y) >= 2 and len(set(y)) == 2, "the fixture split gives the hand model both classes to tune on"
    thr = decisions.reported(metrics.youden_threshold(y, p))
    assert hand.meta["threshold"] == pytest.approx(thr, abs=2e-4)
    untreated = [recs[i].treated is False for i in kept]
    assert any(untreated), "the fixture's labels by eye mark some hand fractures as untreated"
    cuts = decisions.select_cuts(y, p, untreated)
    stored = hand.meta["cuts"]
    assert stored["basis"] == cuts["basis"]
    assert stored["no_fracture_below"] == pytest.approx(cuts["no_fracture_below"], abs=2e-4)
    assert stored["fracture_from"] == pytest.approx(cuts["fracture_from"], abs=2e-4)
    assert decisions.finding_edges(hand.meta) == (stored["no_fracture_below"], stored["fracture_from"])


def test_prediction_preprocessing_matches_training(tiny_weights, predictor):
    """If inference fed the model different pixels than training did, these would differ."""
    files = sorted((FOLDERS / "Hand").rglob("*.jpg"))
    info = artifacts.find_models(tiny_weights)
    hand = next(m for m in info if m.part == "hand")
    x, kept = data.load_pixels([str(f) for f in files], hand.image_size, verbose=0)
    keras_model = hand.load()
    expected = trainer.predict(keras_model, x)
    got = [r for r in predictor.predict(files) if r.body_part == "hand"]
    assert got, "the tiny body-part model should call some fixture hands a hand"
    for r in got:
        i = [str(f) for f in files].index(r.path)
        assert r.fracture_probability == pytest.approx(expected[i], abs=1e-3)
    # every hand image through the hand model directly, whatever the body-part model said
    direct = predictor.fracture_probabilities([predictor.prepare(f) for f in files], "hand")
    np.testing.assert_allclose(direct, expected, atol=1e-4)
    # the same pixels scaled to [0, 1] (a classic inference bug) give other answers:
    # the normalisation lives in the model and expects 0-255
    scaled = trainer.predict(keras_model, x.astype("float32") / 255.0)
    assert np.abs(scaled - expected).max() > 1e-3


def test_predictor_runs_litert_files_and_keras_alike(tiny_weights, predictor):
    """The app runs the .tflite files; Keras must give the same answers, so either can ship."""
    from fracture_detection.models.runtime import LiteRTModel
    assert isinstance(predictor.body, LiteRTModel)
    assert all(isinstance(fm.run, LiteRTModel) for fm in predictor.fracture.values())
    files = sorted(FOLDERS.rglob("*.jpg"))
    fast, slow = predictor.predict(files), Predictor(tiny_weights, runtime="keras").predict(files)
    gate = predictor.body_info.meta["gate"]
    same = 0
    for a, b in zip(fast, slow):
        for k in a.part_probabilities:
            assert a.part_probabilities[k] == pytest.approx(b.part_probabilities[k], abs=2e-4)
        if a.cam is not None and b.cam is not None:
            assert a.fracture_probability == pytest.approx(b.fracture_probability, abs=2e-4)
            np.testing.assert_allclose(a.cam, b.cam, atol=1e-3)
        if (a.finding, a.body_part) == (b.finding, b.body_part):
            same += 1
        else:  # only a number sitting on a decision boundary may tip either way
            parts = [v for k, v in a.part_probabilities.items() if k != "other"]
            gaps = [abs(sum(parts) - gate["target_cut"]), abs(max(parts) / sum(parts) - gate["part_floor"])]
            if a.threshold is not None:
                gaps += [abs(a.fracture_probability - t) for t in a.uncertain_band]
            assert min(gaps) < 1e-3, (a, b)
    assert same >= len(fast) - 2


def test_batches_and_read_ahead_keep_every_result_in_its_place(predictor, image_dir):
    (image_dir / "broken.jpg").write_bytes(b"not a jpeg")
    files = sorted(image_dir.iterdir())
    whole = predictor.predict(files)
    for batch_size in (1, 3):
        seen = []
        again = predictor.predict(files, batch_size=batch_size, progress=lambda done, total: seen.append(done))
        assert [r.to_json() for r in again] == [r.to_json() for r in whole]
        assert seen[-1] == len(files) and seen == sorted(seen)
    assert [r.path for r in whole] == [str(f) for f in files]
    assert [r.finding for r in whole if r.path.endswith("broken.jpg")] == ["error"]


def test_without_ai_edge_litert_tensorflow_runs_the_same_files(tiny_weights, predictor, monkeypatch):
    """Intel macOS has no ai-edge-litert build: TensorFlow's own interpreter must take over."""
    import sys
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    fallback = Predictor(tiny_weights, runtime="litert")
    assert "tensorflow" in type(fallback.body.interpreter).__module__
    files = sorted((FOLDERS / "Hand").rglob("*.jpg"))
    for a, b in zip(fallback.predict(files), predictor.predict(files)):
        assert a.to_json() == b.to_json()


def test_model_normalises_like_imagenet_training(tiny_weights):
    hand = next(m for m in artifacts.find_models(tiny_weights) if m.part == "hand")
    pre = hand.load().get_layer("preprocess")
    grey = np.full((1, 8, 8, 3), 127.5, dtype="float32")
    out = np.asarray(pre(grey))[0, 0, 0]
    np.testing.assert_allclose(out, (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                               atol=1e-4)


def test_predictor_api_on_path_and_array(predictor):
    f = sorted((FOLDERS / "Elbow").rglob("*.jpg"))[0]
    a = predictor.predict_one(f)
    b = predictor.predict_one(load_image(f))
    check_prediction(a.to_json(), load_image(f).shape[:2])
    assert a.to_json() == dict(b.to_json(), path=str(f)) and b.path is None
    assert sum(a.part_probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    if a.fracture_probability is not None:
        heat = a.heatmap()
        assert heat.shape == load_image(f).shape[:2] and 0 <= heat.min() and heat.max() <= 1


def test_map_is_the_models_own_cell_probabilities(predictor):
    """The map the app draws is the fracture model's probability per cell, on an absolute scale, and
    the image's probability comes from those same cells (log-sum-exp pooling of their logits)."""
    from fracture_detection.models.locator import LSE_SHARPNESS
    fm = predictor.fracture["hand"]
    x = to_model_input(load_image(sorted((FOLDERS / "Hand").rglob("*.jpg"))[0]), fm.size)[None]
    model = fm.info.load()
    prob, logits = model.predict_on_batch(x)
    cells = 1 / (1 + np.exp(-logits[0, :, :, 0]))
    r = LSE_SHARPNESS
    pooled = logits.max() + np.log(np.mean(np.exp(r * (logits - logits.max())))) / r
    assert float(prob[0, 0]) == pytest.approx(1 / (1 + np.exp(-pooled)), abs=1e-5)
    if fm.info.meta["localisation"]["test_time_mirroring"]:  # the mean with the mirror image, mapped back
        prob_m, logits_m = model.predict_on_batch(np.ascontiguousarray(x[:, :, ::-1]))
        prob = (prob + prob_m) / 2
        cells = (cells + 1 / (1 + np.exp(-logits_m[0, :, ::-1, 0]))) / 2
    p_app, maps = fm.run(x)  # the LiteRT file, as the app runs it
    np.testing.assert_allclose(maps[0], cells, atol=1e-4)
    assert float(p_app[0, 0]) == pytest.approx(float(prob[0, 0]), abs=1e-4)


def test_regions_follow_the_models_metadata(predictor):
    """Regions are cut from the model's own cells with the threshold and extent its training chose
    on validation (recorded in its metadata); weights from before the extent was recorded keep 0.5."""
    from dataclasses import replace

    from fracture_detection.io import boxes
    from fracture_detection.chain.predictor import _FractureModel
    fm = predictor.fracture["hand"]
    where = fm.info.meta["localisation"]
    assert where["region_extent"] == boxes.REGION_EXTENT
    image = load_image(sorted((FOLDERS / "Hand").rglob("*.jpg"))[0])
    _, maps = fm.run(to_model_input(image, fm.size)[None])
    shape = image.shape[:2]
    try:
        for extent in (where["region_extent"], 0.9):
            fm.region_extent = extent
            assert fm.regions(maps[0], shape, "uncertain") == boxes.regions_from_map(
                maps[0], shape, where["region_threshold"], where["max_regions"], extent=extent)
    finally:
        fm.region_extent = where["region_extent"]  # the predictor is shared with other tests
    assert fm.regions(maps[0], shape, "normal") == []
    older = {k: v for k, v in where.items() if k != "region_extent"}
    assert _FractureModel(replace(fm.info, meta=dict(fm.info.meta, localisation=older)), "auto").region_extent == \
        boxes.LEGACY_REGION_EXTENT


def test_colour_photo_is_not_supported(predictor):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    r = predictor.predict_one(photo)
    assert r.rejection == decisions.REJECT_COLOUR and r.part_probabilities == {}
    check_prediction(r.to_json())


def test_each_model_gets_its_own_input_size(predictor):
    """The body-part model takes 64 px, the fracture models 96 px: the chain's probabilities are
    each model's on its own size (the LiteRT files refuse any other)."""
    assert predictor.body_info.image_size == BODY_SIZE and predictor.fracture["hand"].size == FRACTURE_SIZE
    files = sorted((FOLDERS / "Hand").rglob("*.jpg"))
    chain = predictor.predict(files)
    images = [load_image(f) for f in files]
    body = predictor.body(np.stack([to_model_input(im, BODY_SIZE) for im in images]))[0]
    np.testing.assert_allclose([list(r.part_probabilities.values()) for r in chain], body, atol=2e-4)
    hand = predictor.fracture["hand"].run
    own = hand(np.stack([to_model_input(im, FRACTURE_SIZE) for im in images]))[0][:, 0]
    routed = [(r.fracture_probability, p) for r, p in zip(chain, own) if r.body_part == "hand"]
    assert routed, "the tiny body-part model should call some fixture hands a hand"
    for got, p in routed:
        assert got == pytest.approx(p, abs=1e-4)


def test_cli_json_lines_on_a_folder(tiny_weights, image_dir):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    proc = run_script("predictions.py", image_dir, "--json", "--weights", tiny_weights, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == len(list(image_dir.iterdir()))
    for obj in lines:
        check_prediction(obj, None if obj["finding"] == "error" else load_image(obj["path"]).shape[:2])
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


def test_cli_runs_without_tensorflow(tiny_weights, image_dir):
    """predictions.py must not import TensorFlow or scikit-learn when LiteRT files exist:
    importing them is most of a 20 s start on a 2-core machine."""
    code = ("import runpy, sys; sys.argv = ['predictions.py', sys.argv[1], '--weights', sys.argv[2]]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib') if m in sys.modules))")
    import subprocess
    import sys
    from conftest import ROOT
    proc = subprocess.run([sys.executable, "-c", code, str(image_dir), str(tiny_weights)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_litert_only_and_keras_only_weights(tiny_weights, image_dir, tmp_path):
    """The bundled layout (.tflite + .json, no .keras) and a Keras-only folder (trained under
    another backend) both work; export_litert.py turns the second into the first."""
    expected = [r.to_json() for r in Predictor(tiny_weights).predict(sorted(image_dir.iterdir()))]
    keras_only = tmp_path / "keras_only"
    # the body-part model and one fracture model are a complete set (and two exports are quicker than four)
    shutil.copytree(tiny_weights, keras_only, ignore=shutil.ignore_patterns("*.tflite", "fracture_[es]*"))
    with pytest.raises(artifacts.WeightsError, match="No LiteRT file"):  # metadata names a .tflite that is gone
        Predictor(keras_only, runtime="litert")
    for f in keras_only.glob("*.json"):
        meta = json.loads(f.read_text())
        meta.pop("litert", None)
        f.write_text(json.dumps(meta))
    slow = Predictor(keras_only)
    from fracture_detection.models.runtime import KerasModel
    assert isinstance(slow.body, KerasModel)
    proc = run_script("scripts/export_litert.py", "--weights", keras_only, "--drop-keras")
    assert "largest difference" in proc.stdout
    assert not list(keras_only.glob("*.keras")) and len(list(keras_only.glob("*.tflite"))) == 2
    got = [r.to_json() for r in Predictor(keras_only).predict(sorted(image_dir.iterdir()))]
    for a, b in zip(got, expected):
        assert a["part_probabilities"] == pytest.approx(b["part_probabilities"], abs=1e-3)
        if a["body_part"] == "hand":
            assert a["fracture_probability"] == pytest.approx(b["fracture_probability"], abs=1e-3)
    with pytest.raises(artifacts.WeightsError, match="not in"):
        artifacts.find_models(keras_only)[0].load()


@pytest.mark.slow
def test_mura_training_run(tmp_path):
    """A researcher's MURA run: official valid split kept as test, labels read as 'abnormal'."""
    run_script("training_fracture.py", "--data", MURA, "--out", tmp_path, "--parts", "wrist", *TINY)
    meta = json.loads((tmp_path / "fracture_wrist.json").read_text())
    assert meta["data"]["layout"] == "mura" and "abnormal" in meta["label_meaning"]
    recs = data.read_split(tmp_path / "split.csv", MURA)
    assert all(r.split == "test" for r in recs if "/valid/" in r.path)
    assert not any(r.split == "test" for r in recs if "/train/" in r.path)


@pytest.mark.slow
def test_training_errors_are_one_sentence(tmp_path):
    proc = run_script("training_parts.py", "--data", tmp_path / "nowhere", "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    shutil.copytree(FOLDERS / "Hand", tmp_path / "d" / "Hand")
    proc = run_script("training_fracture.py", "--data", tmp_path / "d", "--out", tmp_path, "--parts", "elbow",
                      *TINY, check=False)
    assert proc.returncode == 2 and "No labelled images of elbow" in proc.stderr
