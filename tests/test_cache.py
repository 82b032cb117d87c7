"""Training from a cache of letterboxed images, as on a GPU machine that the raw data cannot reach."""
import json

import numpy as np
import pytest

from fracture_detection.models import artifacts
from fracture_detection.training import cache, trainer
from fracture_detection.io import data
from fracture_detection.io.images import load_image, to_model_input

from conftest import FOLDERS, TINY, run_script

pytestmark = pytest.mark.slow  # trains a model


def test_training_from_a_cache_keeps_its_split_and_points_at_the_original_data(tmp_path):
    weights = tmp_path / "weights"
    records = trainer.prepare_split(data.read_dataset(FOLDERS), FOLDERS, weights, seed=7)
    again = data.assign_splits(data.read_dataset(FOLDERS), seed=42)
    assert [r.split for r in records] != [r.split for r in again], "training's own seed must give another split"
    split_text = (weights / "split.csv").read_text()

    path = cache.make_cache(FOLDERS, weights / "split.csv", tmp_path / "cache" / "fracture.npz", image_size=64)
    c = cache.read_cache(path, 64)
    wanted = [r for p in data.TARGET_PARTS for r in data.fracture_records(records, p)]
    assert [r.path for r in c.records] == [r.path for r in wanted] and c.layout == "folders"
    assert [r.split for r in c.records] == [r.split for r in wanted] and c.split_csv == split_text
    x, _ = c.load_pixels([wanted[0].path], 64, verbose=0)
    assert np.abs(x[0].astype(int) - to_model_input(load_image(wanted[0].path), 64)).mean() < 2  # JPEG q95

    out = tmp_path / "out"
    run_script("training_fracture.py", "--data", path, "--out", out, "--parts", "hand", *TINY)
    assert (out / "split.csv").read_text() == split_text, "the cache's whole split.csv, unchanged"
    meta = json.loads((out / "fracture_hand.json").read_text())
    assert artifacts.resolve_data_root(meta, out) == FOLDERS.resolve() and meta["data"]["layout"] == "folders"
    hand = [r for r in wanted if r.part == "hand"]
    assert meta["data"]["counts"]["train"]["hand"]["normal"] == sum(r.split == "train" and not r.label for r in hand)

    wrong = run_script("training_fracture.py", "--data", path, "--out", tmp_path / "o2", *TINY, "--image-size", "96",
                       check=False)
    assert wrong.returncode == 2 and "64-pixel images" in wrong.stderr and "Traceback" not in wrong.stderr
