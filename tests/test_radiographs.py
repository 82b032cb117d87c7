"""Augmented copies of one radiograph count once in the cuts and the validation figures (issue 24): the
Roboflow export holds about three copies of each upload in its train folder."""
import numpy as np
import pytest

from fracture_detection.chain import decisions
from fracture_detection.evaluation import metrics
from fracture_detection.io.data import Record


def _film(i, label, source="roboflow", upload=None, appliance="none"):
    return Record(path=f"train/images/{upload or i}.rf.{i}.jpg", part="elbow", label=label,
                  group=f"roboflow:{upload or i}", study=f"roboflow:{upload or i}", source=source,
                  appliance=appliance if label else "")


def test_copies_of_an_upload_share_a_radiograph_and_other_films_are_their_own():
    a, b = _film(1, 1, upload="u"), _film(2, 1, upload="u")
    assert a.radiograph == b.radiograph
    assert _film(3, 0, upload="u").radiograph != a.radiograph  # a reused generic name with another label
    f1 = Record(path="x/IMG1.jpg", part="hand", label=1, group="patient7", study="s", source="fracatlas")
    f2 = Record(path="x/IMG2.jpg", part="hand", label=1, group="patient7", study="s", source="fracatlas")
    assert f1.radiograph != f2.radiograph  # one patient's two films are two radiographs


def test_one_per_radiograph_averages_copies_in_first_appearance_order():
    y, p, t = metrics.one_per_radiograph(["a", "b", "a", "c", "a"], [1, 0, 1, 1, 1], [0.9, 0.2, 0.6, 0.5, 0.6],
                                         [False, None, False, True, False])
    assert y.tolist() == [1, 0, 1] and t == [False, None, True]
    assert np.allclose(p, [0.7, 0.2, 0.5])


def _examples(records, probs):
    from fracture_detection.training.fracture import Examples
    n = len(records)
    return Examples(records, np.zeros((n, 4, 4, 3), np.uint8), np.array([r.label for r in records]),
                    np.array(["val"] * n), [np.zeros((0, 4))] * n, [(4, 4)] * n), \
        {"probs": np.array(probs, float), "maps": np.zeros((n, 2, 2)), "auc_plain": None, "auc_mirrored": None,
         "mirror": False}


@pytest.mark.slow  # the training package imports Keras
def test_three_copies_of_one_normal_film_at_the_top_do_not_outvote_nine_fractured_radiographs():
    # nine fractured radiographs from 0.91 to 0.99, one normal upload at 0.995 in three copies, and
    # normal films below 0.5: counted by copy, "Likely FRACTURE" from 0.91 would be 9 of 12 right (75 %)
    # and no cut reaches 90 % but the very top; counted by radiograph it is 9 of 10, 90 %
    recs = [_film(i, 1) for i in range(9)] + [_film(100 + k, 0, upload="n") for k in range(3)] + \
        [_film(200 + i, 0) for i in range(30)] + [_film(300 + i, 1) for i in range(6)]
    probs = [0.91 + 0.01 * i for i in range(9)] + [0.995] * 3 + [0.1 + 0.01 * i for i in range(30)] + \
        [0.02 + 0.01 * i for i in range(6)]
    val, out = _examples(recs, probs)
    by_copy = decisions.select_cuts(val.y, probs, np.array([r.treated is False for r in recs]))
    assert by_copy["fracture_from"] > max(probs)  # counted by copy: nothing would be called fractured
    from fracture_detection.training.fracture import fracture_metadata_from_validation
    meta = fracture_metadata_from_validation(val, out, n_boot=20)
    assert meta["cuts"]["fracture_from"] == 0.91
    assert meta["cuts"]["counted"] == "radiographs"
    assert meta["validation"]["n"] == len(recs) - 2 and meta["validation"]["n_films"] == len(recs)
    assert meta["amber"]["n_films"] == len(recs) - 2
    u = meta["validation"]["by_kind"]["untreated"]
    assert u["n_fractured"] == 15 and u["n_normal"] == 31
