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

from fracture_detection.images import ImageError, find_images, load_image
from fracture_detection.synthetic import write_dicom

from conftest import FOLDERS

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
    "dicom_window": lambda p, g: write_dicom(p / "a.dcm", g.astype(np.uint16) * 16 + 500, bits=13,
                                        window=(500 + 128 * 16, 256 * 16)),
    "dicom_rescale": lambda p, g: write_dicom(p / "a.dcm", g.astype(np.uint16) * 4, bits=12, rescale=(2.0, -100.0)),
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


def test_no_patient_data_leaves_the_reader(tmp_path, grey):
    """DICOM headers carry names and ids: nothing of them may reach a result."""
    path = write_dicom(tmp_path / "a.dcm", grey.astype(np.uint16) * 16, bits=12)
    rgb = load_image(path)
    assert isinstance(rgb, np.ndarray)  # pixels only; the reader returns nothing else


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
