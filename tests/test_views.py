"""What a film shows (its view, as a reader names it) and the region it is routed by: views.csv joined to
the records, a view overriding the dataset's part, MURA's seven study types."""
import csv
import shutil

import numpy as np
import pytest

from fracture_detection.io import data
from fracture_detection.io.data import DatasetError, read_dataset

from conftest import FOLDERS, MURA
from test_data import _fracatlas, _roboflow


def _write_views(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "key", "dataset_part", "view", "confidence", "note"])
        w.writeheader()
        for source, key, view in rows:
            w.writerow({"source": source, "key": key, "dataset_part": "", "view": view, "confidence": "high",
                        "note": ""})


def _flagged(root, part):
    """FracAtlas file names flagged with ``part`` alone, in the order of dataset.csv."""
    with open(root / "dataset.csv", newline="") as fh:
        return [r["image_id"] for r in csv.DictReader(fh) if r[part] == "1"]


def test_views_join_by_file_name_and_by_roboflow_upload_and_override_the_part(tmp_path):
    atlas, robo = _fracatlas(tmp_path), _roboflow(tmp_path)
    hand, shoulder = _flagged(atlas, "hand"), _flagged(atlas, "shoulder")
    upload = sorted(p.name for p in (robo / "val/images").iterdir())[0]
    key = f"val/{upload.split('.rf.')[0]}"
    _write_views(tmp_path / "views.csv", [("fracatlas", hand[0], "forearm"), ("fracatlas", shoulder[0], "chest"),
                                          ("fracatlas", shoulder[1], "shoulder_chest"),
                                          ("roboflow-bone-fracture", key, "wrist")])
    recs = {r.path.rsplit("/", 1)[-1]: r for r in read_dataset(tmp_path)}
    forearm, chest, wide = recs[hand[0]], recs[shoulder[0]], recs[shoulder[1]]
    assert (forearm.part, forearm.view, forearm.region) == ("hand", "forearm", "hand")
    assert (chest.part, chest.view, chest.region) == ("shoulder", "chest", "other")  # a trunk is not a shoulder
    assert (wide.view, wide.region) == ("shoulder_chest", "shoulder")
    # the view of an upload holds for every augmented copy of it: an elbow-class upload showing a wrist
    copies = [r for name, r in recs.items() if name.startswith(upload.split(".rf.")[0] + ".rf.")]
    assert len(copies) == 2 and all((r.part, r.view, r.region) == ("elbow", "wrist", "hand") for r in copies)
    # films views.csv does not name keep their part as region, and as view where it is a reader's word
    unnamed = recs[hand[1]]
    assert (unnamed.view, unnamed.region) == ("hand", "hand")
    leg = next(r for r in recs.values() if r.part == "leg")
    assert (leg.view, leg.region) == ("", "leg")


def test_without_views_csv_nothing_changes_but_the_view_word(tmp_path):
    recs = read_dataset(_fracatlas(tmp_path))
    assert all(r.region == r.part for r in recs)
    assert {r.view for r in recs} == {"hand", "shoulder", ""}  # (FracAtlas flags no elbow: those are "mixed")


def test_a_plain_views_csv_names_films_by_path(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FOLDERS, root)
    film = sorted((root / "Hand").rglob("*.jpg"))[0]
    (root / "views.csv").write_text(f"path,view\n{film.relative_to(root).as_posix()},finger\n")
    recs = read_dataset(root)
    named = [r for r in recs if r.view == "finger"]
    assert len(named) == 1 and named[0].path == str(film) and named[0].region == "hand"


def test_an_unknown_view_is_one_clear_sentence(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FOLDERS, root)
    (root / "views.csv").write_text("path,view\nHand/normal/hand0_0.jpg,knee\n")
    with pytest.raises(DatasetError, match=r"unknown view 'knee' \(expected one of finger, .*other\)\.$"):
        read_dataset(root)


@pytest.mark.parametrize("study_type,view,region", [
    ("XR_FINGER", "finger", "hand"), ("XR_HAND", "hand", "hand"), ("XR_WRIST", "wrist", "hand"),
    ("XR_FOREARM", "forearm", "hand"), ("XR_ELBOW", "elbow", "elbow"), ("XR_SHOULDER", "shoulder", "shoulder"),
    ("XR_HUMERUS", "humerus", "other")])
def test_mura_study_types_route_to_their_region(tmp_path, study_type, view, region):
    image = next(MURA.rglob("*.png"))
    study = tmp_path / "MURA-v1.1" / "train" / study_type / "patient00001" / "study1_positive"
    study.mkdir(parents=True)
    shutil.copy(image, study / "image1.png")
    (rec,) = read_dataset(tmp_path / "MURA-v1.1")
    assert (rec.part, rec.view, rec.region) == (study_type[3:].lower(), view, region)


def test_the_mura_fixture_reads_its_wrists_as_the_hand_region():
    recs = read_dataset(MURA)
    wrists = [r for r in recs if r.part == "wrist"]
    assert wrists and all((r.view, r.region) == ("wrist", "hand") for r in wrists)
    assert {r.region for r in recs} == {"elbow", "hand", "shoulder"}


def test_the_split_file_keeps_no_view_and_reading_it_joins_them_again(tmp_path):
    root = tmp_path
    atlas = _fracatlas(root)
    hand = _flagged(atlas, "hand")
    _write_views(root / "views.csv", [("fracatlas", hand[0], "wrist")])
    recs = data.assign_splits(read_dataset(root), seed=1)
    data.write_split(recs, tmp_path / "split.csv", root)
    with open(tmp_path / "split.csv", newline="") as fh:
        assert "view" not in next(csv.reader(fh))
    back = {r.path: r for r in data.read_split(tmp_path / "split.csv", root)}
    assert {(r.path, r.view, r.region) for r in recs} == {(p, r.view, r.region) for p, r in back.items()}
    # a split file with a column this version does not know is still read
    text = (tmp_path / "split.csv").read_text().splitlines()
    (tmp_path / "newer.csv").write_text("\n".join([text[0] + ",later"] + [t + ",x" for t in text[1:]]) + "\n")
    assert len(data.read_split(tmp_path / "newer.csv", root)) == len(recs)


def test_a_views_confidence_is_carried_and_only_a_low_one_is_unsure(tmp_path):
    atlas, robo = _fracatlas(tmp_path), _roboflow(tmp_path)
    hand = _flagged(atlas, "hand")
    upload = sorted(p.name for p in (robo / "val/images").iterdir())[0]
    with open(tmp_path / "views.csv", "w", newline="") as fh:
        fh.write("source,key,dataset_part,view,confidence,note\n"
                 f"fracatlas,{hand[0]},hand,wrist,low,on the CMC line\nfracatlas,{hand[1]},hand,hand,high,\n"
                 f"roboflow-bone-fracture,val/{upload.split('.rf.')[0]},elbow,wrist,,\n")
    recs = {r.path.rsplit("/", 1)[-1]: r for r in read_dataset(tmp_path)}
    low, high = recs[hand[0]], recs[hand[1]]
    assert (low.view, low.view_confidence, low.view_sure) == ("wrist", "low", False)
    assert (high.view, high.view_confidence, high.view_sure) == ("hand", "high", True)
    unrated = recs[upload]  # views.csv names it with no rating: sure, as a label with no rating column
    assert (unrated.view, unrated.view_confidence, unrated.view_sure) == ("wrist", "", True)
    leg = next(r for r in recs.values() if r.part == "leg")
    assert (leg.view, leg.view_sure) == ("", False)  # no view: nothing to be sure of
    # the split file keeps no confidence either; reading it joins it again
    data.write_split(list(recs.values()), tmp_path / "split.csv", tmp_path)
    with open(tmp_path / "split.csv", newline="") as fh:
        assert "view_confidence" not in next(csv.reader(fh))
    back = {r.path.rsplit("/", 1)[-1]: r for r in data.read_split(tmp_path / "split.csv", tmp_path)}
    assert back[hand[0]].view_confidence == "low" and back[hand[1]].view_confidence == "high"


def test_a_plain_views_csv_without_a_confidence_column_rates_nothing(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FOLDERS, root)
    film = sorted((root / "Hand").rglob("*.jpg"))[0]
    (root / "views.csv").write_text(f"path,view\n{film.relative_to(root).as_posix()},finger\n")
    (named,) = [r for r in read_dataset(root) if r.view == "finger"]
    assert named.view_confidence == "" and named.view_sure
    (root / "views.csv").write_text(f"path,view,confidence\n{film.relative_to(root).as_posix()},finger,maybe\n")
    with pytest.raises(DatasetError, match="unknown confidence 'maybe'"):
        read_dataset(root)


def test_the_fracture_models_select_their_films_by_the_dataset_part_as_before(tmp_path):
    atlas = _fracatlas(tmp_path)
    shoulder = _flagged(atlas, "shoulder")
    _write_views(tmp_path / "views.csv", [("fracatlas", shoulder[0], "chest")])
    recs = read_dataset(tmp_path)
    chest = [r for r in recs if r.view == "chest"]
    selected = {r.path for r in data.fracture_records(recs, "shoulder")}
    assert chest and all(r.path in selected for r in chest)


# --- routing by region: a region's probability is the sum of its views' ----------------------------

from fracture_detection.chain import decisions  # noqa: E402
from fracture_detection.chain.decisions import BodyPartRule, decide_body_parts, part_scores  # noqa: E402
from fracture_detection.training import gate  # noqa: E402

VIEW_CLASSES = ["finger", "hand", "wrist", "forearm", "elbow", "shoulder", "other"]
VIEW_META = {"classes": VIEW_CLASSES, "reject_class": "other",
             "regions": {"finger": "hand", "hand": "hand", "wrist": "hand", "forearm": "hand", "elbow": "elbow",
                         "shoulder": "shoulder"},
             "gate": {"target_cut": 0.2, "part_floor": 0.8, "ood_threshold": 2.0}}


def test_the_rule_reads_each_views_region_from_the_metadata_once():
    rule = BodyPartRule.from_meta(VIEW_META)
    assert rule.regions == ("hand",) * 4 + ("elbow", "shoulder", "other")
    assert [rule.region_of(k, VIEW_CLASSES) for k in (2, 4)] == ["hand", "elbow"]
    old = BodyPartRule.from_meta({**VIEW_META, "classes": ["elbow", "hand", "shoulder", "other"], "regions": None})
    assert old.regions is None and old.region_of(1, ["elbow", "hand", "shoulder", "other"]) == "hand"


def test_hand_versus_wrist_is_never_a_doubt_the_region_sums_its_views():
    rule = BodyPartRule.from_meta(VIEW_META)
    probs = [[0.00, 0.45, 0.45, 0.00, 0.05, 0.00, 0.05],   # hand or wrist: the hand region, 0.90 / 0.95
             [0.30, 0.10, 0.35, 0.00, 0.20, 0.00, 0.05],   # wrist is the view, hand the region (0.75 / 0.95)
             [0.10, 0.00, 0.00, 0.10, 0.45, 0.30, 0.05],   # elbow alone beats the hand region's two views
             [0.00, 0.00, 0.10, 0.00, 0.10, 0.00, 0.80]]   # the targets' 0.20 is on the cut: kept, but which?
    best, confidence, total = part_scores(probs, rule)
    assert [VIEW_CLASSES[k] for k in best] == ["hand", "wrist", "elbow", "wrist"]
    assert confidence.tolist() == [0.9474, 0.7895, 0.4737, 0.5] and total.tolist() == [0.95, 0.95, 0.95, 0.2]
    chosen, reasons = decide_body_parts(probs, rule, [1.0] * 4)
    assert reasons == [None, decisions.REJECT_DOUBT, decisions.REJECT_DOUBT, decisions.REJECT_DOUBT]
    assert VIEW_CLASSES[chosen[0]] == "hand"
    # the same film under a model made before views: hand 0.45 alone is the part's confidence
    old = BodyPartRule(reject_index=3, target_cut=0.2, part_floor=0.8)
    assert decide_body_parts([[0.05, 0.45, 0.45, 0.05]], old, [1.0])[1] == [decisions.REJECT_DOUBT]


def test_every_chest_and_humerus_film_is_other_and_the_chain_words_name_view_and_model():
    assert decisions.part_words("forearm", "hand") == "forearm — read by the hand model"
    assert decisions.part_words("elbow", "elbow") == "elbow"
    assert decisions.part_words(None, "hand") == "hand"            # a model made before views
    assert decisions.part_words("shoulder_chest", "shoulder") == "shoulder and chest — read by the shoulder model"
    assert decisions.part_short("wrist", "hand") == "wrist (hand model)"
    assert decisions.part_words(None, None) == decisions.part_short("wrist", None) == ""
    assert {data.VIEW_REGIONS[v] for v in ("humerus", "chest", "other")} == {"other"}


def test_the_gate_budget_holds_in_each_group_not_only_over_all():
    """200 validation films: 150 of one source, all sure; 50 of another, two of them doubtful about being a
    target at all.  Pooled, the 1 % budget (2 films) is spent on the small source; per source, none of its 50
    may go (floor(0.5) = 0), so the cut comes down to its lowest film."""
    rng = np.random.default_rng(3)
    n_a, n_b = 150, 50
    target = np.r_[rng.uniform(0.9, 1.0, n_a), rng.uniform(0.8, 1.0, n_b - 2), [0.30, 0.35]]
    probs = np.c_[target, 1 - target]              # one target class, and 'other'
    scores = np.zeros(len(target))
    groups = np.array(["hand/a"] * n_a + ["hand/b"] * n_b)
    pooled = gate.choose_gate(probs, scores, reject_index=1)
    grouped = gate.choose_gate(probs, scores, reject_index=1, groups=groups, budget_by="region_source")
    assert pooled.target_cut > 0.35 and pooled.validation_target_rejected == 0.01
    assert grouped.target_cut <= 0.30 and grouped.validation_target_rejected == 0.0
    assert grouped.budget_by == "region_source"
    assert grouped.validation_by_group == {"hand/a": {"n": n_a, "rejected": 0}, "hand/b": {"n": n_b, "rejected": 0}}
    # the OOD threshold and the region floor keep within their share in every group too
    odd = np.r_[np.zeros(n_a), np.linspace(0, 1, n_b)]
    assert gate.group_threshold(odd, 0.001, groups) == 1.0 and gate.threshold_for(odd, 0.001) == 1.0


def _record(path, part, source, split, view=""):
    return data.Record(path=path, part=part, label=0, group=path, study=path, source=source, split=split, view=view)


def test_the_body_part_data_learns_views_of_the_target_regions_and_other_for_the_rest():
    from fracture_detection.training.body_part import body_part_data, body_part_data_for
    recs = [_record("a", "hand", "fracatlas", "train", "forearm"), _record("b", "hand", "fracatlas", "val", "wrist"),
            _record("c", "wrist", "roboflow", "val", "wrist"), _record("d", "shoulder", "fracatlas", "val", "chest"),
            _record("e", "humerus", "roboflow", "train", "humerus"), _record("f", "leg", "fracatlas", "val"),
            _record("g", "elbow", "roboflow", "train", "elbow"), _record("h", "mixed", "fracatlas", "train"),
            _record("i", "shoulder", "fracatlas", "train", "shoulder_chest"),
            _record("j", "finger", "roboflow", "train", "elbow")]   # a finger-class upload showing an elbow
    bp = body_part_data(recs, ["elbow", "hand", "shoulder"], 0, 0)
    assert bp.classes == ["elbow", "hand", "wrist", "forearm", "shoulder", "other"]  # views the data has
    assert bp.regions == {"hand": "hand", "wrist": "hand", "forearm": "hand", "elbow": "elbow", "shoulder": "shoulder"}
    got = {s: (bp.classes[y], str(r)) for s, y, r in zip(bp.sources, bp.y, bp.region)}
    assert got == {"a": ("forearm", "hand"), "b": ("wrist", "hand"), "c": ("wrist", "hand"), "d": ("other", "chest"),
                   "e": ("other", "humerus"), "f": ("other", "leg"), "g": ("elbow", "elbow"),
                   "i": ("shoulder", "shoulder"), "j": ("elbow", "elbow")}
    val = bp.split == "val"
    assert bp.budget_groups(val & (bp.y != bp.reject_index)).tolist() == ["hand/fracatlas", "hand/roboflow"]
    assert bp.budget_groups(val, "pooled") is None
    # regions as classes, and a model made before views (its parts, as it was trained: a wrist film is other)
    assert body_part_data(recs, ["elbow", "hand", "shoulder"], 0, 0, views=False).classes == \
        ["elbow", "hand", "shoulder", "other"]
    old = body_part_data_for(recs, {"classes": ["elbow", "hand", "shoulder", "other"], "reject_class": "other"})
    assert {s: old.classes[y] for s, y in zip(old.sources, old.y)}["c"] == "other"
    with pytest.raises(DatasetError, match="has finger, hand"):
        body_part_data_for(recs, VIEW_META)


# --- the chain names the view --------------------------------------------------------------------------

def test_a_body_part_model_made_before_views_names_its_part_as_the_view(tiny_weights, tmp_path):
    """A body-part model made before views (classes of parts, no 'regions' in its metadata: the tiny
    model's files with that key taken out, the format of every bundle before 2026-12-03): the view is
    the part."""
    import json
    from fracture_detection.chain.predictor import Predictor, describe
    from conftest import check_prediction
    old = tmp_path / "before-views"
    shutil.copytree(tiny_weights, old)
    meta = json.loads((old / "body_part.json").read_text())
    assert meta.pop("regions", None) is not None
    (old / "body_part.json").write_text(json.dumps(meta))
    predictor = Predictor(old, runtime="litert")
    assert not predictor.names_views and predictor.regions == ["elbow", "hand", "shoulder"]
    results = predictor.predict(sorted(FOLDERS.rglob("*.jpg")))
    analysed = [r for r in results if r.body_part]
    assert analysed and all(r.view == r.body_part for r in analysed)
    assert all(r.view is None for r in results if not r.body_part)
    for r in results:
        check_prediction(r.to_json())
        assert " — read by the " not in describe(r)


def _view_manifest(root):
    """The fixture films as a manifest whose hand films are named as a reader would: the fractured ones
    'wrist', the normal ones 'hand'; a views.csv names one shoulder film a chest (so: other)."""
    rows, chest = ["path,part,label"], None
    for img in sorted(FOLDERS.rglob("*.jpg")):
        folder, label = img.parent.parent.name.lower(), img.parent.name
        part = ("wrist" if label == "fractured" else "hand") if folder == "hand" else folder
        rows.append(f"{img.relative_to(FOLDERS).as_posix()},{part},{label}")
        if folder == "shoulder" and chest is None:
            chest = img.relative_to(FOLDERS).as_posix()
    shutil.copytree(FOLDERS, root)
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    (root / "views.csv").write_text(f"path,view\n{chest},chest\n")
    return root


@pytest.mark.slow
def test_a_tiny_model_of_views_routes_by_region_and_names_the_view(tmp_path):
    import json

    from conftest import BUNDLED, TRAIN, check_prediction, run_script
    from fracture_detection.chain.predictor import Predictor, describe
    root, out = _view_manifest(tmp_path / "data"), tmp_path / "weights"
    proc = run_script("training_parts.py", "--data", root, "--out", out, "--synthetic-negatives", "6",
                      "--image-size", "64", "--new-split", *TRAIN)
    assert "turned away by the gate, per source" in proc.stdout and "hand " in proc.stdout
    meta = json.loads((out / "body_part.json").read_text())
    assert meta["classes"] == ["elbow", "hand", "wrist", "shoulder", "other"]
    assert meta["regions"] == {"hand": "hand", "wrist": "hand", "elbow": "elbow", "shoulder": "shoulder"}
    assert meta["gate"]["budget_by"] == "region_source" and set(meta["gate"]["validation_by_group"]) <= {
        "hand/manifest", "elbow/manifest", "shoulder/manifest"}
    assert set(meta["validation"]["target_causes"]) == {"hand", "elbow", "shoulder"}
    t = meta["validation"]["cut_trade_off"]   # which group holds the cut, and what higher cuts cost and buy
    assert t["binding"]["group"] in meta["gate"]["validation_by_group"]
    assert t["levels"][0]["share"] is None and t["levels"][0]["cut"] == meta["gate"]["target_cut"]
    for f in BUNDLED.glob("fracture_*"):   # the bundled fracture models read what it routes
        shutil.copy(f, out / f.name)
    predictor = Predictor(out, runtime="litert")
    assert predictor.names_views and predictor.regions == ["elbow", "hand", "shoulder"]
    results = predictor.predict(sorted(FOLDERS.rglob("*.jpg")))
    for r in results:
        check_prediction(r.to_json())
        if r.body_part:
            assert r.view in meta["classes"] and meta["regions"][r.view] == r.body_part
            assert decisions.part_words(r.view, r.body_part) in describe(r)
    assert any(r.body_part for r in results)
    # the gate's cuts chosen again, the budget held where asked
    run_script("training_parts.py", "--data", root, "--out", out, "--gate-only", "--gate-budget", "region", "--quiet")
    again = json.loads((out / "body_part.json").read_text())
    assert again["regions"] == meta["regions"] and again["gate"]["budget_by"] == "region"
    assert set(again["gate"]["validation_by_group"]) <= {"hand", "elbow", "shoulder"}


# --- evaluation and the model card -------------------------------------------------------------------

def test_the_evaluation_counts_a_film_by_its_region_and_names_its_view_for_a_model_of_views():
    from fracture_detection.chain.predictor import Prediction
    from fracture_detection.evaluation.evaluate import gate_metrics, truth_name
    from fracture_detection.evaluation.report_text import gate_markdown
    recs = [_record("a", "wrist", "roboflow", "test", "wrist"), _record("b", "hand", "fracatlas", "test", "forearm"),
            _record("c", "shoulder", "fracatlas", "test", "chest"), _record("d", "leg", "fracatlas", "test"),
            _record("e", "hand", "fracatlas", "test", "hand")]
    probs = {"finger": 0.1, "hand": 0.2, "wrist": 0.3, "forearm": 0.3, "elbow": 0.05, "shoulder": 0.0, "other": 0.05}
    said = lambda view: Prediction(path=None, body_part="hand", view=view, finding="normal", part_probabilities=probs)
    refused = Prediction(path=None, finding="not_supported", rejection=decisions.REJECT_OTHER, part_probabilities=probs)
    chain = [said("wrist"), said("wrist"), refused, refused, refused]
    assert [truth_name(r, True) for r in recs] == ["hand", "hand", "chest", "leg", "hand"]
    assert [truth_name(r, False) for r in recs] == ["wrist", "hand", "shoulder", "leg", "hand"]
    g = gate_metrics(recs, chain, ["hand", "elbow", "shoulder"], views=True)
    assert g["by_region"]["hand"]["by_source"] == {"fracatlas": {"n": 2, "rejected": 1}, "roboflow": {"n": 1, "rejected": 0}}
    assert g["by_region"]["chest"]["rejected"] == 1.0 and not g["by_region"]["chest"]["target"]
    assert g["view_accuracy_on_accepted"] == 0.5 and g["views"] == {"forearm": {"wrist": 1}, "wrist": {"wrist": 1}}
    assert g["non_target_called_fractured"] == 0
    assert any("**hand** (fracatlas 1 of 2, roboflow 0 of 1)" in line for line in gate_markdown(g))
    # a model made before views: the dataset's parts, as before (the wrist film is another region)
    old = gate_metrics(recs, chain, ["elbow", "hand", "shoulder"])
    assert not old["by_region"]["wrist"]["target"] and old["view_accuracy_on_accepted"] is None


def test_the_model_card_lists_the_views_and_their_regions_from_the_metadata():
    from fracture_detection.evaluation.model_card import _body_task, _gate_rule, view_test_text, views_section
    meta = {**VIEW_META, "gate": {**VIEW_META["gate"], "budget_by": "region_source"},
            "validation": {"part_accuracy_on_accepted": 0.98, "view_accuracy_on_accepted": 0.91}}
    assert _body_task(meta) == ("body part: finger (→ hand), hand, wrist (→ hand), forearm (→ hand), elbow, shoulder, "
                                "other")
    assert "target regions' summed probability" in _gate_rule(meta) and "region's share" in _gate_rule(meta)
    text = " ".join(views_section(meta))
    assert "finger, hand, wrist, forearm → the hand model; elbow → the elbow model" in text
    assert "view on 91.0%" in text and "forearm — read by the hand model" in text
    old = {"classes": ["elbow", "hand", "shoulder", "other"], "gate": VIEW_META["gate"]}
    assert views_section(old) == [] and _body_task(old) == "body part: elbow, hand, shoulder, other"
    assert "P(elbow) + P(hand) + P(shoulder)" in _gate_rule(old)
    assert view_test_text({}) == ""
    text = view_test_text({"view_accuracy_on_accepted": 0.5, "n_view_known": 2,
                           "views": {"wrist": {"wrist": 1, "hand": 1}}})
    assert "of the 2 analysed target films" in text and "wrist: wrist 1, hand 1" in text


def test_the_bundled_model_names_views_and_routes_them_by_region():
    """The bundled body-part model learns views: every analysed fixture film is named by a view of the
    region (the fracture model) that read it."""
    from fracture_detection.chain.predictor import Predictor
    from conftest import BUNDLED
    predictor = Predictor(BUNDLED, runtime="litert")
    regions = predictor.body_info.meta["regions"]
    assert predictor.names_views and set(regions.values()) == {"elbow", "hand", "shoulder"}
    analysed = [r for r in predictor.predict(sorted(FOLDERS.rglob("*.jpg"))) if r.body_part]
    assert analysed and all(regions[r.view] == r.body_part for r in analysed)


def test_balancing_by_regions_weighs_each_region_and_other_alike_and_other_by_what_it_shows():
    from fracture_detection.training.body_part import balance_weights, body_part_data
    recs = ([_record(f"w{i}", "hand", "fracatlas", "train", "wrist") for i in range(6)]
            + [_record(f"f{i}", "hand", "fracatlas", "train", "forearm") for i in range(2)]
            + [_record(f"e{i}", "elbow", "roboflow", "train", "elbow") for i in range(4)]
            + [_record(f"s{i}", "shoulder", "roboflow", "train", "shoulder") for i in range(2)]
            + [_record(f"l{i}", "leg", "fracatlas", "train") for i in range(9)]
            + [_record(f"h{i}", "humerus", "roboflow", "train", "humerus") for i in range(1)])
    bp = body_part_data(recs, ["elbow", "hand", "shoulder"], 0, 0)
    idx = np.arange(len(bp.y))
    assert balance_weights(bp, idx, "views") is None          # the trainer's inverse class frequency
    w = balance_weights(bp, idx, "regions")
    assert w.mean() == pytest.approx(1.0)
    region = np.array([bp.regions.get(bp.classes[y], "other") for y in bp.y])
    totals = {g: w[region == g].sum() for g in ("hand", "elbow", "shoulder", "other")}
    assert all(t == pytest.approx(len(idx) / 4) for t in totals.values())      # four regions weigh alike
    cls = np.array([bp.classes[y] for y in bp.y])
    assert w[cls == "wrist"].sum() == pytest.approx(w[cls == "forearm"].sum())  # a region's views share alike
    # other's films share by the square root of their counts: 9 legs 3 parts, 1 humerus 1 part
    assert w[bp.region == "leg"].sum() == pytest.approx(3 * w[bp.region == "humerus"].sum())
    with pytest.raises(ValueError, match="unknown class balance"):
        balance_weights(bp, idx, "patients")
