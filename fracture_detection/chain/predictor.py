"""The chain: body part, then that part's fracture model, with its suspected regions and cell map.

    from fracture_detection.chain.predictor import Predictor
    predictor = Predictor()                      # loads every model in weights/ once
    result = predictor.predict_one("xray.png")   # -> Prediction
    results = predictor.predict(["a.png", "b.dcm"])

Decision support only: a finding is a model's output, not a diagnosis.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..io.boxes import LEGACY_REGION_EXTENT, marker_cells, regions_from_map
from ..io.images import ImageError, colourfulness, read_image, to_model_input
from ..models import artifacts
from ..models.runtime import load as load_runner
from . import decisions
from .amber import amber_bin, amber_text
from .decisions import FINDINGS, reported

FRACTURE_BATCH = 2   # images per fracture-model call (see Predictor._run_fracture)
COLOUR_LIMIT = 20.0  # mean channel spread (0-255) above which an image is a colour picture, not an X-ray


@dataclass
class Prediction:
    path: str | None
    body_part: str | None = None           # the region: which fracture model read the film (elbow, hand, shoulder)
    view: str | None = None                # what the film shows, in a reader's word (e.g. forearm); the part
    #                                        itself for a body-part model made before views
    body_part_probability: float | None = None  # the region's confidence (decisions.part_scores)
    fracture_probability: float | None = None
    finding: str = "error"
    message: str | None = None
    threshold: float | None = None         # the model's Youden threshold (sensitivity/specificity figures only)
    uncertain_band: list[float] | None = None  # the finding's cuts: [no fracture below, likely fracture from]
    part_probabilities: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    rejection: str | None = None           # why not analysed (decisions.REJECT_*), when not_supported
    regions: list[dict] = field(default_factory=list)  # [{"box": [x0, y0, x1, y1], "score": s}], image pixels
    appliance: str | None = None           # "cast or implant" when one is visible
    appliance_probability: float | None = None  # on every analysed image, whether flagged or not
    warning: str | None = None             # e.g. the file ends early (analysed all the same)
    near_cut: str | None = None            # the deciding cut whose 95 % interval holds the probability
    # an uncertain film's rank inside "uncertain" (chain.amber): of the measured films scored like it, the
    # fractured share, how many films and how many fractured, the share over all those films, and on
    # which films ("validation" or "out-of-fold"); all None when not uncertain or not measured
    amber_share: float | None = None
    amber_n: int | None = None
    amber_fractured: int | None = None
    amber_prevalence: float | None = None
    amber_basis: str | None = None
    image_shape: tuple | None = field(default=None, repr=False)
    cam: np.ndarray | None = field(default=None, repr=False)  # cell fracture probabilities over the square
    cut_ci95: dict | None = field(default=None, repr=False)  # each cut's 95 % interval (the model's metadata)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("cam"), d.pop("image_shape"), d.pop("cut_ci95")
        return d

    def heatmap(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The fracture model's probability of a fracture at each place, in [0, 1] on an absolute
        scale (the same colour means the same probability on every image), the size of the image
        or ``(height, width)`` of a resized copy of it (None without a fracture model)."""
        if self.cam is None:
            return None
        return cam_to_image(self.cam, shape or self.image_shape)


@dataclass
class _Prepared:
    """An image reduced to what the chain needs: its size, its colourfulness and each model's input."""
    shape: tuple[int, int]
    colourfulness: float
    inputs: dict[int, np.ndarray]
    warning: str | None = None  # e.g. the file ends early (read as far as it goes)


class _FractureModel:
    """A fracture model's runner (probability and cell probabilities) with its two cuts and the cell
    probability from which a further suspected region is shown."""

    def __init__(self, info: artifacts.ModelInfo, runtime: str):
        self.info = info
        where = info.meta.get("localisation") or {}
        if where.get("map") != "cell_probability":
            raise artifacts.WeightsError(f"The fracture model {info.name} was made by an earlier version of this "
                                         "tool (no fracture-location head); retrain it with training_fracture.py.")
        self.region_threshold = float(where["region_threshold"])
        self.region_extent = float(where.get("region_extent", LEGACY_REGION_EXTENT))
        self.max_regions = int(where.get("max_regions", 3))
        self.run = load_runner(info, runtime)
        self.size = info.image_size
        self.threshold = reported(info.meta.get("threshold", 0.5))
        self.edges = decisions.finding_edges(info.meta)
        self.intervals = decisions.cut_intervals(info.meta)
        outputs = (info.meta.get("litert") or {}).get("outputs") or []
        appliance = info.meta.get("appliance") or {}
        # a cast, splint or implant judged at the fracture model's resolution, where it has that head; its
        # line is said only from the cut stored with it (None: no cut was precise enough, never said)
        self.appliance = appliance if "appliance_probability" in outputs and "threshold" in appliance else None

    def finding(self, p: float) -> str:
        return decisions.fracture_finding(p, self.edges)

    def appliance_said(self, p: float) -> bool:
        cut = self.appliance.get("threshold")
        return cut is not None and p >= cut

    def amber(self, p: float):
        """The bin of the uncertain range ``p`` falls in (:func:`amber.amber_bin`), or None."""
        return amber_bin(p, self.info.meta)

    def regions(self, cells: np.ndarray, image_shape, finding: str, model_input=None) -> list[dict]:
        """Suspected regions for a fractured or uncertain finding (none otherwise), never on a burnt-in
        marker or text seen in ``model_input`` (the model's letterboxed square)."""
        if finding not in ("fractured", "uncertain"):
            return []
        exclude = None if model_input is None else marker_cells(model_input[..., 0], image_shape, *cells.shape)
        return regions_from_map(cells, image_shape, self.region_threshold, self.max_regions,
                                extent=self.region_extent, exclude=exclude)


class Predictor:
    """Loads the body-part model and every fracture model in ``weights_dir`` once.

    ``runtime``: ``auto`` runs each model's LiteRT file where there is one (fast start),
    else its Keras file; ``litert`` or ``keras`` insists on one (see :mod:`runtime`).
    """

    def __init__(self, weights_dir=artifacts.DEFAULT_WEIGHTS, runtime: str = "auto"):
        self.weights_dir = Path(weights_dir)
        body_info, fracture_infos = artifacts.model_set(self.weights_dir)
        self.body_info = body_info
        self.body = load_runner(body_info, runtime)
        self.classes = body_info.classes
        self.reject_class = body_info.meta.get("reject_class")
        self.rule = decisions.BodyPartRule.from_meta(body_info.meta)
        self.body_outputs = body_output_names(body_info.meta)
        appliance = body_info.meta.get("appliance") or {}
        self.appliance_threshold = appliance.get("threshold")
        self.appliance_label = appliance.get("label", "cast or implant")
        self.fracture = {part: _FractureModel(info, runtime) for part, info in fracture_infos.items()}
        self._lock = threading.Lock()  # neither Keras models nor LiteRT interpreters are re-entrant
        self._sizes = {body_info.image_size} | {fm.size for fm in self.fracture.values()}  # inputs to make

    # --- public API ------------------------------------------------------------------

    @property
    def parts(self) -> list[str]:
        """What the body-part model names (views, or parts for a model made before views), not 'other'."""
        return [c for c in self.classes if c != self.reject_class]

    @property
    def regions(self) -> list[str]:
        """The regions films are routed to (the fracture models' parts), in class order."""
        return list(dict.fromkeys(self.rule.region_of(k, self.classes) for k, c in enumerate(self.classes)
                                  if c != self.reject_class))

    @property
    def names_views(self) -> bool:
        """Whether the body-part model learns views and routes by region (its metadata maps them)."""
        return bool(self.body_info.meta.get("regions"))

    def predict_one(self, source) -> Prediction:
        return self.predict([source])[0]

    def predict(self, sources, batch_size: int = 16, progress=None) -> list[Prediction]:
        """Analyse paths or arrays; never raises for a bad input (its finding is 'error')."""
        sources = list(sources)
        results: list[Prediction] = []
        for chunk, prepared in self.read_ahead(sources, batch_size):
            results += self.chain(chunk, prepared)
            if progress is not None:
                progress(len(results), len(sources))
        return results

    def predict_loaded(self, sources, images) -> list[Prediction]:
        """The chain for images already read: each an RGB array, the ``(array, warning)`` pair that
        :func:`images.read_image` returns (the warning then reaches the result), or the ImageError
        raised instead."""
        return self.chain(sources, [self.prepare(im) for im in images])

    def read_ahead(self, sources: list, batch_size: int):
        """Yield ``(batch of sources, their prepared images)``.  Two threads read and letterbox the
        next batches while the caller runs the models on the current one (both release the
        interpreter lock), so a folder is not read and analysed one file at a time."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            ahead = deque(pool.submit(self.prepare, s) for s in sources[:2 * batch_size])
            queued = len(ahead)
            for start in range(0, len(sources), batch_size):
                chunk = sources[start:start + batch_size]
                prepared = [ahead.popleft().result() for _ in chunk]
                ahead.extend(pool.submit(self.prepare, s) for s in sources[queued:queued + len(chunk)])
                queued += len(chunk)
                yield chunk, prepared

    def prepare(self, source) -> _Prepared | ImageError:
        """Read a source (unless it is an array, an ``(array, warning)`` pair or an ImageError
        already) and make each model's input."""
        img, warning = (source, None) if isinstance(source, ImageError) else \
            source if isinstance(source, tuple) else safe_read(source)
        if isinstance(img, ImageError):
            return img
        return _Prepared(img.shape[:2], colourfulness(img), {s: to_model_input(img, s) for s in self._sizes},
                         warning)

    def fracture_probabilities(self, prepared: list[_Prepared], part: str) -> np.ndarray:
        """The ``part`` fracture model's probability for prepared images, whatever their body part."""
        return self.fracture_outputs(prepared, part)[0]

    def fracture_outputs(self, prepared: list[_Prepared], part: str) -> tuple[np.ndarray, np.ndarray]:
        """The ``part`` fracture model's probabilities and cell-probability maps for prepared images."""
        prob, maps, _ = self._run_fracture(self.fracture[part], prepared)
        return prob[:, 0], maps

    # --- the chain -------------------------------------------------------------------

    def chain(self, sources, prepared: list) -> list[Prediction]:
        """Body part, then that part's fracture model, for prepared images (see :meth:`prepare`)."""
        out: list[Prediction] = [Prediction(path=_name(s)) for s in sources]
        ok = []
        for i, item in enumerate(prepared):
            if isinstance(item, ImageError):
                out[i].message = str(item)
                continue
            out[i].warning = item.warning
            if item.colourfulness > COLOUR_LIMIT:
                out[i].finding, out[i].rejection = "not_supported", decisions.REJECT_COLOUR
                out[i].message = decisions.rejection_message(decisions.REJECT_COLOUR, self.parts)
            else:
                ok.append(i)
        if not ok:
            return out
        by_part: dict[str, list[int]] = {}
        for i, k, confidence in self._body_parts(prepared, ok, out):
            res = out[i]
            region = self.rule.region_of(k, self.classes)
            if region not in self.fracture:  # not analysed, so no body part is reported either
                res.finding, res.rejection = "not_supported", decisions.REJECT_NO_MODEL
                res.message = f"Read as {self.classes[k]}, but no fracture model for the {region} is installed."
                continue
            res.body_part, res.view, res.body_part_probability = region, self.classes[k], confidence
            by_part.setdefault(res.body_part, []).append(i)
        for part, idx in by_part.items():
            fm = self.fracture[part]
            prob, maps, appliance = self._run_fracture(fm, [prepared[i] for i in idx])
            for j, (i, p, m) in enumerate(zip(idx, prob[:, 0], maps)):
                res = out[i]
                if appliance is not None:  # the fracture model's own appliance head replaces the body-part model's
                    res.appliance_probability = reported(appliance[j, 0])
                    res.appliance = fm.appliance.get("label", "cast or implant") \
                        if fm.appliance_said(res.appliance_probability) else None
                res.cam, res.image_shape = np.asarray(m, dtype="float32"), prepared[i].shape
                res.fracture_probability = reported(p)
                res.threshold, res.uncertain_band = fm.threshold, list(fm.edges)
                res.finding = fm.finding(res.fracture_probability)
                res.near_cut = decisions.near_cut(res.fracture_probability, res.finding, fm.intervals)
                res.cut_ci95 = dict(fm.intervals) or None
                res.regions = fm.regions(res.cam, res.image_shape, res.finding, prepared[i].inputs[fm.size])
                res.model = fm.info.meta.get("name")
                if res.finding == "uncertain":
                    res.message = ("The fracture probability lies between the model's two cuts; "
                                   "review the image closely.")
                    b = fm.amber(res.fracture_probability)
                    if b is not None:
                        res.amber_share, res.amber_n, res.amber_fractured = round(b.share, 4), b.n, b.fractured
                        res.amber_prevalence, res.amber_basis = round(b.prevalence, 4), b.basis
        return out

    def _run_fracture(self, fm: _FractureModel, prepared: list) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Probabilities, cell maps and (where the model has that head) appliance probabilities,
        FRACTURE_BATCH images at a time: at 448 px (twice that when mirrored) a larger batch mostly costs
        memory for the runtime's intermediate tensors."""
        outs = []
        for start in range(0, len(prepared), FRACTURE_BATCH):
            batch = np.stack([p.inputs[fm.size] for p in prepared[start:start + FRACTURE_BATCH]])
            with self._lock:
                outs.append(fm.run(batch))
        prob, maps = (np.concatenate([o[k] for o in outs]) for k in (0, 1))
        appliance = np.concatenate([o[2] for o in outs]) if fm.appliance is not None else None
        return prob, maps, appliance

    def _body_parts(self, prepared: list, ok: list[int], out: list[Prediction]) -> list[tuple[int, int]]:
        """The body-part model and its gate on the readable images ``ok`` (not colour pictures): fills each one's part
        probabilities (and, for a rejected image, finding, reason and message; for an accepted one,
        a visible cast or implant); returns ``(index, class, the part's confidence)`` of the accepted ones."""
        size = self.body_info.image_size
        batch = np.stack([prepared[i].inputs[size] for i in ok])
        with self._lock:
            named = dict(zip(self.body_outputs, self.body(batch)))
        probs = named["probabilities"]
        ood = named.get("ood_score")
        appliance = named.get("appliance_probability")
        chosen, reasons = decisions.decide_body_parts(probs, self.rule, None if ood is None else ood[:, 0])
        best, confidence, _ = decisions.part_scores(probs, self.rule)
        accepted = []
        for j, (i, p, k, why) in enumerate(zip(ok, probs, chosen, reasons)):
            res = out[i]
            res.part_probabilities = {c: reported(v) for c, v in zip(self.classes, p)}
            if why is not None:
                res.finding, res.rejection = "not_supported", why
                res.message = decisions.rejection_message(why, self.parts, self.rule.region_of(best[j], self.classes),
                                                          float(confidence[j]), self.rule.confidence_floor)
                continue
            if appliance is not None:
                res.appliance_probability = reported(appliance[j, 0])
                if self.appliance_threshold is not None and res.appliance_probability >= self.appliance_threshold:
                    res.appliance = self.appliance_label
            accepted.append((i, int(k), float(confidence[j])))
        return accepted


def cam_to_image(cam: np.ndarray, image_shape) -> np.ndarray:
    """Bilinear upsampling of a map over the letterboxed square back onto the original image,
    as two small matrix products (only the image's own rows and columns are computed)."""
    h, w = image_shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    rows = _bilinear_weights(cam.shape[0], side)[top:top + h]
    cols = _bilinear_weights(cam.shape[1], side)[left:left + w]
    return np.clip(rows @ cam.astype("float32") @ cols.T, 0.0, 1.0)


def _bilinear_weights(n: int, size: int) -> np.ndarray:
    """``(size, n)`` matrix resampling ``n`` cells to ``size`` pixels (cell centres, edges clamped)."""
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = (pos - low).astype("float32")
    weights = np.zeros((size, n), dtype="float32")
    weights[np.arange(size), low] += 1 - frac
    weights[np.arange(size), high] += frac
    return weights


def body_output_names(meta: dict) -> list[str]:
    """What a body-part model returns, in order (its metadata lists them; older models return
    only the probabilities)."""
    return list(meta.get("outputs") or (meta.get("litert") or {}).get("outputs") or ["probabilities"])


def safe_read(source) -> tuple[np.ndarray | ImageError, str | None]:
    """``(RGB array, warning or None)``, or ``(the ImageError saying why the source cannot be read,
    None)``; never raises."""
    try:
        return read_image(source)
    except ImageError as exc:
        return exc, None
    except Exception as exc:  # anything else a broken file can trigger
        return ImageError(f"The file could not be read ({type(exc).__name__})."), None


def safe_load(source):
    """An RGB array, or the :class:`ImageError` saying why the source cannot be read (never raises)."""
    return safe_read(source)[0]


def _name(source) -> str | None:
    return None if isinstance(source, np.ndarray) else str(source)


def collect_inputs(paths) -> tuple[list[Path], list[Prediction]]:
    """Expand files and folders (recursively) into image files; a missing path or a folder with no
    images becomes an 'error' prediction instead."""
    from ..io.images import find_images
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


def predict_paths(predictor: Predictor, paths, batch_size: int = 16, progress=None) -> list[Prediction]:
    """Every image in ``paths`` (files, and folders searched recursively), as ``--json`` and
    ``fracture_detection.analyse`` report them: the paths that cannot be used first (an 'error'
    each), then the images in order."""
    files, problems = collect_inputs(paths)
    return problems + predictor.predict(files, batch_size=batch_size, progress=progress)


def describe(pred: Prediction) -> str:
    """One line for a person: what was found, with the probabilities behind it."""
    name = Path(pred.path).name if pred.path else "image"
    words = decisions.FINDING_WORDS[pred.finding]
    warning = f" ({pred.warning})" if pred.warning else ""
    if pred.finding in ("error", "not_supported"):
        return f"{name}: {words}. {pred.message}{warning}"
    p, low, high = decisions.format_probabilities(pred.fracture_probability, *pred.uncertain_band)
    near = f" ({decisions.NEAR_CUT_WORDS})" if pred.near_cut else ""
    part = f"{decisions.part_words(pred.view, pred.body_part)} ({pred.body_part_probability:.0%})"
    appliance = f"; {pred.appliance} visible" if pred.appliance else ""
    ranking = amber_text(pred)
    ranking = f". {ranking}" if ranking else ""
    where = ""
    if pred.regions:
        x0, y0, x1, y1 = pred.regions[0]["box"]
        where = f"; most suspicious region x {x0}-{x1}, y {y0}-{y1} px"
    return (f"{name}: {part}, {words}{near} — fracture probability {p} (Likely FRACTURE from {high}, "
            f"No fracture below {low}){where}{appliance}{warning}{ranking}")
