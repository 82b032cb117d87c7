"""The chain: body part, then that part's fracture model, with a heatmap of where it looked.

    from fracture_detection.predictor import Predictor
    predictor = Predictor()                      # loads every model in weights/ once
    result = predictor.predict_one("xray.png")   # -> Prediction
    results = predictor.predict(["a.png", "b.dcm"])

Decision support only: a finding is a model's output, not a diagnosis.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import artifacts
from .images import ImageError, colourfulness, letterbox_box, load_image, to_model_input
from .metrics import decide_body_part

FINDINGS = ("fractured", "normal", "uncertain", "not_supported", "error")
COLOUR_LIMIT = 20.0  # mean channel spread (0-255) above which an image is a colour picture, not an X-ray


@dataclass
class Prediction:
    path: str | None
    body_part: str | None = None
    body_part_probability: float | None = None
    fracture_probability: float | None = None
    finding: str = "error"
    message: str | None = None
    threshold: float | None = None
    uncertain_band: list[float] | None = None
    part_probabilities: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    image_shape: tuple | None = field(default=None, repr=False)
    cam: np.ndarray | None = field(default=None, repr=False)  # low-resolution activation map

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("cam"), d.pop("image_shape")
        return d

    def heatmap(self) -> np.ndarray | None:
        """Where the fracture model looked, in [0, 1], the size of the image (None without a fracture model)."""
        if self.cam is None:
            return None
        return cam_to_image(self.cam, self.image_shape)


def _round(v):
    return None if v is None else round(float(v), 4)


class _FractureModel:
    """A fracture model plus a twin that also returns the last feature map, for the heatmap."""

    def __init__(self, info: artifacts.ModelInfo):
        import keras
        self.info = info
        self.model = info.load()
        self.size = info.image_size
        self.threshold = float(info.meta.get("threshold", 0.5))
        self.band = [float(v) for v in info.meta.get("uncertain_band", [self.threshold, self.threshold])]
        m = self.model
        inp = keras.Input((self.size, self.size, 3))
        fmap = m.get_layer("backbone")(m.get_layer("preprocess")(inp), training=False)
        z = m.get_layer("pool")(fmap)
        prob = m.get_layer("probability")(m.get_layer("dropout")(z))
        self.with_features = keras.Model(inp, [prob, fmap])
        self.cam_weights = np.asarray(m.get_layer("probability").get_weights()[0])[:, 0]

    def finding(self, p: float) -> str:
        low, high = self.band
        if p >= high and p >= self.threshold:
            return "fractured"
        if p < low and p < self.threshold:
            return "normal"
        return "uncertain"


class Predictor:
    """Loads the body-part model and every fracture model in ``weights_dir`` once."""

    def __init__(self, weights_dir=artifacts.DEFAULT_WEIGHTS):
        self.weights_dir = Path(weights_dir)
        body_info, fracture_infos = artifacts.model_set(self.weights_dir)
        self.body_info = body_info
        self.body = body_info.load()
        self.classes = body_info.classes
        self.reject_class = body_info.meta.get("reject_class")
        self.fracture = {part: _FractureModel(info) for part, info in fracture_infos.items()}
        self._lock = threading.Lock()  # Keras models are not re-entrant across threads

    # --- public API ------------------------------------------------------------------

    @property
    def parts(self) -> list[str]:
        return [c for c in self.classes if c != self.reject_class]

    def predict_one(self, source) -> Prediction:
        return self.predict([source])[0]

    def predict(self, sources, batch_size: int = 32, progress=None) -> list[Prediction]:
        """Analyse paths or arrays; never raises for a bad input (its finding is 'error')."""
        sources = list(sources)
        results: list[Prediction] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(sources), batch_size):
                chunk = sources[start:start + batch_size]
                images = list(pool.map(safe_load, chunk))
                results += self.predict_loaded(chunk, images)
                if progress is not None:
                    progress(len(results), len(sources))
        return results

    def fracture_probabilities(self, images: list[np.ndarray], part: str) -> np.ndarray:
        """The ``part`` fracture model's probability for loaded images, whatever their body part."""
        fm = self.fracture[part]
        batch = np.stack([to_model_input(im, fm.size) for im in images])
        with self._lock:
            return np.asarray(fm.model.predict_on_batch(batch))[:, 0]

    def predict_loaded(self, sources, images) -> list[Prediction]:
        """The chain for images already read (each an RGB array, or the ImageError it raised)."""
        out: list[Prediction] = [Prediction(path=_name(s)) for s in sources]
        ok = []
        for i, img in enumerate(images):
            if isinstance(img, ImageError):
                out[i].message = str(img)
            elif colourfulness(img) > COLOUR_LIMIT:
                out[i].finding = "not_supported"
                out[i].message = "The image is a colour picture, not a radiograph."
            else:
                ok.append(i)
        if not ok:
            return out
        size = self.body_info.image_size
        batch = np.stack([to_model_input(images[i], size) for i in ok])
        with self._lock:
            probs = np.asarray(self.body.predict_on_batch(batch))
        by_part: dict[str, list[int]] = {}
        reject = self.classes.index(self.reject_class) if self.reject_class in self.classes else None
        decisions = decide_body_part(probs, reject, self.body_info.meta.get("reject_threshold"))
        for i, p, k in zip(ok, probs, decisions):
            res = out[i]
            res.part_probabilities = {c: _round(v) for c, v in zip(self.classes, p)}
            if self.classes[k] == self.reject_class:
                res.finding = "not_supported"
                res.message = (f"The image does not look like {_join(self.parts)} radiograph "
                               f"({self.reject_class} {p[k]:.0%}).")
                continue
            res.body_part, res.body_part_probability = self.classes[k], _round(p[k])
            if res.body_part not in self.fracture:
                res.finding = "not_supported"
                res.message = f"No fracture model for the {res.body_part} is installed."
                continue
            by_part.setdefault(res.body_part, []).append(i)
        for part, idx in by_part.items():
            fm = self.fracture[part]
            batch = np.stack([to_model_input(images[i], fm.size) for i in idx])
            with self._lock:
                prob, fmap = fm.with_features.predict_on_batch(batch)
            prob, fmap = np.asarray(prob)[:, 0], np.asarray(fmap)
            for i, p, f in zip(idx, prob, fmap):
                res = out[i]
                res.cam, res.image_shape = class_activation(f, fm.cam_weights), images[i].shape[:2]
                res.fracture_probability = _round(p)
                res.threshold, res.uncertain_band = _round(fm.threshold), [_round(v) for v in fm.band]
                res.finding = fm.finding(float(p))
                res.model = fm.info.meta.get("name")
                if res.finding == "uncertain":
                    res.message = ("The fracture probability is inside the model's uncertain band; "
                                   "review the image closely.")
        return out


def class_activation(fmap: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Class activation map at feature resolution, scaled to [0, 1].

    With global average pooling and one linear output, Grad-CAM's channel weights are the
    output layer's weights times a positive constant, so after scaling this *is* Grad-CAM,
    computed from the same forward pass as the probability.
    """
    cam = np.maximum(fmap @ weights, 0.0)
    return cam / cam.max() if cam.max() > 0 else cam


def cam_to_image(cam: np.ndarray, image_shape) -> np.ndarray:
    """Resize a map over the letterboxed square back onto the original image."""
    from PIL import Image
    h, w = image_shape[:2]
    side = max(h, w)
    big = np.asarray(Image.fromarray(cam.astype("float32"), mode="F").resize((side, side), Image.BILINEAR))
    top, left, fh, fw = letterbox_box(image_shape)
    y0, x0 = int(round(top * side)), int(round(left * side))
    return np.clip(big[y0:y0 + h, x0:x0 + w], 0.0, 1.0)


def safe_load(source):
    """An RGB array, or the :class:`ImageError` saying why the source cannot be read (never raises)."""
    try:
        return load_image(source)
    except ImageError as exc:
        return exc
    except Exception as exc:  # anything else a broken file can trigger
        return ImageError(f"The file could not be read ({type(exc).__name__}).")


def _name(source) -> str | None:
    return None if isinstance(source, np.ndarray) else str(source)


def _join(parts) -> str:
    parts = list(parts)
    words = ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1] if parts else "a supported"
    return ("an " if words[:1] in "aeiou" else "a ") + words


def collect_inputs(paths) -> tuple[list[Path], list[Prediction]]:
    """Expand files and folders (recursively) into image files; a missing path or a folder with no
    images becomes an 'error' prediction instead."""
    from .images import find_images
    files, problems = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = find_images(p)
            if not found:
                problems.append(Prediction(path=str(p), message=f"The folder {p.name} contains no supported images."))
            files += found
        elif p.exists():
            files.append(p)
        else:
            problems.append(Prediction(path=str(p), message=f"The file {p.name} does not exist."))
    return files, problems


def describe(pred: Prediction) -> str:
    """One line for a person: what was found, with the probabilities behind it."""
    name = Path(pred.path).name if pred.path else "image"
    if pred.finding == "error":
        return f"{name}: could not be analysed. {pred.message}"
    if pred.finding == "not_supported":
        return f"{name}: not analysed. {pred.message}"
    part = f"{pred.body_part} ({pred.body_part_probability:.0%})"
    return (f"{name}: {part}, {pred.finding.upper()} — fracture probability {pred.fracture_probability:.2f} "
            f"(threshold {pred.threshold:.2f})")
