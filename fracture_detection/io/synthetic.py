"""Made-up inputs: non-radiographs for the body-part model's ``other`` class, and DICOM files.

A clinician will sooner or later open a photograph, a scanned document or a
screenshot.  No such images ship with the X-ray datasets, so a few hundred are
made here, reproducibly: crops of the two photographs scikit-learn ships (in
colour and in grey), rendered text pages, and gradients, shapes and noise.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_WORDS = ("patient report date clinic name history imaging result normal follow up the of and "
          "invoice total page scan document form signature address referral summary").split()


def _photo(rng, photos):
    src = photos[rng.integers(len(photos))]
    h, w = src.shape[:2]
    ch, cw = int(h * rng.uniform(0.3, 1.0)), int(w * rng.uniform(0.3, 1.0))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    im = Image.fromarray(src[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.4:
        im = im.convert("L").convert("RGB")
    arr = np.asarray(im).astype("float32") * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _document(rng):
    w, h = int(rng.integers(300, 600)), int(rng.integers(400, 800))
    paper = int(rng.integers(200, 256))
    im = Image.new("L", (w, h), paper)
    d = ImageDraw.Draw(im)
    y = int(rng.integers(10, 40))
    while y < h - 20:
        x = int(rng.integers(10, 40))
        while x < w - 60:
            word = _WORDS[rng.integers(len(_WORDS))]
            d.text((x, y), word, fill=int(rng.integers(0, 80)))
            x += 8 * len(word) + int(rng.integers(6, 14))
        y += int(rng.integers(14, 26))
    if rng.random() < 0.5:
        d.rectangle([20, 20, w - 20, h - 20], outline=int(rng.integers(0, 80)))
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0)))
    rgb = im.convert("RGB")
    if rng.random() < 0.3:  # inverted, like a photographed screen
        rgb = Image.eval(rgb, lambda v: 255 - v)
    return np.asarray(rgb)


def _pattern(rng):
    size = int(rng.integers(200, 500))
    yy, xx = np.mgrid[0:size, 0:size] / size
    kind = rng.integers(3)
    if kind == 0:
        base = (np.sin(xx * rng.uniform(2, 20)) + np.cos(yy * rng.uniform(2, 20))) * 60 + 128
    elif kind == 1:
        base = rng.normal(128, rng.uniform(10, 80), (size, size))
    else:
        base = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) * 200 + 128
    rgb = np.stack([base * rng.uniform(0.3, 1.2) + rng.uniform(-40, 40) for _ in range(3)], axis=2)
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(0, 8))):
        box = sorted(rng.integers(0, size, 2)), sorted(rng.integers(0, size, 2))
        d.ellipse([box[0][0], box[1][0], box[0][1], box[1][1]], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return np.asarray(im)


def non_radiographs(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB uint8 images that are not radiographs (photos, documents, patterns)."""
    from sklearn.datasets import load_sample_images
    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    makers = (lambda: _photo(rng, photos), lambda: _document(rng), lambda: _pattern(rng))
    return [makers[i % 3]() for i in range(n)]


def split_of(index: int, count: int) -> str:
    """Which split the ``index``-th of ``count`` generated images belongs to (72/18/10, in order)."""
    cut = (0.72 * count, 0.90 * count)
    return "train" if index < cut[0] else "val" if index < cut[1] else "test"


def write_dicom(path, pixels, photometric="MONOCHROME2", bits=16, window=None, rescale=None, compress=None,
                extension=True):
    """Write grey ``pixels`` as a DICOM file (secondary capture, placeholder patient fields), for
    the tests' odd-input corpus and the speed benchmark; returns the path written."""
    from pathlib import Path

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, SecondaryCaptureImageStorage, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Doe^Jane", "SECRET-123"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint16 if bits > 8 else np.uint8).tobytes()
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if compress:
        ds.compress(RLELossless)
    path = Path(path)
    out = path if extension else path.with_suffix("")
    ds.save_as(out, enforce_file_format=True)
    return out
