"""Where fractures are: annotation boxes in (every format the data uses), suspected regions out.
Exact expected values, no model needed."""
import numpy as np
import pytest
from PIL import Image

from fracture_detection.io import boxes
from fracture_detection.evaluation import metrics
from fracture_detection.training.fracture import augment

from conftest import FOLDERS


def test_yolo_boxes_and_polygons():
    got = boxes.parse_yolo("0 0.5 0.5 0.2 0.4\n3 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n\n")
    np.testing.assert_allclose(got, [[0.4, 0.3, 0.6, 0.7], [0.1, 0.2, 0.3, 0.6]], atol=1e-6)
    assert boxes.parse_yolo("").shape == (0, 4)


def test_label_files_of_each_layout(tmp_path):
    def labelled(image: str, labels: str, text: str):
        img, txt = tmp_path / image, tmp_path / labels
        for f in (img, txt):
            f.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (40, 20)).save(img)
        txt.write_text(text)
        return img

    # FracAtlas: images/Fractured/X.jpg -> Annotations/YOLO/X.txt
    img = labelled("fracatlas/images/Fractured/IMG1.jpg", "fracatlas/Annotations/YOLO/IMG1.txt", "0 0.5 0.5 0.5 0.5\n")
    np.testing.assert_allclose(boxes.read_boxes(img), [[0.25, 0.25, 0.75, 0.75]])
    # Roboflow: train/images/X.jpg -> train/labels/X.txt (polygons)
    img = labelled("rf/train/images/a.rf.1.jpg", "rf/train/labels/a.rf.1.txt", "0 0.1 0.1 0.2 0.1 0.2 0.3\n")
    np.testing.assert_allclose(boxes.read_boxes(img), [[0.1, 0.1, 0.2, 0.3]])
    # plain folders: X.txt beside X.jpg (the committed fixtures carry their sources' boxes)
    hand = sorted((FOLDERS / "Hand" / "fractured").glob("*.jpg"))[0]
    assert boxes.read_boxes(hand).shape == (1, 4)
    assert boxes.read_boxes(sorted((FOLDERS / "Hand" / "normal").glob("*.jpg"))[0]).shape == (0, 4)


def test_boxes_follow_the_exif_orientation(tmp_path):
    """load_image shows the image rotated by its EXIF tag, so the boxes must turn with it."""
    img = tmp_path / "x.jpg"
    exif = Image.Exif()
    exif[274] = 6  # shown rotated 90° clockwise
    Image.new("L", (40, 20)).save(img, exif=exif)
    img.with_suffix(".txt").write_text("0 0.1 0.25 0.2 0.5\n")  # x 0.0-0.2, y 0.0-0.5 of the stored pixels
    np.testing.assert_allclose(boxes.read_boxes(img), [[0.5, 0.0, 1.0, 0.2]], atol=1e-6)
    assert boxes.shown_size(img) == (40, 20)


def test_letterbox_round_trip():
    lb = boxes.Letterbox(height=100, width=50)  # centred on a 100 x 100 square: 25 px black each side
    sq = lb.to_square(np.array([[0.0, 0.0, 1.0, 0.5]]))
    np.testing.assert_allclose(sq, [[0.25, 0.0, 0.75, 0.5]])
    np.testing.assert_allclose(lb.to_pixels(sq), [[0, 0, 50, 50]])
    inside = lb.cells_inside(4, 4)  # columns 0 and 3 lie on the black border
    assert inside[:, 1:3].all() and not inside[:, [0, 3]].any()


def test_grid_targets_mark_the_cells_of_a_fracture():
    t, w = boxes.grid_targets(np.array([[0.30, 0.30, 0.45, 0.45]]), 1, 4)  # inside cell (1, 1)
    expected = np.zeros((4, 4))
    expected[1, 1] = 1
    np.testing.assert_array_equal(t, expected)
    assert w[1, 1] == 1 and w[0, 0] == boxes.OUTSIDE_WEIGHT
    t, w = boxes.grid_targets(np.array([[0.0, 0.0, 0.5, 0.5]]), 1, 4)  # covers four cells
    assert t.sum() == 4 and t[:2, :2].all()
    t, w = boxes.grid_targets(np.zeros((0, 4)), 0, 4)  # a normal image: no fracture anywhere, full weight
    assert t.sum() == 0 and (w == 1).all()
    t, w = boxes.grid_targets(np.zeros((0, 4)), 1, 4)  # fractured without a box: the map learns nothing
    assert (w == 0).all()


def test_regions_from_a_map():
    m = np.zeros((4, 4), "float32")
    m[0, 0], m[0, 1] = 0.9, 0.6     # one region of two touching cells
    m[3, 3] = 0.7                   # another
    m[2, 0] = 0.2                   # below the threshold
    regions = boxes.regions_from_map(m, (400, 400), threshold=0.5, extent=0.5)
    assert regions == [{"box": [0, 0, 200, 100], "score": 0.9}, {"box": [300, 300, 400, 400], "score": 0.7}]
    # a finding always says where to look: the best region even below the threshold
    assert boxes.regions_from_map(m * 0.1, (400, 400), threshold=0.5, extent=0.5) == \
        [{"box": [0, 0, 200, 100], "score": 0.09}]
    # a region stays a compact patch around its peak: weaker touching cells (< extent x the peak) stay out
    wide = m.copy()
    wide[0, 2] = wide[1, 0] = 0.4
    assert boxes.regions_from_map(wide, (400, 400), threshold=0.5, extent=0.5)[0] == \
        {"box": [0, 0, 200, 100], "score": 0.9}
    # with extent 0.7 the 0.6 cell (0.67 of the peak) is a region of its own
    assert boxes.regions_from_map(m, (400, 400), threshold=0.5, extent=0.7) == [
        {"box": [0, 0, 100, 100], "score": 0.9}, {"box": [300, 300, 400, 400], "score": 0.7},
        {"box": [100, 0, 200, 100], "score": 0.6}]
    # a region mostly inside a stronger one's box is the same place: one region, and a third place still fits
    ring = np.zeros((6, 6), "float32")
    ring[1, 1:4] = ring[3, 1:4] = ring[2, 1] = 0.9   # a C-shaped region around the cell (2, 2) ...
    ring[2, 2] = 0.8                                  # ... that spreads no further (0.8 < 0.9 x 0.95)
    ring[5, 5], ring[0, 5] = 0.7, 0.6
    regions = boxes.regions_from_map(ring, (600, 600), threshold=0.5, extent=0.95)
    assert [r["box"] for r in regions] == [[100, 100, 400, 400], [500, 500, 600, 600], [500, 0, 600, 100]]
    assert boxes.share_inside([200, 200, 300, 300], [100, 100, 400, 400]) == 1.0
    assert boxes.share_inside([350, 100, 450, 200], [100, 100, 400, 400]) == 0.5
    # the letterbox's black border is never a region (a 400 x 200 image: columns 0 and 3 are border)
    m[0, 0] = m[3, 3] = 0.0
    regions = boxes.regions_from_map(m, (400, 200), threshold=0.5)
    assert regions == [{"box": [0, 0, 100, 100], "score": 0.6}]
    assert boxes.box_centre_inside(regions[0]["box"], np.array([[40, 40, 60, 60]]))
    assert not boxes.box_centre_inside(regions[0]["box"], np.array([[60, 60, 80, 80]]))


def test_froc_sensitivity_counts_false_regions_per_image():
    scored = [(0.9, "hit"), (0.8, "false"), (0.7, "repeat"), (0.6, "hit"), (0.5, "false"), (0.4, "hit")]
    assert metrics.froc_sensitivity(scored, n_lesions=4, n_images=2, false_per_image=0.5) == 0.5  # one false allowed
    assert metrics.froc_sensitivity(scored, n_lesions=4, n_images=2, false_per_image=1.0) == 0.75
    assert metrics.froc_sensitivity([], n_lesions=0, n_images=2) is None


def test_augmentation_moves_boxes_with_the_pixels():
    """A bright square marked by its box stays inside the moved box after any augmentation."""
    img = np.zeros((96, 96, 3), np.uint8)
    img[30:50, 20:40] = 255
    box = np.array([[20 / 96, 30 / 96, 40 / 96, 50 / 96]], "float32")
    rng = np.random.default_rng(1)
    for _ in range(8):
        out, moved = augment(img, box, rng)
        assert out.shape == img.shape and moved.shape == (1, 4)
        x0, y0, x1, y1 = (moved[0] * 96).round().astype(int)
        bright = out[..., 0] > 128
        inside = bright[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1].sum()
        assert inside >= 0.95 * bright.sum() and bright.sum() > 200


@pytest.mark.slow
def test_alignment_table_matches_the_backbones_geometry():
    """Each backbone's stride-16 cell must sit on the grid cell it predicts, or regions land off."""
    from fracture_detection.models import locator
    for backbone, shift in locator.ALIGNMENT_SHIFT.items():
        if backbone == "resnet50":
            continue  # 25 M parameters to build: the same padding arithmetic as MobileNetV2, measured when added
        assert abs(locator.measure_alignment(backbone) - shift) <= 1, backbone


def _film_with_marker():
    """A dark film with a bright bone-like band across its middle and a lead "L" near its top-left corner."""
    film = np.full((300, 240), 30, np.uint8)
    rng = np.random.default_rng(0)
    film = (film + rng.integers(0, 8, film.shape)).astype(np.uint8)
    film[100:200, 40:200] = 120                      # soft tissue
    film[130:170, 40:200] = 235                      # bone, as bright as the marker but large
    film[20:44, 20:25] = 250                         # the "L": a stroke down ...
    film[40:44, 20:36] = 250                         # ... and one across
    return film


def test_burnt_in_markers_are_found_and_kept_out_of_regions():
    film = _film_with_marker()
    found = boxes.marker_boxes(film)
    assert found == [(20, 20, 36, 44)], "the L, and not the bone"
    # on the model's letterboxed square: the cells over the L, none over the bone
    from fracture_detection.io.images import to_model_input
    square = to_model_input(np.repeat(film[:, :, None], 3, axis=2), 150)[..., 0]
    cells = boxes.marker_cells(square, film.shape, 10, 10)
    assert cells[1, 2] and not cells[5, 5] and cells.sum() <= 16
    m = np.zeros((10, 10), "float32")
    m[1, 2], m[5, 5] = 0.95, 0.6                     # the model's hottest cell is on the L
    assert boxes.regions_from_map(m, film.shape, 0.5)[0]["score"] == 0.95
    kept = boxes.regions_from_map(m, film.shape, 0.5, exclude=cells)
    assert [r["score"] for r in kept] == [0.6]
    # a film with no marker: nothing is excluded
    plain = film.copy()
    plain[20:44, 20:36] = plain[60, 60]
    assert boxes.marker_boxes(plain) == []


def test_a_region_never_spans_more_than_its_cap():
    m = np.full((28, 28), 0.9, "float32")            # a map hot everywhere
    m[14, 14] = 0.95
    top = boxes.regions_from_map(m, (448, 448), 0.5)[0]
    x0, y0, x1, y1 = top["box"]
    assert x1 - x0 <= boxes.MAX_REGION_SIDE * 448 and y1 - y0 <= boxes.MAX_REGION_SIDE * 448
    assert x0 <= 14 * 16 < x1 and y0 <= 14 * 16 < y1, "the box is around its peak"
    # without the cap the same map would make one box over the whole film
    whole = boxes.regions_from_map(m, (448, 448), 0.5, max_side=1.0)[0]["box"]
    assert whole == [0, 0, 448, 448]
