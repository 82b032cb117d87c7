"""predictions_test.py --leave-one-region-out on the fixtures: every non-target region left out in turn."""
import json
import shutil

from fracture_detection.training import loro
from fracture_detection.evaluation import loro_report

from conftest import FOLDERS, run_script


def test_leave_one_region_out_retrains_without_each_region_and_reports_it(tiny_weights, tmp_path):
    weights = tiny_weights.parent / "weights_loro"  # a copy at the same depth: its data path stays right
    shutil.copytree(tiny_weights, weights, dirs_exist_ok=True)
    cache = tmp_path / "trunk.npz"
    args = ["--weights", weights, "--out", tmp_path / "eval", "--bootstrap", "20", "--quiet",
            "--leave-one-region-out", "--loro-epochs", "1", "--trunk-cache", cache]
    proc = run_script("predictions_test.py", *args)
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    result = m["leave_one_region_out"]
    assert set(result["folds"]) == {"leg", "generated"}  # the fixtures' non-target regions
    n_leg = len(list((FOLDERS / "Leg").rglob("*.jpg")))
    leg = result["folds"]["leg"]
    assert leg["left_out"]["n"] == n_leg and 0 <= leg["left_out"]["rejected"] <= 1
    assert sum(leg["left_out"]["reasons"].values()) == round(leg["left_out"]["rejected"] * n_leg)
    assert result["folds"]["generated"]["left_out"]["n"] == 6  # --synthetic-negatives 6
    assert set(leg["methods"]) >= {"energy", "max_probability", "knn_cosine_k1", "mahalanobis_ppca_64"}
    assert leg["epochs_run"] == loro.HEAD_EPOCHS + 1  # the output layer first, then --loro-epochs
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "## Leave one region out" in report and "| leg | " in report and "| generated | " in report
    assert json.loads((weights / loro_report.RESULT_FILE).read_text())["folds"].keys() == result["folds"].keys()
    assert cache.is_file()  # the trunk's features, kept for the next run
    # the test figures on the saved split carry the rejection per region
    regions = m["gate"]["by_region"]
    assert regions and all(0 <= e["rejected"] <= 1 and e["n"] >= 1 for e in regions.values())
    assert "### What is not analysed, per region" in report and proc.returncode == 0
