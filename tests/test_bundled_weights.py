"""The shipped weights/ as a user runs them (LiteRT, no TensorFlow): stored outputs on three fixture
images, the JSON contract on every fixture, the metadata's rules driving the chain, and no patient
data in any output. A second or two in all."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fracture_detection.chain import decisions
from fracture_detection.io.images import load_image
from fracture_detection.chain.predictor import Predictor
from fracture_detection.io.synthetic import write_dicom

from conftest import BUNDLED, FIXTURES, FOLDERS, MURA, ROOT, check_prediction

EXPECTED = json.loads((FIXTURES / "bundled_expected.json").read_text())
REGENERATE = "if the bundled weights were retrained on purpose, run python tests/fixtures/make_bundled_expected.py"
PATIENT = ("Doe", "Jane", "SECRET-123")  # synthetic.write_dicom's patient name and id


@pytest.fixture(scope="module")
def bundled():
    return Predictor(BUNDLED, runtime="litert")


def test_bundled_weights_are_those_the_outputs_were_stored_for():
    import runpy
    fingerprint = runpy.run_path(str(FIXTURES / "make_bundled_expected.py"))["fingerprint"]
    assert fingerprint(BUNDLED) == EXPECTED["models"], REGENERATE


def test_bundled_weights_give_the_stored_outputs(bundled):
    """A hand and an elbow at each model's own input size, and a leg the body-part model rejects:
    a broken bundle, a wrong input size, pixels in [0, 1] or any preprocessing change shows here."""
    tol = EXPECTED["tolerance"]
    results = bundled.predict([FIXTURES / e["path"] for e in EXPECTED["images"]])
    for e, r in zip(EXPECTED["images"], results):
        got = r.to_json()
        assert {k: got[k] for k in ("finding", "body_part", "rejection", "model")} == \
            {k: e[k] for k in ("finding", "body_part", "rejection", "model")}, (e["role"], REGENERATE)
        assert got["part_probabilities"] == pytest.approx(e["part_probabilities"], abs=tol), e["role"]
        if e["fracture_probability"] is None:
            assert got["fracture_probability"] is None
        else:
            assert got["fracture_probability"] == pytest.approx(e["fracture_probability"], abs=tol), e["role"]
        check_prediction(got, load_image(r.path).shape[:2])
    assert [e["finding"] for e in EXPECTED["images"]][2] == "not_supported"


def _predictions(*args, weights=BUNDLED):
    proc = subprocess.run([sys.executable, str(ROOT / "predictions.py"), *map(str, args), "--weights", str(weights)],
                          capture_output=True, text=True, timeout=300)
    return proc


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """Grey and colour pictures, a DICOM with a patient's name, one without pixels, a broken file."""
    d = tmp_path_factory.mktemp("odd")
    grey = np.asarray(load_image(sorted((FOLDERS / "Hand").rglob("*.jpg"))[0]))[:, :, 0]
    write_dicom(d / "hand.dcm", grey.astype(np.uint16) * 16, bits=12)
    import pydicom
    empty = write_dicom(d / "empty.dcm", np.zeros((40, 40), np.uint16), bits=12)
    ds = pydicom.dcmread(empty)
    del ds.PixelData
    ds.save_as(empty)
    rng = np.random.default_rng(0)
    from PIL import Image
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(d / "colour.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return d


@pytest.fixture(scope="module")
def json_run(odd_folder):
    return _predictions(FOLDERS, MURA, odd_folder, "--json")


def test_json_contract_on_every_fixture_and_odd_file(json_run, odd_folder):
    proc = json_run
    assert proc.returncode == 1, proc.stderr  # the broken file and the empty DICOM could not be read
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    n_files = len(list(FOLDERS.rglob("*.jpg"))) + len(list(MURA.rglob("*.png"))) + len(list(odd_folder.iterdir()))
    assert len(lines) == n_files and "Traceback" not in proc.stderr
    for obj in lines:
        check_prediction(obj, load_image(obj["path"]).shape[:2] if obj["finding"] != "error" else None)
    by_name = {obj["path"].rsplit("/", 1)[-1]: obj for obj in lines if obj["path"].startswith(str(odd_folder))}
    assert by_name["colour.png"]["rejection"] == decisions.REJECT_COLOUR
    assert by_name["hand.dcm"]["body_part"] == "hand"
    assert by_name["broken.png"]["finding"] == by_name["empty.dcm"]["finding"] == "error"
    findings = {obj["finding"] for obj in lines}
    # the bundled models call no fixture fractured (test_fractured_lines_keep_the_contract_too makes one)
    assert findings >= {"normal", "uncertain", "not_supported", "error"}, "every other finding shows"


def test_fractured_lines_keep_the_contract_too(tmp_path):
    """A *Likely FRACTURE* line, with its regions, from the bundled hand model at a cut just below a
    fixture's probability (the JSON contract, not the model's accuracy, is under test)."""
    hand = _role("hand")
    p = next(e for e in EXPECTED["images"] if e["role"] == "hand")["fracture_probability"]
    meta = json.loads((BUNDLED / "fracture_hand.json").read_text())
    cuts = dict(meta["cuts"], no_fracture_below=round(p - 0.01, 4), fracture_from=round(p - 0.005, 4))
    proc = _predictions(hand, "--json", weights=_weights_with(tmp_path, fracture_hand={"cuts": cuts}))
    obj = json.loads(proc.stdout)
    assert proc.returncode == 0 and obj["finding"] == "fractured", proc.stderr
    check_prediction(obj, load_image(hand).shape[:2])
    assert obj["regions"] and obj["uncertain_band"] == [cuts["no_fracture_below"], cuts["fracture_from"]]


def test_no_patient_data_in_any_output(json_run, odd_folder):
    """A DICOM header carries the patient's name and id: they reach no output, JSON or text, and no
    message on stderr, whether the file is analysed or cannot be read."""
    for proc in (json_run, _predictions(odd_folder)):
        assert proc.returncode == 1 and "hand.dcm" in proc.stdout and "empty.dcm" in proc.stdout
        for word in PATIENT:
            assert word not in proc.stdout and word not in proc.stderr, word


def test_colour_rule_and_model_rule_are_separate(bundled):
    """Colour noise stops at the colour rule, before the body-part model runs; the same noise in grey
    passes it and is left to the body-part model, which must not take it for a part."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    colour, grey = bundled.predict([noise, np.ascontiguousarray(noise[:, :, 0])])
    assert colour.rejection == decisions.REJECT_COLOUR and colour.part_probabilities == {}
    assert grey.rejection != decisions.REJECT_COLOUR and set(grey.part_probabilities) == set(bundled.classes)
    assert grey.finding == "not_supported"


def _weights_with(tmp_path, **edits):
    """The bundled models (linked, not copied) with some metadata changed: {model name: {key: value}}."""
    d = tmp_path / "weights"
    d.mkdir(parents=True)
    for f in BUNDLED.glob("*.tflite"):
        (d / f.name).symlink_to(f)
    for f in BUNDLED.glob("*.json"):
        meta = json.loads(f.read_text())
        meta.update(edits.get(f.stem, {}))
        (d / f.name).write_text(json.dumps(meta))
    return d


def _role(name):
    return next(FIXTURES / e["path"] for e in EXPECTED["images"] if e["role"] == name)


def test_body_part_rules_come_from_the_metadata(tmp_path):
    hand, leg = _role("hand"), _role("not_supported")
    gate = json.loads((BUNDLED / "body_part.json").read_text())["gate"]
    with_gate = (lambda **kw: {"gate": {**gate, **kw}})
    rejecting = Predictor(_weights_with(tmp_path / "a", body_part=with_gate(target_cut=1.01)))
    assert [r.rejection for r in rejecting.predict([hand, leg])] == [decisions.REJECT_OTHER] * 2
    # a floor no confidence reaches: the hand is doubtful, the leg still 'another region' (checked first)
    floor = Predictor(_weights_with(tmp_path / "b", body_part=with_gate(part_floor=1.01)))
    h, g = floor.predict([hand, leg])
    assert (h.finding, h.rejection, g.rejection) == ("not_supported", decisions.REJECT_DOUBT, decisions.REJECT_OTHER)
    assert "cannot tell which part" in h.message and h.body_part is None
    low_floor = Predictor(_weights_with(tmp_path / "c", body_part=with_gate(part_floor=0.5)))
    assert low_floor.predict_one(hand).body_part == "hand"
    # weights made before the cut: P(other) at or above their reject threshold is another region
    old = {k: v for k, v in gate.items() if k not in ("target_cut", "part_floor")}
    other = next(e for e in EXPECTED["images"] if e["role"] == "hand")["part_probabilities"]["other"]
    for i, (threshold, rejection) in enumerate([(other - 0.001, decisions.REJECT_OTHER), (other + 0.001, None)]):
        older = Predictor(_weights_with(tmp_path / f"d{i}", body_part={"gate": {**old, "floor": 0.0},
                                                                       "reject_threshold": threshold}))
        assert older.predict_one(hand).rejection == rejection


def test_fracture_cuts_come_from_the_metadata(tmp_path, bundled):
    """The finding flips exactly at the reported probability, through the whole chain: at the stored
    cuts, and for weights made before the cuts, at the band widened to contain the threshold."""
    hand = _role("hand")
    p = bundled.predict_one(hand).fracture_probability
    step = 10 ** -decisions.DECIMALS
    cut = (lambda low, high: {"cuts": dict(bundled.fracture["hand"].info.meta["cuts"], no_fracture_below=low,
                                           fracture_from=high)})
    old = (lambda thr, band: {"cuts": None, "threshold": thr, "uncertain_band": band})
    for i, (edit, finding) in enumerate([
            (cut(p, p), "fractured"),                     # p >= fracture_from
            (cut(p + step, p + step), "normal"),          # one reported step above p
            (cut(p - step, p + step), "uncertain"),       # between the cuts
            (cut(p - step, p), "fractured"),              # on the fracture cut
            (cut(p, p + step), "uncertain"),              # on the normal cut: the side above it
            (old(p, [p + step, p + 2 * step]), "uncertain"),  # older weights: the band widened down to the threshold
    ]):
        w = _weights_with(tmp_path / str(i), fracture_hand=edit)
        r = Predictor(w).predict_one(hand)
        assert (r.fracture_probability, r.finding) == (p, finding), edit
        check_prediction(r.to_json())


def test_bundled_fracture_models_carry_cuts_and_the_appliance_detector():
    """Each shipped fracture model decides at two cuts chosen on its validation films (the reader's
    two promises, with intervals); the cast/splint/implant detector rides in a fracture model as its
    third output where that model was retrained (elbow, shoulder), else the body-part model's head speaks."""
    from fracture_detection.models import artifacts
    body, fracture = artifacts.model_set(BUNDLED)
    with_head = 0
    for part, info in fracture.items():
        cuts = info.meta["cuts"]
        assert cuts["basis"] == "untreated" and cuts["max_missed_untreated"] == decisions.MAX_MISSED_UNTREATED
        assert cuts["min_fracture_ppv"] == decisions.MIN_FRACTURE_PPV
        low, high = decisions.finding_edges(info.meta)
        assert low <= high and info.meta["uncertain_band"] == [low, high], part
        for name, value in (("no_fracture_below", low), ("fracture_from", high)):
            lo, hi = cuts["ci95"][name]
            assert lo <= value <= hi, (part, name)
        untreated = info.meta["validation"]["by_kind"]["untreated"]
        assert untreated["fractured_called"]["normal"] <= decisions.MAX_MISSED_UNTREATED + 1e-9, part
        if info.meta["litert"]["outputs"][-1] == "appliance_probability":
            with_head += 1
            a = info.meta["appliance"]
            assert 0 < a["threshold"] < 1 and a["validation"]["auc"] > 0.8
            # said only from a cut where >= 90 % of the flagged validation films showed one
            assert a["cut"]["precision"] >= a["cut"]["min_precision"] == 0.9 and a["cut"]["n_flagged"] > 0, part
        else:
            assert "appliance_probability" in body.meta["litert"]["outputs"], part
    assert with_head >= 2


def test_bundled_fracture_models_carry_the_amber_ranking():
    """Each model's amber bins cover its uncertain range whole and hold its validation films that fell
    there: the stored validation figures (share uncertain, positives) agree with them."""
    from fracture_detection.models import artifacts
    for part, info in artifacts.fracture_models(BUNDLED).items():
        a, v = info.meta["amber"], info.meta["validation"]
        low, high = decisions.finding_edges(info.meta)
        bins = a["bins"]
        assert a["basis"] == "validation" and a["n_films"] == v["n"], part
        assert a["prevalence"] == pytest.approx(v["positives"] / v["n"]), part
        assert bins[0]["from"] == low and bins[-1]["to"] == high, part
        assert all(x["to"] == y["from"] for x, y in zip(bins, bins[1:])), part
        # the bins count the films as the app runs them (LiteRT); the stored figures came from Keras at
        # training, where a film lying on a cut may round to the other side (the hand's 0.78325 film)
        assert abs(sum(b["n"] for b in bins) - round(v["uncertain"] * v["n"])) <= 1, part
        assert 1 <= len(bins) <= 3 and all(b["n"] >= 5 for b in bins), part


def test_bundled_chain_ranks_uncertain_films_and_says_so_only_for_them(bundled):
    from fracture_detection.chain.amber import amber_bin
    from fracture_detection.chain.predictor import describe
    results = bundled.predict(sorted(FOLDERS.rglob("*.jpg")))
    unsure = [r for r in results if r.finding == "uncertain"]
    assert unsure, "the fixtures hold uncertain films"
    for r in results:
        line = describe(r)
        if r.finding == "uncertain":
            b = amber_bin(r.fracture_probability, bundled.fracture[r.body_part].info.meta)
            assert (r.amber_n, r.amber_fractured, r.amber_basis) == (b.n, b.fractured, "validation")
            assert f"({b.fractured} of {b.n}, against" in line and "Rank within Uncertain" in line
        else:
            assert r.amber_share is None and "Rank within" not in line
        check_prediction(r.to_json())


def test_an_appliance_cut_that_no_film_reached_is_never_said(tmp_path, bundled):
    """Weights whose detector found no cut precise enough (threshold null): the probability is still
    reported on every analysed film, the line never."""
    films = sorted(FOLDERS.rglob("*.jpg"))
    edits = {}
    for part, fm in bundled.fracture.items():
        edits[f"fracture_{part}"] = {"appliance": dict(fm.info.meta["appliance"], threshold=None)}
    never = Predictor(_weights_with(tmp_path, **edits)).predict(films)
    low = {}
    for part, fm in bundled.fracture.items():
        low[f"fracture_{part}"] = {"appliance": dict(fm.info.meta["appliance"], threshold=0.0)}
    always = Predictor(_weights_with(tmp_path / "low", **low)).predict(films)
    analysed = [(n, a) for n, a in zip(never, always) if n.finding in ("fractured", "normal", "uncertain")]
    assert analysed and all(n.appliance is None and n.appliance_probability is not None for n, _ in analysed)
    assert all(a.appliance == "cast or implant" for _, a in analysed)


def test_bundled_chain_reports_the_appliance_on_every_analysed_film(bundled):
    results = bundled.predict(sorted(FOLDERS.rglob("*.jpg")))
    analysed = [r for r in results if r.finding in ("fractured", "normal", "uncertain")]
    assert analysed and all(r.appliance_probability is not None for r in analysed)
    for r in analysed:
        head = bundled.fracture[r.body_part].appliance
        threshold = head["threshold"] if head else bundled.appliance_threshold
        assert (r.appliance is not None) == (r.appliance_probability >= threshold), r


def test_text_output_speaks_the_apps_words_and_says_when_a_finding_is_close_to_its_cut(tmp_path):
    """The text lines use the app's words (Likely FRACTURE, No fracture found, Uncertain, Not analysed);
    a probability inside the deciding cut's bootstrap interval gets "close to the cut: review" (and the
    JSON its ``near_cut``), the finding staying what the rule says; outside the interval, nothing."""
    hand = _role("hand")
    p = next(e for e in EXPECTED["images"] if e["role"] == "hand")["fracture_probability"]
    meta = json.loads((BUNDLED / "fracture_hand.json").read_text())
    for finding, cuts, ci, near in (
            ("fractured", dict(no_fracture_below=round(p - 0.01, 4), fracture_from=round(p - 0.005, 4)),
             dict(fracture_from=[round(p - 0.05, 4), round(p + 0.05, 4)]), True),
            ("normal", dict(no_fracture_below=round(p + 0.005, 4), fracture_from=round(p + 0.01, 4)),
             dict(no_fracture_below=[round(p + 0.001, 4), round(p + 0.1, 4)]), False),
            ("normal", dict(no_fracture_below=round(p + 0.005, 4), fracture_from=round(p + 0.01, 4)),
             dict(no_fracture_below=[round(p, 4), round(p + 0.1, 4)]), True)):
        ci95 = dict(meta["cuts"]["ci95"], **ci)
        weights = _weights_with(tmp_path / f"{finding}{near}{len(ci)}", fracture_hand={
            "cuts": dict(meta["cuts"], **cuts, ci95=ci95)})
        obj = json.loads(_predictions(hand, "--json", weights=weights).stdout)
        assert obj["finding"] == finding
        assert obj["near_cut"] == ({"fractured": "fracture_from", "normal": "no_fracture_below"}[finding]
                                   if near else None)
        check_prediction(obj, load_image(hand).shape[:2])
        line = _predictions(hand, weights=weights).stdout.strip()
        words = decisions.FINDING_WORDS[finding]
        named = "hand" if obj["view"] in ("", "hand") else f"{obj['view']} — read by the hand model"
        assert f"{named} ({obj['body_part_probability']:.0%}), {words}" in line, line
        assert ("(close to the cut: review)" in line) == near, line
    text = _predictions(FOLDERS, MURA).stdout
    for word in ("FRACTURED", "NORMAL", "UNCERTAIN", "NOT_SUPPORTED"):
        assert word not in text, word
    assert "No fracture found" in text or "Uncertain" in text
    assert "Not analysed." in text
