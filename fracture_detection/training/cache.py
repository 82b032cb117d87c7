"""A compact copy of the fracture models' training images, for training where the data cannot go.

The raw data (thousands of large files) stays on this machine; a cache travels (to a GPU
machine, say).  It holds each image the fracture models train on, already letterboxed by
:func:`images.to_model_input` to the model's size and stored as JPEG bytes (one channel when
the image is grey), with its record, the full ``split.csv`` the records were split by, the
layout, where the original data lives (relative to the cache file, the way a model's
metadata keeps it relative to its weights folder), and each image's fracture boxes (fractions of
its letterboxed square) and shown size, so the fracture models learn where fractures are.  ``training_fracture.py --data CACHE``
trains from it as from the data itself, and its models' metadata points at the original data.

The file is a NumPy ``.npz`` (no pickles): ``jpeg`` (all images' bytes, end to end),
``offsets`` (where each starts, and the end) and ``index`` (UTF-8 JSON).
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import data, files

FORMAT = "fracture-cache-2"


def encode(pixels: np.ndarray, quality: int = 95) -> bytes:
    """``uint8 (size, size, 3)`` pixels as JPEG bytes; grey images are stored as one channel."""
    grey = (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if grey else pixels).save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def decode(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def make_cache(data_root: Path, split_file: Path, out: Path, image_size: int = 224, layout: str = "auto",
               parts=data.TARGET_PARTS, quality: int = 95, verbose: int = 1) -> Path:
    """Cache the images ``train_fracture`` would use, split as ``split_file`` says (never a new split)."""
    from ..io.boxes import square_boxes
    data_root, out = Path(data_root), Path(out)
    records = data.read_dataset(data_root, layout)
    layout = data.detect_layout(data_root) if layout == "auto" else layout
    data.apply_split(records, split_file, data_root)
    recs = [r for p in parts for r in data.fracture_records(records, p)]
    if any(not r.split for r in recs):
        raise data.DatasetError(f"{split_file} does not list every image of {data_root} that the fracture models "
                                "train on, and a cache keeps the existing split rather than making a new one.")
    x, kept = data.load_pixels([r.path for r in recs], image_size, "Reading images for the cache", verbose)
    blobs = [encode(a, quality) for a in x]
    located = [square_boxes(recs[i].path) for i in kept]
    index = {
        "format": FORMAT, "image_size": image_size, "quality": quality, "layout": layout, "parts": list(parts),
        "data_root": os.path.relpath(data_root.resolve(), out.resolve().parent),
        "split_csv": Path(split_file).read_text(encoding="utf-8"),
        "records": [recs[i].to_row(data_root) for i in kept],
        "boxes": [np.round(b, 5).tolist() for b, _ in located],
        "shapes": [list(shape) for _, shape in located],
    }
    with files.atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, jpeg=np.frombuffer(b"".join(blobs), np.uint8),
                            offsets=np.cumsum([0] + [len(b) for b in blobs]),
                            index=np.frombuffer(json.dumps(index).encode("utf-8"), np.uint8))
    return out


@dataclass
class Cache:
    """A cache opened for training: its records (paths under ``data_root``) and their pixels."""
    path: Path
    image_size: int
    layout: str
    data_root: Path
    split_csv: str
    records: list[data.Record]
    jpeg: np.ndarray
    offsets: np.ndarray
    boxes: list
    shapes: list

    @cached_property
    def _where(self) -> dict[str, int]:
        return {r.path: i for i, r in enumerate(self.records)}

    def boxes_of(self, record) -> tuple[np.ndarray, tuple[int, int]]:
        """A record's fracture boxes (fractions of its letterboxed square) and its shown size."""
        i = self._where[record.path]
        return np.array(self.boxes[i], dtype="float32").reshape(-1, 4), tuple(self.shapes[i])

    def load_pixels(self, sources, size: int, desc: str = "", verbose: int = 1):
        """Like :func:`data.load_pixels`, for paths of this cache's records."""
        where = self._where
        if verbose:
            print(f"{desc} (from the cache {self.path.name})", flush=True)
        out = np.zeros((len(sources), size, size, 3), dtype=np.uint8)
        for n, src in enumerate(sources):
            i = where[src]
            out[n] = decode(self.jpeg[self.offsets[i]:self.offsets[i + 1]].tobytes())
        return out, np.arange(len(sources))

    def write_split(self, out_dir: Path) -> None:
        """Save the cache's split.csv, unchanged, beside the models (refusing to replace another split)."""
        path = Path(out_dir) / data.SPLIT_FILE
        if path.is_file() and path.read_text(encoding="utf-8") != self.split_csv:
            raise data.DatasetError(f"{path} holds another split than the cache {self.path.name}; "
                                    "train into another folder.")
        if not path.is_file():
            files.atomic_write_text(path, self.split_csv)


def read_cache(path: Path, image_size: int) -> Cache:
    """Open a cache made by :func:`make_cache`, for models of ``image_size`` pixels."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            index = json.loads(z["index"].tobytes().decode("utf-8"))
            jpeg, offsets = z["jpeg"], z["offsets"]
        if index.get("format") != FORMAT:
            raise ValueError
    except (OSError, ValueError, KeyError):
        raise data.DatasetError(f"{path} is neither a data folder nor a cache made by scripts/make_cache.py.") \
            from None
    if index["image_size"] != image_size:
        raise data.DatasetError(f"The cache {path.name} holds {index['image_size']}-pixel images, so train with "
                                f"--image-size {index['image_size']} or make a cache at {image_size}.")
    root = Path(os.path.normpath(path.resolve().parent / index["data_root"]))
    return Cache(path, image_size, index["layout"], root, index["split_csv"],
                 [data.record_from_row(row, root) for row in index["records"]], jpeg, offsets,
                 index["boxes"], index["shapes"])
