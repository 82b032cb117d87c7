"""Running the saved models fast: LiteRT (TensorFlow Lite) files beside the Keras ones.

Importing TensorFlow takes about 9 s on a 2-core machine and loading four ``.keras`` files
another 10 s; the LiteRT interpreter imports in 0.2 s, loads a model in milliseconds and
runs MobileNetV2 in a few milliseconds per image.  So each saved model is also exported
as ``<name>.tflite`` (the *inference model* below: preprocessing included, the same
pixels in) and its metadata names the file.  A model without one runs through Keras
instead: same outputs, slower start.  Where ``ai-edge-litert`` has no build (Intel macOS),
TensorFlow's own ``tf.lite`` interpreter runs the same files.

The inference model of a fracture model returns ``[probability, cell probabilities]``: the
image's fracture probability and, from the same forward pass, the probability of a fracture in
each cell of a grid over the image (see :mod:`locator`), which the app draws and turns into
suspected regions.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.files import atomic_path, atomic_write_json, deflate_zip
from .artifacts import WeightsError

RUNTIMES = ("auto", "litert", "keras")


def _interpreter_class():
    """LiteRT's interpreter; TensorFlow's copy of it where ai-edge-litert has no build (Intel
    macOS), at TensorFlow's slower start; None without either."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        import warnings

        import tensorflow as tf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter says it is deprecated in favour of LiteRT
            return tf.lite.Interpreter
    except (ImportError, AttributeError):
        return None


def litert_available() -> bool:
    return _interpreter_class() is not None


# --- building and exporting (Keras, TensorFlow backend) --------------------------------

def inference_model(model, task: str, mirror: bool = False):
    """The model as the app runs it: body part -> ``[class probabilities]`` plus, when it has a gate,
    ``ood_score`` and ``appliance_probability`` (the outputs its metadata lists under ``outputs``),
    fracture -> ``[probability, cell probabilities (h, w)]`` (see :mod:`locator`; with ``mirror``,
    the mean of the image and its mirror image).  Shares the trained layers."""
    import keras
    if task != "fracture":
        return keras.Model(model.inputs, model.outputs, name="inference")
    from .locator import inference_model as locator_inference
    from .locator import is_locator
    if not is_locator(model):
        raise WeightsError(f"The fracture model {model.name} was made by an earlier version of this tool "
                           "(no fracture-location head); retrain it with training_fracture.py.")
    return locator_inference(model, mirror)


MAX_DIFFERENCE = 1e-4  # largest output difference tolerated between the LiteRT file and the Keras model


def export_litert(model, task: str, path: Path, mirror: bool = False) -> dict | None:
    """Write ``path`` (``.tflite``, float32 like the Keras model) and check that it gives the
    Keras model's outputs on a few random images; returns the metadata entry, or None where
    this Keras backend cannot export (only TensorFlow can; see ``scripts/export_litert.py``).

    (Float16 weights would halve the file but moved fracture probabilities by up to 0.02 on
    test images and flipped decisions, so the files stay float32.)"""
    import keras
    if keras.backend.backend() != "tensorflow":
        return None
    m = inference_model(model, task, mirror)
    size = m.inputs[0].shape[1]
    probe = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")
    expected = KerasModel(m, None)(probe)
    with atomic_path(Path(path), suffix=".tflite") as tmp:
        m.export(str(tmp), format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=(None, size, size, 3), dtype="float32")])
        got = LiteRTModel(tmp)(probe)
        diff = max(_difference(a, b, task) for a, b in zip(got, expected))
        if diff > MAX_DIFFERENCE:
            raise WeightsError(f"The LiteRT export of {Path(path).stem} differs from the Keras model by {diff:.1e}.")
    return {"file": Path(path).name, "max_difference_to_keras": diff,
            "outputs": body_part_outputs(m) if task != "fracture" else fracture_outputs(m)}


def _difference(got: np.ndarray, expected: np.ndarray, task: str) -> float:
    """Largest output difference; for the body-part model's unbounded out-of-distribution score
    (large on random images) relative to the output's size, for probabilities absolute."""
    scale = max(1.0, float(np.abs(expected).max())) if task != "fracture" else 1.0
    return float(np.abs(got - expected).max()) / scale


def fracture_outputs(model) -> list[str]:
    """The names a fracture inference model's outputs go by: ``probability``, ``cell_probability``, and
    ``appliance_probability`` where the model has an appliance head."""
    return ["probability", "cell_probability", "appliance_probability"][:len(model.outputs)]


def body_part_outputs(model) -> list[str]:
    """The names a body-part inference model's outputs go by, in order: ``probabilities``, then (with a
    gate) ``ood_score`` and ``appliance_probability`` (see :mod:`gate`)."""
    return ["probabilities" if n == "probability" else n for n in model.output_names]


# --- running -------------------------------------------------------------------------

class LiteRTModel:
    """A ``.tflite`` inference model; call it with a float32 batch, get its outputs as a list."""

    def __init__(self, path: Path, threads: int | None = None):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.interpreter = _interpreter_class()(model_path=str(path),
                                                    num_threads=threads or min(4, os.cpu_count() or 1))
        signature = self.interpreter.get_signature_list()
        self.key = next(iter(signature))
        self.runner = self.interpreter.get_signature_runner(self.key)
        self.input = signature[self.key]["inputs"][0]
        # outputs are named output_0, output_1, ... in the order the Keras model returns them
        self.outputs = sorted(signature[self.key]["outputs"], key=lambda n: int(n.rsplit("_", 1)[-1]))

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        out = self.runner(**{self.input: np.ascontiguousarray(batch, dtype=np.float32)})
        return [np.asarray(out[name]) for name in self.outputs]


class KerasModel:
    """The same interface over the Keras model (any backend)."""

    def __init__(self, model, task: str | None, mirror: bool = False):
        """``task`` None: ``model`` already is an inference model."""
        self.model = model if task is None else inference_model(model, task, mirror)

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        out = self.model.predict_on_batch(np.asarray(batch, dtype=np.float32))
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def load(info, runtime: str = "auto"):
    """The fastest way to run a saved model (``runtime``: auto, litert or keras)."""
    tflite = info.litert_path
    has_litert = tflite is not None and tflite.is_file()
    if runtime == "litert" or (runtime == "auto" and has_litert and (litert_available() or not info.path.is_file())):
        if not has_litert:
            raise WeightsError(f"No LiteRT file is listed for {info.name}; run scripts/export_litert.py.")
        if not litert_available():
            raise WeightsError("Neither ai-edge-litert nor TensorFlow is installed; run ./setup.sh again.")
        try:
            return LiteRTModel(tflite)
        except (ValueError, RuntimeError) as exc:
            raise WeightsError(f"The model file {tflite.name} could not be loaded ({type(exc).__name__}).") \
                from None
    return KerasModel(info.load(), info.task, mirrored(info.meta))


def mirrored(meta: dict) -> bool:
    """Whether a fracture model runs with test-time mirroring (chosen on validation at training)."""
    return bool((meta.get("localisation") or {}).get("test_time_mirroring"))


# --- saving ------------------------------------------------------------------------------

def save_model(model, metadata: dict, weights_dir: Path, name: str) -> Path:
    """Write ``name.keras``, ``name.tflite`` (where the backend can export it) and then
    ``name.json``, each atomically; returns the Keras model's path."""
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    final = weights_dir / f"{name}.keras"
    if getattr(model, "optimizer", None) is not None:  # ship weights, not the optimizer's state (x3 size)
        import keras
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    with atomic_path(final, suffix=".keras") as tmp:  # Keras insists on the .keras ending
        model.save(tmp)
        deflate_zip(tmp)  # Keras stores its archive uncompressed
    metadata = dict(metadata, name=name, model_file=final.name)
    metadata.pop("litert", None)
    litert = export_litert(model, metadata["task"], weights_dir / f"{name}.tflite", mirrored(metadata))
    if litert:
        metadata["litert"] = litert
    else:
        print(f"{name}.tflite was not written (only the TensorFlow backend exports LiteRT); the app runs "
              f"{final.name} through Keras until scripts/export_litert.py is run under TensorFlow.")
    atomic_write_json(weights_dir / f"{name}.json", metadata)
    return final
