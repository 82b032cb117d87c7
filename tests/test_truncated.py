"""JPEGs that end early: read as far as they go with a warning, refused only when too little is left."""
import threading

import numpy as np
import pytest
from PIL import ImageFile

from fracture_detection.io import images
from fracture_detection.io.images import ImageError, read_image

from conftest import FOLDERS

SOURCES = sorted(FOLDERS.rglob("*.jpg"))[::5]  # real fixture radiographs (baseline JPEGs)


def _cut(tmp_path, src, keep: int):
    p = tmp_path / f"{src.stem}_{keep}.jpg"
    p.write_bytes(src.read_bytes()[:keep])
    return p


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_a_few_bytes_short_is_read_whole_with_a_warning(tmp_path, src):
    whole, warning = read_image(src)
    assert warning is None
    for missing in (1, 2):  # the end-of-image marker: nothing of the picture is lost
        rgb, warning = read_image(_cut(tmp_path, src, len(src.read_bytes()) - missing))
        assert warning == "The file ends early (truncated), but the whole picture could be read."
        np.testing.assert_array_equal(rgb, whole)
    rgb, warning = read_image(_cut(tmp_path, src, len(src.read_bytes()) - 8))  # a little more (a 2 kB file)
    assert rgb.shape == whole.shape and "ends early" in warning and warning.endswith(".")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_the_line_is_the_share_of_rows_decoded(tmp_path, src):
    """Cut at every 5 % of the file: analysed (with a warning naming what is missing) exactly when at
    least MIN_DECODED_SHARE of the rows decoded; refused with one sentence otherwise."""
    from PIL import Image
    data = src.read_bytes()
    whole = np.asarray(Image.open(src).convert("L"))
    seen = {"analysed": 0, "refused": 0}
    for frac in np.arange(0.05, 1.0, 0.05):
        p = _cut(tmp_path, src, int(len(data) * frac))
        try:
            rgb, warning = read_image(p)
        except ImageError as err:
            assert "truncated" in str(err) and str(err).endswith(".") and "\n" not in str(err)
            seen["refused"] += 1
            continue
        seen["analysed"] += 1
        grey_rows = np.all(rgb[:, :, 0] == 128, axis=1)
        decoded = 1 - (len(grey_rows) - (np.nonzero(~grey_rows)[0][-1] + 1)) / len(grey_rows)
        assert decoded >= images.MIN_DECODED_SHARE
        rows = int(decoded * len(grey_rows)) - 16  # the last block row may be partly decoded
        assert np.abs(rgb[:rows, :, 0].astype(int) - whole[:rows].astype(int)).mean() < 3  # the top is the picture
        assert "ends early" in warning and ("grey" in warning or "whole picture" in warning)
    assert seen["refused"] >= 10  # a file cut to half or less is never analysed


def test_a_truncated_file_goes_through_the_chain_with_its_warning(tmp_path, tiny_weights):
    from fracture_detection.chain.predictor import Predictor
    src = SOURCES[0]
    cut = _cut(tmp_path, src, len(src.read_bytes()) - 2)
    short = _cut(tmp_path, src, len(src.read_bytes()) // 3)
    p = Predictor(tiny_weights)
    good, bad, plain = p.predict([cut, short, src])
    assert good.finding != "error" and "ends early" in good.warning
    assert good.part_probabilities == plain.part_probabilities and plain.warning is None
    assert bad.finding == "error" and "truncated" in bad.message and bad.warning is None
    # a caller that reads the file itself (the app) passes the pair on
    again = p.predict_loaded([str(cut)], [read_image(cut)])[0]
    assert again.warning == good.warning


def test_readers_in_threads_never_switch_pillow_to_accept_truncated_files(tmp_path):
    """Pillow's LOAD_TRUNCATED_IMAGES is process-wide: it must stay off while truncated files are read
    in parallel, or another thread would take a broken file silently."""
    src = SOURCES[0]
    cut = _cut(tmp_path, src, len(src.read_bytes()) - 4)
    seen = []

    def read():
        for _ in range(20):
            read_image(cut)
            seen.append(ImageFile.LOAD_TRUNCATED_IMAGES)

    threads = [threading.Thread(target=read) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert seen and not any(seen)
