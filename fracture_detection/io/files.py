"""Writing files so that nothing is ever half written: a temporary file beside the target, then a rename."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp"):
    """A temporary path beside ``path``, renamed onto it when the block succeeds and removed when
    it fails: readers never see half a file, and a failed write leaves the old file in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def deflate_zip(path: Path) -> None:
    """Rewrite the zip archive ``path`` (e.g. a ``.keras`` model, which Keras stores uncompressed) with
    every member deflated, names, order and dates kept: a fracture model's float weights take about an
    eighth less room, and Keras reads the file as before."""
    import zipfile
    path = Path(path)
    with zipfile.ZipFile(path) as src:  # read whole and closed first: Windows cannot replace an open file
        members = [(item, src.read(item)) for item in src.infolist()]
    with atomic_path(path, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w") as out:
        for item, data in members:
            packed = zipfile.ZipInfo(item.filename, date_time=item.date_time)
            packed.compress_type, packed.external_attr = zipfile.ZIP_DEFLATED, item.external_attr
            out.writestr(packed, data, compresslevel=9)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def without_nan(obj):
    """``obj`` with every NaN or infinite float (in nested dicts, lists and tuples) as None: JSON has no
    NaN, so a figure that cannot be worked out is written as null."""
    import math
    import numbers
    if isinstance(obj, dict):
        return {k: without_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [without_nan(v) for v in obj]
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral) and not math.isfinite(obj):
        return None  # numpy's floating scalars are numbers.Real too
    return obj


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
