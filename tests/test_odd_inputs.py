"""Whatever a system exports: a corpus of odd and bad inputs made from a real fixture X-ray.

Each case is a file; each must load to the same picture (good inputs) or give one sentence
(bad inputs), and a run over all of them must analyse the good ones regardless.
"""
import io
import os
import zlib

import numpy as np
import pytest
from PIL import Image

from fracture_detection.io.images import ImageError, find_images, load_image
from fracture_detection.io.synthetic import write_dicom

from conftest import FOLDERS, stretch_to_uint8

SOURCE = sorted((FOLDERS / "Shoulder" / "normal").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def grey():
    return np.asarray(Image.open(SOURCE).convert("L"))


def _corr(a, b):
    return np.corrcoef(a[:, :, 0].ravel().astype(float), b.ravel().astype(float))[0, 1]


GOOD = {
    "png8": lambda p, g: Image.fromarray(g).save(p / "a.png"),
    "png16": lambda p, g: Image.fromarray(g.astype(np.uint16) * 257).save(p / "a.png"),
    "png_palette": lambda p, g: Image.fromarray(g).convert("P").save(p / "a.png"),
    "png_rgba": lambda p, g: Image.fromarray(g).convert("RGBA").save(p / "a.png"),
    "png_la": lambda p, g: Image.fromarray(g).convert("LA").save(p / "a.png"),
    "jpeg_rgb": lambda p, g: Image.fromarray(g).convert("RGB").save(p / "a.jpg", quality=95),
    "jpeg_progressive": lambda p, g: Image.fromarray(g).save(p / "a.jpg", quality=95, progressive=True),
    "jpeg_cmyk": lambda p, g: Image.fromarray(g).convert("CMYK").save(p / "a.jpg", quality=95),
    "jpeg_uppercase_ext": lambda p, g: Image.fromarray(g).save(p / "A.JPEG", quality=95),
    "bmp": lambda p, g: Image.fromarray(g).save(p / "a.bmp"),
    "tiff": lambda p, g: Image.fromarray(g).save(p / "a.tif"),
    "tiff16": lambda p, g: Image.fromarray(g.astype(np.uint16) * 40).save(p / "a.tiff"),
    "webp": lambda p, g: Image.fromarray(g).save(p / "a.webp", lossless=True),
    "non_ascii_name": lambda p, g: Image.fromarray(g).save(p / "Röntgen_ręka_手.png"),
    "png_named_jpg": lambda p, g: Image.fromarray(g).save(p / "a.jpg", format="PNG"),
    "dicom16": lambda p, g: write_dicom(p / "a.dcm", g.astype(np.uint16) * 16, bits=12),
    "dicom8": lambda p, g: write_dicom(p / "a.dcm", g, bits=8),
    "dicom_monochrome1": lambda p, g: write_dicom(p / "a.dcm", 4095 - g.astype(np.uint16) * 16, "MONOCHROME1", bits=12),
    "dicom_no_extension": lambda p, g: write_dicom(p / "a.dcm", g.astype(np.uint16) * 16, bits=12, extension=False),
    "dicom_rle": lambda p, g: write_dicom(p / "a.dcm", g.astype(np.uint16) * 16, bits=12, compress=True),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_inputs_load_as_the_same_picture(case, grey, tmp_path):
    GOOD[case](tmp_path, grey)
    (path,) = find_images(tmp_path)
    rgb = load_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == grey.shape + (3,)
    # MONOCHROME1 stores the picture inverted; once read it must look like the original
    assert _corr(rgb, grey) > 0.98, "inverted, windowed or scrambled pixels"


# --- DICOM pixels against the standard's formulas (PS3.3 C.11), computed here without pydicom ---

def _window(x, centre, width):
    """VOI LUT linear window (C.11.2.1.2.1), output in [0, 1]."""
    x = np.asarray(x, dtype="float64")
    y = (x - (centre - 0.5)) / (width - 1) + 0.5
    return np.where(x <= centre - 0.5 - (width - 1) / 2, 0.0, np.where(x > centre - 0.5 + (width - 1) / 2, 1.0, y))


def _lut(x, first, data):
    """VOI LUT Sequence (C.11.2.1.1): values below the first mapped value take the first entry,
    values past the last take the last."""
    return np.asarray(data, dtype="float64")[np.clip(np.asarray(x, dtype=np.int64) - first, 0, len(data) - 1)]


LUT_FIRST, LUT_DATA = 1200, np.round(65535 * np.linspace(0, 1, 1024) ** 0.5).astype(np.uint16)


def _with_voi_lut_sequence(path):
    import pydicom
    from pydicom.dataset import Dataset
    ds = pydicom.dcmread(path)
    item = Dataset()
    item.add_new(0x00283002, "US", [len(LUT_DATA), LUT_FIRST, 16])  # LUT Descriptor
    item.add_new(0x00283006, "US", LUT_DATA.tolist())               # LUT Data
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    return path


# each case: (write the file from the 12-bit stored pixels s = grey * 16, the 8-bit pixels expected)
DICOM_CASES = {
    # a narrow window (80-120 of 255 in the picture): most pixels clip to black or white
    "narrow_window": (lambda p, s: write_dicom(p, s, bits=12, window=(1600, 640)),
                      lambda s: stretch_to_uint8(_window(s, 1600, 640))),
    # a negative slope: modality values 4095 - s, a picture stored inverted
    "negative_slope": (lambda p, s: write_dicom(p, s, bits=12, rescale=(-1.0, 4095.0)),
                       lambda s: stretch_to_uint8(4095.0 - s)),
    # a negative slope and a window on the modality values (the stored 1280-1920, inverted)
    "negative_slope_window": (lambda p, s: write_dicom(p, s, bits=12, rescale=(-2.0, 8000.0), window=(4800, 1280)),
                              lambda s: stretch_to_uint8(_window(8000.0 - 2.0 * s, 4800, 1280))),
    # a VOI LUT Sequence (a square-root curve from stored value 1200 on)
    "voi_lut_sequence": (lambda p, s: _with_voi_lut_sequence(write_dicom(p, s, bits=12)),
                         lambda s: stretch_to_uint8(_lut(s, LUT_FIRST, LUT_DATA))),
    # MONOCHROME1 (low values white) with a window: windowed, then inverted for display
    "monochrome1_window": (lambda p, s: write_dicom(p, 4095 - s, "MONOCHROME1", bits=12, window=(2495, 640)),
                           lambda s: 255 - stretch_to_uint8(_window(4095 - s, 2495, 640))),
}


@pytest.mark.parametrize("case", sorted(DICOM_CASES))
def test_dicom_pixels_follow_the_standard(case, grey, tmp_path):
    write, expected = DICOM_CASES[case]
    stored = grey.astype(np.int64) * 16
    path = write(tmp_path / "a.dcm", stored.astype(np.uint16))
    got = load_image(path)[:, :, 0].astype(int)
    want = expected(stored).astype(int)
    assert np.abs(got - want).max() <= 1, f"{case}: off by up to {np.abs(got - want).max()} grey levels"
    # the case is one a reader ignoring its LUTs would fail: the plain stored pixels differ
    assert np.abs(stretch_to_uint8(stored).astype(int) - want).mean() > 10


def _exif_rotated(p, g):
    im = Image.fromarray(g)
    exif = im.getexif()
    exif[0x0112] = 8
    im.save(p / "a.jpg", exif=exif, quality=95)


def test_exif_rotation(grey, tmp_path):
    _exif_rotated(tmp_path, grey)
    rgb = load_image(tmp_path / "a.jpg")
    assert _corr(rgb, np.rot90(grey)) > 0.98


BAD = {
    "empty": (lambda p: (p / "a.png").write_bytes(b""), "empty"),
    "text_as_png": (lambda p: (p / "a.png").write_text("hello, not an image"), "not an image format"),
    "html_as_jpg": (lambda p: (p / "a.jpg").write_text("<html><body>404</body></html>"), "not an image format"),
    "truncated_png": (lambda p: (p / "a.png").write_bytes(_png_bytes()[:200]), "truncated|damaged"),
    "truncated_jpeg": (lambda p: (p / "a.jpg").write_bytes(SOURCE.read_bytes()[:500]), "truncated|damaged"),
    "garbled_jpeg": (lambda p: (p / "a.jpg").write_bytes(SOURCE.read_bytes()[:20] + os.urandom(3000)),
                     "damaged|truncated|not an image"),
    "one_pixel": (lambda p: Image.new("L", (1, 1)).save(p / "a.png"), "too small"),
    "thin_strip": (lambda p: Image.new("L", (2000, 3)).save(p / "a.png"), "too small"),
    "bomb": (lambda p: (p / "a.png").write_bytes(_bomb_png()), "too large"),
    "dicom_no_pixels": (lambda p: _dicom_without_pixels(p / "a.dcm"), "holds no image"),
    "dicom_garbage": (lambda p: (p / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(500)),
                      "DICOM|no image"),
    "directory_named_png": (lambda p: (p / "a.png").mkdir(), "folder"),
}


def _png_bytes():
    buf = io.BytesIO()
    Image.open(SOURCE).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png():
    """A tiny file that claims 30000 x 30000 pixels."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = (30000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    raw = zlib.compress(b"\0" * 10000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _dicom_without_pixels(path):
    out = write_dicom(path, np.zeros((40, 40), np.uint16), bits=12)
    import pydicom
    ds = pydicom.dcmread(out)
    del ds.PixelData
    ds.save_as(out)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_give_one_sentence(case, tmp_path):
    make, expected = BAD[case]
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(ImageError, match=expected) as err:
        load_image(path)
    msg = str(err.value)
    assert msg.endswith(".") and "\n" not in msg and "Traceback" not in msg


def test_unreadable_file(tmp_path, grey):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    Image.fromarray(grey).save(tmp_path / "a.png")
    os.chmod(tmp_path / "a.png", 0)
    with pytest.raises(ImageError, match="permission"):
        load_image(tmp_path / "a.png")


def test_fuzzed_files_never_crash(tmp_path):
    """Randomly damaged copies of real files: a picture or an ImageError, never anything else."""
    rng = np.random.default_rng(0)
    seeds = [SOURCE.read_bytes(), _png_bytes()]
    for i in range(150):
        data = bytearray(seeds[i % 2])
        for _ in range(int(rng.integers(1, 20))):
            pos = int(rng.integers(0, len(data)))
            op = rng.integers(3)
            if op == 0:
                data[pos] = int(rng.integers(0, 256))
            elif op == 1:
                del data[pos:pos + int(rng.integers(1, 200))]
            else:
                data[pos:pos] = rng.bytes(int(rng.integers(1, 50)))
        p = tmp_path / f"f{i}{'.jpg' if i % 2 == 0 else '.png'}"
        p.write_bytes(bytes(data))
        try:
            out = load_image(p)
            assert out.dtype == np.uint8 and out.ndim == 3
        except ImageError:
            pass
