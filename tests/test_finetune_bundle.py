"""Fine-tuning from the bundle itself: the repository's weights/ carry each fracture model's Keras file
(.keras) for this, and `training_fracture.py --init-from weights` starts from them on a site's films."""
import csv
import json
import shutil

import numpy as np
import pytest

from conftest import BUNDLED, FOLDERS, check_prediction, run_script

PARTS = ("elbow", "hand")  # the bundle's every-region model (elbow) and the hand's own: both kinds, in a minute


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_fine_tune_from_the_bundle_reports_before_and_after_and_loads(tmp_path):
    missing = [p for p in PARTS if not (BUNDLED / f"fracture_{p}.keras").is_file()]
    assert not missing, f"weights/ lacks fracture_{missing[0]}.keras, which fine-tuning from the bundle starts from"
    site, out = tmp_path / "films", tmp_path / "site"
    shutil.copytree(FOLDERS, site)
    # a validation film with a cast in view, so that the detector's cut is chosen again on the site's films
    labels = (site / "appliances.csv").read_text().replace("Hand/fractured/hand1_0.jpg,none",
                                                             "Hand/fractured/hand1_0.jpg,cast")
    (site / "appliances.csv").write_text(labels + "".join(f"{p.title()}/normal/{p}0_{i}.jpg,none\n"
                                                          for p in PARTS for i in range(4)))
    # --min-films 1 1: the hand's validation films (one fractured, one normal) are enough to choose its cuts
    # again; the elbow's (no fractured one) are not, so it keeps the bundle's
    proc = run_script("training_fracture.py", "--data", site, "--layout", "folders", "--init-from", BUNDLED,
                      "--out", out, "--smoke", "--quiet", "--parts", *PARTS, "--min-films", "1", "1")
    assert "# Fine-tuning: before and after" in proc.stdout  # the report is printed too

    split = _rows(out / "split.csv")
    r = json.loads((out / "fine_tune.json").read_text())
    assert r["from"] == str(BUNDLED) and set(r["parts"]) == set(PARTS)
    for part, e in r["parts"].items():
        test = [x for x in split if x["split"] == "test" and x["part"] == part]
        assert (e["n_fractured"], e["n_normal"]) == (sum(x["label"] == "1" for x in test),
                                                     sum(x["label"] == "0" for x in test)), part
        for when in ("before", "after"):
            f = e[when]
            assert f["missed"]["n"] == e["n_fractured"] and (f["uncertain"] is None or 0 <= f["uncertain"] <= 1), \
                (part, when)
    md = (out / "fine_tune.md").read_text()
    assert "| hand |" in md and "| before |" in md and "| after |" in md and "not a diagnosis" in md

    for part in PARTS:
        bundle = json.loads((BUNDLED / f"fracture_{part}.json").read_text())
        meta = json.loads((out / f"fracture_{part}.json").read_text())
        # architecture, image size and frozen trunk from the bundle's model, not --smoke's 96 px
        assert meta["image_size"] == bundle["image_size"] and meta["backbone"] == bundle["backbone"]
        assert meta["training"]["frozen_through"] == bundle["training"]["frozen_through"]
        assert meta["training"]["init_from"] == str(BUNDLED) and meta["fine_tune"]["from"] == str(BUNDLED)
        if "appliance" in bundle:  # the detector reads the frozen trunk: carried over, its cut chosen again
            assert "appliance_probability" in meta["litert"]["outputs"]
            cut = meta["appliance"]["cut"]
            assert "kept_from" not in cut and (cut["n_with"], cut["n_without"]) == (1, 3), cut
            assert "cast/implant cut is kept" not in proc.stderr and "Cast/implant detector: " in md
    elbow, bundle_elbow = (json.loads((d / "fracture_elbow.json").read_text()) for d in (out, BUNDLED))
    assert {k: v for k, v in elbow["cuts"].items() if k != "kept_from"} == bundle_elbow["cuts"]
    assert elbow["uncertain_band"] == bundle_elbow["uncertain_band"] and "kept from" in elbow["fine_tune"]["figures"]
    assert elbow["amber"]["bins"] == bundle_elbow["amber"]["bins"] and "kept_from" in elbow["amber"]
    hand = json.loads((out / "fracture_hand.json").read_text())
    assert "chosen again" in hand["fine_tune"]["figures"] and "kept_from" not in hand["cuts"]
    assert hand["amber"]["n_films"] == 2  # the rank inside "uncertain" from the site's two validation films
    # the shoulder was not fine-tuned: the bundle's model, copied, so the folder is complete
    assert (out / "fracture_shoulder.tflite").read_bytes() == (BUNDLED / "fracture_shoulder.tflite").read_bytes()

    # the folder is a models folder as it is: predictions.py runs the fine-tuned hand model
    film = site / "Hand" / "fractured" / "hand1_3.jpg"
    after = json.loads(run_script("predictions.py", "--weights", out, "--json", film).stdout)
    check_prediction(after)
    assert after["model"] == "fracture_hand" and after["uncertain_band"] == hand["uncertain_band"]
    before = json.loads(run_script("predictions.py", "--json", film).stdout)
    assert after["fracture_probability"] != before["fracture_probability"]  # one epoch did train it


@pytest.mark.slow
def test_a_bundle_without_a_parts_keras_file_is_one_sentence(tmp_path):
    """An installed copy of the app carries no .keras file: fine-tuning it names the part, writes nothing."""
    bundle = tmp_path / "installed"
    bundle.mkdir()
    for f in BUNDLED.iterdir():
        if f.is_file() and f.name != "fracture_hand.keras":
            (bundle / f.name).symlink_to(f)
    proc = run_script("training_fracture.py", "--data", FOLDERS, "--init-from", bundle, "--out", tmp_path / "out",
                      "--smoke", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no Keras model (fracture_<part>.keras) of hand" in last


def test_bundle_names_the_bundled_models_folder(tmp_path, monkeypatch):
    """`--init-from bundle` is the bundled models (a clone's weights/); a folder of that name wins."""
    from pathlib import Path

    from fracture_detection import cli
    from fracture_detection.models import artifacts
    assert cli.models_folder("bundle") == artifacts.default_weights() == BUNDLED
    assert cli.models_folder("weights-site") == Path("weights-site")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundle").mkdir()
    assert cli.models_folder("bundle") == Path("bundle")


def test_too_few_site_films_keep_the_starting_cuts_and_say_why():
    """Start.kept_figures and plan_appliance_cut (no model): with fewer validation films than --min-films
    the starting model's cuts, amber bins and detector cut are kept, with the counts; else chosen again."""
    from fracture_detection.io.data import Record
    from fracture_detection.models.artifacts import ModelInfo
    from fracture_detection.training.finetune import Start
    meta = {"cuts": {"no_fracture_below": 0.2, "fracture_from": 0.8}, "amber": {"bins": [{"n": 9}]}}
    start = Start(BUNDLED, {"hand": ModelInfo(BUNDLED / "fracture_hand.keras", meta)}, min_films=(2, 3))
    kept = start.kept_figures("hand", [1, 0, 0, 0])
    assert kept["uncertain_band"] == [0.2, 0.8] and kept["amber"]["bins"] == [{"n": 9}]
    assert "1 fractured and 3 normal validation films" in kept["cuts"]["kept_from"] and "kept" in start.notes["hand"]
    assert "kept_from" not in meta["cuts"]  # the starting model's metadata is left as it was
    assert start.kept_figures("hand", [1, 1, 0, 0, 0]) is None and "chosen again" in start.notes["hand"]

    def film(i, label, appliance, split="val"):
        return Record(f"h{i}.jpg", "hand", label, f"g{i}", f"s{i}", "folders", split=split, appliance=appliance)
    films = [film(0, 1, "cast"), film(1, 1, "none"), film(2, 0, "none"), film(3, 1, "cast", "train"), film(4, 0, "")]
    start.plan_appliance_cut(films)
    assert "1 validation films with a cast, splint or implant and 2 without" in start.appliance_kept
    start.plan_appliance_cut(films + [film(5, 1, "implant"), film(6, 0, "none")])
    assert start.appliance_kept is None
