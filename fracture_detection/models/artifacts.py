"""Saved models and their metadata.

A trained model is a few files in a weights folder: ``<name>.keras`` (Keras, for training
further and for any Keras backend), ``<name>.tflite`` (the same model for the LiteRT
interpreter, which the app and predictions.py use because it starts in a fraction of the
time; see :mod:`runtime`) and ``<name>.json``.  The repository's weights/ keep the fracture models'
``.keras`` files (to fine-tune from on a site's films); the installed package and the standalone app
carry the ``.tflite`` and ``.json`` files only (pyproject.toml's package data).  The JSON is the single source of truth for what the model is:
``task`` (``body_part`` or ``fracture``), ``part`` (fracture models), ``classes``,
``image_size``, ``backbone``, ``threshold`` and ``uncertain_band`` (fracture
models), the data source and split file, the training history and validation
metrics.  The JSON is written after the model, so a folder never lists a model
that was only half written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# the bundled models: the checkout's weights/ folder, else the copy installed with the package
# (pip install . puts weights/ at fracture_detection/weights; see pyproject.toml)
CHECKOUT_WEIGHTS = PACKAGE_ROOT / "weights"
INSTALLED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def default_weights() -> Path:
    """Where the bundled models are: the checkout's ``weights/`` when the package runs from a
    checkout, else the copy installed with it (a pip install or the standalone app)."""
    if (CHECKOUT_WEIGHTS / "body_part.json").is_file() or not (INSTALLED_WEIGHTS / "body_part.json").is_file():
        return CHECKOUT_WEIGHTS
    return INSTALLED_WEIGHTS


DEFAULT_WEIGHTS = default_weights()
BODY_PART_TASK = "body_part"
FRACTURE_TASK = "fracture"
REJECT_CLASS = "other"


class WeightsError(Exception):
    """Missing or unusable weights; ``str(err)`` is one sentence for the user."""


@dataclass
class ModelInfo:
    """A model's metadata plus where its files are (``path``: the Keras file, which the bundled
    weights leave out; ``litert_path``: the LiteRT file, or None)."""
    path: Path
    meta: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.stem)

    @property
    def litert_path(self) -> Path | None:
        litert = self.meta.get("litert") or {}
        return self.path.parent / litert["file"] if litert.get("file") else None

    @property
    def files(self) -> list[Path]:
        """The model files that exist (Keras and/or LiteRT)."""
        return [p for p in (self.path, self.litert_path) if p is not None and p.is_file()]

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def part(self) -> str | None:
        return self.meta.get("part")

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    def load(self):
        """Load the Keras model (safe mode, no training state)."""
        if not self.path.is_file():
            raise WeightsError(f"The Keras file {self.path.name} is not in {self.path.parent}; this folder "
                               "only has the model's LiteRT file.")
        import keras

        from . import locator  # noqa: F401  (registers the fracture model's own layers for loading)
        try:
            return keras.saving.load_model(self.path, compile=False, safe_mode=True)
        except Exception as exc:
            raise WeightsError(f"The model file {self.path.name} could not be loaded ({type(exc).__name__}).") \
                from None


def find_models(weights_dir: Path) -> list[ModelInfo]:
    """Every complete model (JSON + .keras and/or .tflite) in a weights folder."""
    weights_dir = Path(weights_dir)
    found = []
    if not weights_dir.is_dir():
        return found
    for meta_path in sorted(weights_dir.glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("task") not in (BODY_PART_TASK, FRACTURE_TASK):
            continue
        info = ModelInfo(weights_dir / meta.get("model_file", meta_path.stem + ".keras"), meta)
        if info.files:
            found.append(info)
    return found


def fracture_models(weights_dir: Path) -> dict[str, ModelInfo]:
    """The fracture model per part in a weights folder (none is required)."""
    return {m.part: m for m in find_models(weights_dir) if m.task == FRACTURE_TASK}


def model_set(weights_dir: Path) -> tuple[ModelInfo, dict[str, ModelInfo]]:
    """The body-part model and the fracture model per part, or :class:`WeightsError`."""
    models = find_models(weights_dir)
    body = [m for m in models if m.task == BODY_PART_TASK]
    if not body:
        raise WeightsError(
            f"No body-part model was found in {weights_dir}; train one with training_parts.py "
            "or restore the bundled weights/ folder."
        )
    return body[0], fracture_models(weights_dir)


def resolve_data_root(meta: dict, weights_dir: Path) -> Path:
    """The data folder a model was trained on (stored relative to its weights folder when possible)."""
    root = Path(meta["data"]["root"])
    return root if root.is_absolute() else (Path(weights_dir) / root).resolve()
