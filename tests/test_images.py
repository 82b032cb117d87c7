"""The image reader: every format the same pixels, every bad input one clear sentence."""
import numpy as np
import pytest
from PIL import Image

from fracture_detection.io import images
from fracture_detection.io.images import ImageError, load_image, to_model_input

from conftest import FOLDERS, stretch_to_uint8

SAMPLE = sorted((FOLDERS / "Hand").rglob("*.jpg"))[0]


@pytest.fixture
def grey():
    return np.asarray(Image.open(SAMPLE).convert("L"))


def test_grey_and_rgb_png_load_identically(tmp_path, grey):
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(grey).convert("RGB").save(tmp_path / "c.png")
    a, b = load_image(tmp_path / "g.png"), load_image(tmp_path / "c.png")
    assert a.shape == grey.shape + (3,) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, :, 0], grey)


def test_jpeg_close_to_png(tmp_path, grey):
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=95)
    diff = np.abs(load_image(tmp_path / "g.png").astype(int) - load_image(tmp_path / "g.jpg").astype(int))
    assert diff.mean() < 3


def test_exif_orientation_is_applied(tmp_path, grey):
    im = Image.fromarray(grey)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape[:2] == (grey.shape[1], grey.shape[0])


def test_sixteen_bit_png_is_windowed_to_full_range(tmp_path, grey):
    wide = (grey.astype(np.uint16) * 16 + 1000)
    Image.fromarray(wide.astype(np.uint16)).save(tmp_path / "w.png")
    out = load_image(tmp_path / "w.png")
    assert out.max() >= 250 and out.min() <= 5
    corr = np.corrcoef(out[:, :, 0].ravel(), grey.ravel())[0, 1]
    assert corr > 0.99


def test_array_input(grey):
    np.testing.assert_array_equal(load_image(grey)[:, :, 1], grey)


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty"),
    (b"this is not an image at all" * 10, "not an image format"),
])
def test_bad_files_give_one_sentence(tmp_path, content, fragment):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=fragment) as err:
        load_image(p)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


def test_truncated_jpeg(tmp_path):
    data = SAMPLE.read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|damaged"):
        load_image(p)


def test_tiny_missing_and_bomb(tmp_path, monkeypatch):
    Image.new("L", (1, 1)).save(tmp_path / "one.png")
    with pytest.raises(ImageError, match="too small"):
        load_image(tmp_path / "one.png")
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nothing.png")
    Image.new("L", (400, 400)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "big.png")


def test_letterbox_keeps_aspect_and_range(grey):
    x = to_model_input(load_image(grey), 64)
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    h, w = grey.shape
    if h != w:  # the padding is black, the image is not stretched
        axis = 1 if h > w else 0
        edge = x[:, 0] if axis == 1 else x[0]
        assert edge.max() == 0


def test_grey_images_take_the_one_plane_path_with_the_same_pixels(tmp_path, grey):
    """Grey files load as a no-copy view of one plane; letterboxing it must give exactly the
    pixels of the full RGB path the bundled models were trained with."""
    Image.fromarray(grey).save(tmp_path / "g.png")
    fast = load_image(tmp_path / "g.png")
    assert images.is_grey(fast) and not fast.flags.writeable
    full = np.ascontiguousarray(fast)  # an ordinary RGB array with equal channels
    assert not images.is_grey(full)
    for size in (64, 160, 224):
        np.testing.assert_array_equal(to_model_input(fast, size), to_model_input(full, size))
    assert images.colourfulness(fast) == images.colourfulness(full) == 0.0


def test_heatmap_is_the_bilinear_resize_of_the_letterboxed_map():
    from fracture_detection.chain.predictor import cam_to_image
    cam = np.random.default_rng(1).random((7, 7)).astype("float32")
    for h, w in ((300, 500), (500, 300), (224, 224), (41, 97)):
        side = max(h, w)
        square = np.asarray(Image.fromarray(cam, mode="F").resize((side, side), Image.BILINEAR))
        top, left = (side - h) // 2, (side - w) // 2
        np.testing.assert_allclose(cam_to_image(cam, (h, w)), square[top:top + h, left:left + w], atol=1e-5)


@pytest.mark.parametrize("dtype, low, high", [(np.uint16, 0, 4096), (np.int16, -1024, 3000), (np.uint8, 0, 256)])
@pytest.mark.parametrize("transform", [None, lambda v: 1000.0 - 0.5 * v.astype("float64"),
                                       lambda v: np.clip((v.astype("float64") - 900) / 800, 0, 1)])
def test_integer_pixels_scale_through_a_lookup_table_exactly(dtype, low, high, transform):
    rng = np.random.default_rng(3)
    pixels = (rng.normal((low + high) / 2, (high - low) / 6, (300, 200))).clip(low, high - 1).astype(dtype)
    got = images._to_uint8(pixels, transform)
    expected = stretch_to_uint8(transform(pixels) if transform else pixels)  # per pixel
    if dtype == np.uint8 and transform is None:
        expected = pixels  # 8-bit input is used as it is
    assert got.shape == pixels.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1 and (got != expected).mean() < 1e-3
