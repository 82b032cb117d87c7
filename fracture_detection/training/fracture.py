"""Training the fracture models (:mod:`locator`): image labels and fracture boxes together.

One model per body part.  On a CPU the backbone below its stride-16 stage stays frozen: its
output is computed once per image (the original, ``augment_copies`` augmented versions, and the
mirrored original for validation) and the layers above it learn from that cache.  Augmentation is
geometric as well as photometric, so it happens on the pixels *and* the boxes together, before the
frozen trunk.  ``--frozen-through none`` trains the whole model on augmented pixels (for a GPU).

After training, on the validation images of the part: the decision threshold (Youden), the
uncertain band (:func:`decisions.select_band`), whether mirroring the image at test time helps,
and the score from which a further region is shown; all stored in the model's metadata.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..chain import decisions
from ..chain.amber import amber_bins
from ..evaluation import metrics
from ..io import boxes, data, files
from ..io.data import fracture_records, load_pixels
from ..models import artifacts
from ..models.artifacts import WeightsError
from ..models.locator import single, trunk_features
from ..models.runtime import save_model
from .trainer import (
    TrainConfig, _deadline, base_metadata, class_weights, prepare_split, resolve_cut, smoke_subset
)

MAX_REGIONS = 3


@dataclass(frozen=True)
class HeadConfig:
    """How the dense fracture head learns (see :mod:`locator`)."""
    cell_weight: float = 5.0            # the location loss's weight beside the image loss
    # (image labels only: cell_weight 0 and box_pooling False)
    positive_cell_weight: float = 30.0  # a fracture cell counts this much more than a normal one
    sharpness: float = 5.0              # log-sum-exp pooling: larger is closer to the single highest cell
    width: int = 64                     # channels of the head's convolutions
    box_pooling: bool = True            # a fractured image's label is pooled over its box cells only
    appliance_weight: float = 1.0       # a fractured film with a cast, splint or implant in view counts this
    # much (0: left out of the positives), so the appliance is not learnt as the evidence of a fracture


# --- data ------------------------------------------------------------------------------

@dataclass
class Examples:
    """One part's images: letterboxed pixels, labels, splits and fracture boxes (square fractions)."""
    records: list
    pixels: np.ndarray   # uint8 (n, S, S, 3)
    y: np.ndarray
    split: np.ndarray
    boxes: list          # per image: (k, 4) fractions of the letterboxed square
    shapes: list         # per image: (height, width) of the image as shown

    def subset(self, mask) -> "Examples":
        idx = np.nonzero(mask)[0]
        return Examples([self.records[i] for i in idx], self.pixels[idx], self.y[idx], self.split[idx],
                        [self.boxes[i] for i in idx], [self.shapes[i] for i in idx])


# --- augmentation (pixels and boxes together) -------------------------------------------

def augment(img: np.ndarray, bxs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random mirror, rotation (±10°), zoom (±10 %), shift (±5 %), contrast and brightness (±15 %)
    of a letterboxed uint8 image, with its boxes (fractions of the square) moved alike."""
    size = img.shape[0]
    flip = rng.random() < 0.5
    angle = np.deg2rad(rng.uniform(-10, 10))
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-0.05, 0.05, 2) * size
    c = (size - 1) / 2
    # forward map: output = R*S*(input - c) + c + t  (input mirrored first)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    fwd = np.array([[cos, -sin, c - cos * c + sin * c + tx], [sin, cos, c - sin * c - cos * c + ty]])
    inv = np.linalg.inv(np.vstack([fwd, [0, 0, 1]]))[:2]
    src = img[:, ::-1] if flip else img
    planes = [Image.fromarray(np.ascontiguousarray(src[:, :, k])).transform(
        (size, size), Image.AFFINE, tuple(inv.ravel()), resample=Image.BILINEAR, fillcolor=0) for k in range(3)] \
        if not _grey(src) else [Image.fromarray(np.ascontiguousarray(src[:, :, 0])).transform(
            (size, size), Image.AFFINE, tuple(inv.ravel()), resample=Image.BILINEAR, fillcolor=0)] * 3
    out = np.stack([np.asarray(p, dtype=np.float32) for p in planes], axis=2)
    contrast, brightness = rng.uniform(0.85, 1.15), rng.uniform(-0.15, 0.15) * 255
    mean = out.mean()
    out = np.clip((out - mean) * contrast + mean + brightness, 0, 255).astype(np.uint8)
    b = np.asarray(bxs, dtype="float64").reshape(-1, 4) * size
    if flip:
        b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], 1)
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], 1)  # (k, 4, 2)
    moved = corners @ fwd[:, :2].T + fwd[:, 2]
    nb = np.concatenate([moved.min(1), moved.max(1)], 1) / size
    nb = np.clip(nb, 0, 1)
    keep = (nb[:, 2] - nb[:, 0] > 1e-3) & (nb[:, 3] - nb[:, 1] > 1e-3)
    return out, nb[keep].astype("float32")


def mirror(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


def _grey(img: np.ndarray) -> bool:
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all())


# --- the frozen trunk -------------------------------------------------------------------

def all_targets(box_lists, y, grid, positive_weight: float = HeadConfig.positive_cell_weight
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell targets and weights (fracture cells weighted ``positive_weight``)."""
    t = np.zeros((len(y), grid, grid, 1), "float32")
    w = np.zeros((len(y), grid, grid), "float32")
    for i, (b, label) in enumerate(zip(box_lists, y)):
        ti, wi = boxes.grid_targets(b, int(label), grid)
        t[i, :, :, 0] = ti
        w[i] = np.where(ti > 0, positive_weight, wi)
    return t, w


class Versions:
    """Training inputs: for every image several versions (original, augmented copies), each with its
    own cell targets; a batch takes a random version of each image."""

    def __init__(self, inputs: list[np.ndarray], targets: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray,
                 weights: np.ndarray | None = None):
        self.inputs, self.targets, self.y = inputs, targets, y
        self.weights = np.ones(len(y), "float32") if weights is None else np.asarray(weights, "float32")


def example_weights(records, appliance_weight: float) -> np.ndarray:
    """Per film: ``appliance_weight`` for a fractured film with an appliance in view, else 1."""
    return np.array([appliance_weight if r.label == 1 and r.treated else 1.0 for r in records], "float32")


def _batches(versions: Versions, batch_size: int, image_weights=None, shuffle=False, seed=0, box_pooling=False):
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(versions.y))
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(versions.y) / batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            v = self.rng.integers(len(versions.inputs), size=len(idx)) if shuffle else np.zeros(len(idx), int)
            x = np.stack([versions.inputs[k][j] for k, j in zip(v, idx)]).astype("float32")
            t = np.stack([versions.targets[k][0][j] for k, j in zip(v, idx)])
            w = np.stack([versions.targets[k][1][j] for k, j in zip(v, idx)])
            y = versions.y[idx].astype("float32")[:, None]
            iw = np.ones(len(idx), "float32") if image_weights is None else \
                np.array([image_weights[int(c)] for c in versions.y[idx]], "float32")
            iw = iw * versions.weights[idx]
            if not box_pooling:
                return x, (y, t), (iw, w)
            # everything the box-pooling loss needs, per cell: target, weight, pooling mask, label, image weight
            has_box = t[..., 0].reshape(len(idx), -1).max(axis=1) > 0
            mask = np.where((y[:, 0] > 0) & has_box, 1.0, 0.0)[:, None, None] * t[..., 0] + \
                np.where((y[:, 0] > 0) & has_box, 0.0, 1.0)[:, None, None]
            cells = np.stack([t[..., 0], w, mask, np.broadcast_to(y[:, :, None], w.shape),
                              np.broadcast_to(iw[:, None, None], w.shape)], axis=-1).astype("float32")
            return x, (y, cells)

        def on_epoch_end(self):
            if shuffle:
                self.rng.shuffle(self.order)

    return Batches()


# --- one part ----------------------------------------------------------------------------

class LocatorTrainer:
    """A fracture model and the way it trains (frozen trunk + cached features, or end to end)."""

    def __init__(self, cfg: TrainConfig, feature_cache: Path | None = None, head: HeadConfig = HeadConfig(),
                 init: dict | None = None):
        import keras

        from ..models.locator import build_locator, trunk_and_top
        keras.utils.set_random_seed(cfg.seed)
        self.cfg, self.feature_cache, self.head = cfg, feature_cache, head
        self.init = init or {}  # part -> the ModelInfo of a trained Keras model to start from
        self.model = build_locator(cfg.backbone, cfg.weights, cfg.image_size, head.width, head.sharpness)
        self.grid = int(self.model.outputs[1].shape[1])
        self.cut = resolve_cut(cfg)
        if self.cut is not None:
            self.trunk, self.trained = trunk_and_top(self.model, cfg.backbone)
        else:
            self.trunk, self.trained = None, self.model
        self.fresh = self.model.get_weights()

    def reset(self, part: str | None = None):
        """Fresh weights for the next model: the pretrained backbone and a new head, or, where ``init``
        has a trained model for ``part``, that model's weights (layer by layer, by name)."""
        import keras
        keras.utils.set_random_seed(self.cfg.seed)
        self.model.set_weights(self.fresh)
        if part in self.init:
            copied = copy_weights(single(self.init[part].load()), self.model)
            print(f"  {part}: starting from {self.init[part].path} ({copied} layers' weights)", flush=True)

    def inputs(self, images, verbose=1, desc="", key=None) -> np.ndarray:
        """What the trained part takes for these uint8 images.  With a feature cache folder and a
        ``key`` (what the images are), frozen-trunk features are read from it or stored in it."""
        if self.trunk is None:
            return np.asarray(images if isinstance(images, np.ndarray) else np.stack(list(images)))
        path = None
        if self.feature_cache is not None and key is not None:
            import hashlib
            what = "|".join([self.cfg.backbone, self.cfg.weights, str(self.cfg.image_size), str(self.cut), key])
            path = Path(self.feature_cache) / f"{hashlib.sha256(what.encode()).hexdigest()[:24]}.npy"
            if path.is_file():
                return np.load(path)
        feats = trunk_features(self.model, self.trunk, images, verbose=verbose, desc=desc)
        if path is not None:
            with files.atomic_path(path, suffix=".npy") as tmp:
                np.save(tmp, feats)
        return feats

    def training_versions(self, ex: Examples, verbose=1) -> Versions:
        """The original and ``augment_copies`` augmented versions of each training image."""
        rng = np.random.default_rng(self.cfg.seed)
        key = _key(ex)
        inputs = [self.inputs(ex.pixels, verbose, "original", f"train|{key}")]
        targets = [self.targets(ex.boxes, ex.y)]
        for k in range(self.cfg.augment_copies):
            pairs = [augment(img, b, rng) for img, b in zip(ex.pixels, ex.boxes)]
            inputs.append(self.inputs(np.stack([p[0] for p in pairs]), verbose, f"copy {k + 1}",
                                      f"copy {k + 1}|seed {self.cfg.seed}|{key}"))
            targets.append(self.targets([p[1] for p in pairs], ex.y))
            del pairs
        return Versions(inputs, targets, ex.y, example_weights(ex.records, self.head.appliance_weight))

    def targets(self, box_lists, y):
        return all_targets(box_lists, y, self.grid, self.head.positive_cell_weight)

    def fit(self, train: Versions, val: Versions) -> dict:
        """Two phases, as for the classifiers: the new head alone at ``head_learning_rate``, then the
        backbone's trainable layers too at ``learning_rate``; the best epoch (validation loss) is kept."""
        import keras
        cfg = self.cfg
        box = self.head.box_pooling
        data_train = _batches(train, cfg.batch_size, class_weights(train.y, 2), shuffle=True, seed=cfg.seed,
                              box_pooling=box)
        data_val = _batches(val, cfg.batch_size, box_pooling=box)
        history: dict[str, list] = {}
        deadline = _deadline(cfg.time_limit)
        backbone_part = self.trained.get_layer("top") if self.cut else self.model.get_layer("backbone")
        auc = _validation_auc(self, val)

        def run(epochs, lr, phase):
            if epochs <= 0 or deadline.reached:
                return
            if box:
                from ..models.locator import BoxPoolingLoss
                losses, weights = [None, BoxPoolingLoss(self.head.sharpness, self.head.cell_weight)], [0.0, 1.0]
            else:
                losses = [keras.losses.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(from_logits=True)]
                weights = [1.0, self.head.cell_weight]
            self.trained.compile(optimizer=keras.optimizers.Adam(lr), loss=losses, loss_weights=weights)
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                 restore_best_weights=True)
            auc.values = []
            h = self.trained.fit(data_train, validation_data=data_val if len(val.y) else None, epochs=epochs,
                                 callbacks=[auc] + ([stop] if len(val.y) else []) + [deadline], verbose=cfg.verbose)
            for k, v in h.history.items():
                history.setdefault(k, []).extend(float(a) for a in v)
            history.setdefault("phase", []).extend([phase] * len(h.history["loss"]))
            if auc.values:
                history.setdefault("val_auc", []).extend(auc.values)

        if cfg.weights != "none" and cfg.head_epochs > 0:
            backbone_part.trainable = False
            run(cfg.head_epochs, cfg.head_learning_rate, "head")
        after_head = (min(history.get("val_loss", [np.inf])), self.trained.get_weights())
        backbone_part.trainable = True
        run(cfg.epochs, cfg.learning_rate if cfg.weights != "none" else cfg.head_learning_rate, "fine_tune")
        fine_tuned = [v for v, ph in zip(history.get("val_loss", []), history.get("phase", [])) if ph == "fine_tune"]
        if fine_tuned and min(fine_tuned) > after_head[0]:
            # fine-tuning the backbone's upper layers never beat the head alone on validation (small data
            # over-fits at once): keep the head phase's weights
            self.trained.set_weights(after_head[1])
            history["kept"] = "head"
        history["frozen_through"] = self.cut
        history["time_limit_reached"] = deadline.reached
        return history

    def predict(self, inputs: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Image probabilities and cell probability maps for prepared inputs."""
        probs, maps = [], []
        for i in range(0, len(inputs), batch_size):
            p, logits = self.trained.predict_on_batch(inputs[i:i + batch_size].astype("float32"))
            probs.append(np.asarray(p)[:, 0])
            maps.append(1 / (1 + np.exp(-np.asarray(logits)[..., 0])))
        if not probs:
            return np.zeros(0), np.zeros((0, self.grid, self.grid))
        return np.concatenate(probs), np.concatenate(maps)


def _validation_auc(trainer: "LocatorTrainer", val: Versions):
    """A callback that scores the validation films after every epoch: ``values`` gets the AUC of the
    image probabilities (None where the validation films are all of one label)."""
    import keras

    class ValidationAUC(keras.callbacks.Callback):
        values: list = []

        def on_epoch_end(self, epoch, logs=None):
            y = np.asarray(val.y, dtype=int)
            if len(np.unique(y)) < 2:
                self.values.append(None)
                return
            from sklearn.metrics import roc_auc_score
            p, _ = trainer.predict(val.inputs[0])
            self.values.append(float(roc_auc_score(y, p)))
            if trainer.cfg.verbose:
                print(f"  validation AUC {self.values[-1]:.3f}", flush=True)

    return ValidationAUC()


AUGMENTATION_VERSION = "1"  # change when augment() changes, so cached features of augmented copies are redone


def _key(ex: Examples) -> str:
    """What a set of examples is, for the feature cache: its files, in order, and the augmentation."""
    import hashlib
    files = "\n".join(str(Path(r.path).resolve()) for r in ex.records)
    return hashlib.sha256(f"{AUGMENTATION_VERSION}\n{files}".encode()).hexdigest()


def with_mirror(probs, maps, probs_m, maps_m):
    """Test-time mirroring: the mean of the image's and its mirror's outputs (the map mirrored back)."""
    return (probs + probs_m) / 2, (maps + maps_m[:, :, ::-1]) / 2


def choose_region_threshold(maps, y, box_lists, shapes) -> float:
    """The cell probability from which a further region is shown: the score at which validation images
    have one false region per image on average (the first region of a finding is always shown)."""
    scored = []
    for m, label, b, shape in zip(maps, y, box_lists, shapes):
        true_px = boxes.Letterbox(*shape).to_pixels(b) if len(b) else np.zeros((0, 4))
        for r in boxes.regions_from_map(m, shape, 0.02, max_regions=10, always_top=False):
            scored.append((r["score"], label and boxes.box_centre_inside(r["box"], true_px)))
    false = sorted((s for s, ok in scored if not ok), reverse=True)
    k = len(y)  # one false region per image
    return float(decisions.reported(false[k - 1] if len(false) >= k else 0.02)) if false else 0.5


def validate(trainer: LocatorTrainer, val: Examples, verbose=1, mirroring: str = "off") -> dict:
    """Validation outputs with and without test-time mirroring; with ``mirroring="auto"`` mirroring is
    kept where it raises the validation AUC (it doubles the model's time per image), else never."""
    inputs = trainer.inputs(val.pixels, verbose, "validation", f"val|{_key(val)}")
    inputs_m = trainer.inputs(np.stack([mirror(p) for p in val.pixels]), verbose, "validation mirrored",
                              f"val mirrored|{_key(val)}") if len(val.pixels) else inputs
    p, m = trainer.predict(inputs)
    pm, mm = trainer.predict(inputs_m)
    p2, m2 = with_mirror(p, m, pm, mm)
    plain = metrics.binary_metrics(val.y, p)["auc"]
    mirrored = metrics.binary_metrics(val.y, p2)["auc"]
    use_mirror = mirroring == "auto" and bool(np.isfinite(mirrored) and np.isfinite(plain) and mirrored > plain)
    probs, maps = (p2, m2) if use_mirror else (p, m)
    return {"probs": probs, "maps": maps, "auc_plain": plain, "auc_mirrored": mirrored, "mirror": use_mirror}


def _fmt(value, spec: str) -> str:
    """A validation figure for the log; 'n/a' where validation could not give it (e.g. one class only)."""
    return "n/a" if value is None else format(value, spec)


def fracture_metadata_from_validation(val: Examples, out: dict, n_boot: int = 1000, basis: str = "validation",
                                      kept: dict | None = None) -> dict:
    """The two cuts (:func:`decisions.select_cuts`, with bootstrap intervals), the Youden threshold for
    the sensitivity/specificity figures, the region threshold, and the validation figures of one trained
    part: untreated fractured films first, then those with an appliance.  ``kept``: cuts and amber bins
    to keep rather than choose (a fine-tuning on too few films, :meth:`finetune.Start.kept_figures`); the
    validation figures are then those at the kept cuts."""
    maps = out["maps"]
    # the cuts, the rank inside "uncertain" and the figures count each radiograph once (the Roboflow
    # export's augmented copies of one upload would count it about three times); the regions, per film
    y, probs, treated = metrics.one_per_radiograph([r.radiograph for r in val.records], val.y, out["probs"],
                                                   [r.treated for r in val.records])
    probs = np.round(probs, decisions.DECIMALS)
    thr = decisions.reported(metrics.youden_threshold(y, probs))
    untreated = np.array([t is False for t in treated])
    if kept is None:
        cuts = decisions.select_cuts(y, probs, untreated)
        cuts["ci95"] = metrics.cut_intervals(y, probs, untreated, n_boot)
        cuts["counted"] = "radiographs"  # augmented copies of one radiograph count once
    else:
        cuts = kept["cuts"]
    edges = (cuts["no_fracture_below"], cuts["fracture_from"])
    region_thr = choose_region_threshold(maps, val.y, val.boxes, val.shapes)
    findings = [decisions.fracture_finding(p, edges) for p in probs]
    kinds = metrics.film_kinds(y, treated)
    items = metrics.localisation_items(maps, val.y, val.boxes, val.shapes, region_thr)
    film_kinds = metrics.film_kinds(val.y, [r.treated for r in val.records])  # the regions' figures, per film
    validation = metrics.binary_metrics(y, probs, thr)
    validation.update({
        "n_films": int(len(val.y)),  # "n" counts radiographs
        "uncertain": float(np.mean([f == "uncertain" for f in findings])) if findings else None,
        "auc_without_mirroring": out["auc_plain"], "auc_with_mirroring": out["auc_mirrored"],
        "by_kind": metrics.promises_by_kind(y, probs, findings, kinds),
        "localisation_by_kind": {k: metrics.localisation([it for it, kk in zip(items, film_kinds) if kk == k])
                                 for k in metrics.FILM_KINDS},
        **metrics.localisation(items),
    })
    return {"threshold": thr, "cuts": cuts, "uncertain_band": list(edges), "validation": validation,
            # the rank inside "uncertain", on the same radiographs
            "amber": amber_bins(y, probs, edges, basis) if kept is None else kept["amber"],
            "localisation": {"map": "cell_probability", "grid": int(maps.shape[1]) if len(maps) else None,
                             "region_threshold": region_thr, "region_extent": boxes.REGION_EXTENT,
                             "max_regions": MAX_REGIONS,
                             "test_time_mirroring": out["mirror"]}}


# --- all parts -------------------------------------------------------------------------------

def load_examples(recs, size: int, pixels=load_pixels, verbose=1, box_source=None) -> Examples:
    x, kept = pixels([r.path for r in recs], size, "Loading images for the fracture models", verbose)
    recs = [recs[i] for i in kept]
    found = [box_source(r) if box_source else boxes.square_boxes(r.path) for r in recs]
    return Examples(recs, x, np.array([r.label for r in recs], dtype=int), np.array([r.split for r in recs]),
                    [f[0] for f in found], [f[1] for f in found])


def train_fracture(data_root: Path, layout: str, out_dir: Path, cfg: TrainConfig,
                   parts=data.TARGET_PARTS, feature_cache: Path | None = None,
                   head: HeadConfig = HeadConfig(), mirroring: str = "off", pooled: bool = False,
                   init_from: Path | None = None, folds: int = 0,
                   min_films: tuple[int, int] | None = None) -> list[Path]:
    """One fracture model per part, each with its two cuts and region threshold from validation.

    ``folds`` (k >= 2): k-fold cross-validation over train + validation (:mod:`crossval`): the cuts,
    the region threshold and the figures stored come from every film's out-of-fold score, and the
    model saved is trained on train + validation together for the fine-tuning epochs the folds chose.

    ``pooled``: one model learns from the fractured and normal films of every region with labels (the
    shared data: leg, hip, forearm, humerus, wrist and finger films besides the three parts), and is then
    saved once per part with that part's own cuts, chosen on the part's own validation films: what a
    fracture line looks like comes from every region, not from a dozen untreated elbow fractures.

    ``feature_cache``: a folder where frozen-trunk features are kept between runs (the slow part on a
    CPU), keyed by backbone, size, cut, seed and the exact list of images.

    ``data_root`` may also be a cache file made by ``scripts/make_cache.py``: the records, their split,
    pixels and boxes then come from it, and the metadata points at the data it was made from.

    ``init_from``: a models folder whose Keras fracture models (``.keras``) the training starts from, part
    by part (fine-tuning on a site's films; backbone, image size, frozen trunk and head come from them; see
    :mod:`finetune`).  ``min_films``: the site's fractured and normal validation films a part needs before
    its cuts and amber bins are chosen on them (else kept from ``init_from``; default 20 and 20).
    """
    pixels, box_source = load_pixels, None
    init, start = {}, None
    if init_from is not None:  # before anything is read or written: a folder with no Keras model is one sentence
        if feature_cache is not None or pooled:
            raise data.DatasetError("--init-from fine-tunes each part's own model: leave out --feature-cache and "
                                    "--pool-regions.")
        init, cfg, head = starting_models(init_from, parts, cfg, head)
        from .finetune import Start
        start = Start(Path(init_from), init, **({} if min_films is None else {"min_films": tuple(min_films)}))
    if head.appliance_weight is None:  # not given: the default (with init_from: the starting model's)
        head = dataclasses.replace(head, appliance_weight=HeadConfig.appliance_weight)
    if Path(data_root).is_file():
        from .cache import read_cache
        cache = read_cache(data_root, cfg.image_size)
        data_root, layout, records, pixels = cache.data_root, cache.layout, cache.records, cache.load_pixels
        box_source = cache.boxes_of
        cache.write_split(out_dir)
    else:
        records = data.read_dataset(data_root, layout)
        layout = data.detect_layout(Path(data_root)) if layout == "auto" else layout
        records = prepare_split(records, data_root, out_dir, cfg.seed, cfg.split_from, cfg.new_split)
        records = smoke_subset(records, cfg.smoke) if cfg.smoke else records
    wanted = [p for p in parts if fracture_records(records, p)]
    for p in parts:
        if p not in wanted:
            print(f"No labelled {p} images in {data_root}; skipping its fracture model.", file=sys.stderr)
    if not wanted:
        raise data.DatasetError(f"No labelled images of {', '.join(parts)} were found in {data_root}.")
    if init:
        wanted = [p for p in wanted if p in init]
        start.plan_appliance_cut(records)
    trainer = LocatorTrainer(cfg, feature_cache, head, init)
    sources = dict(data_root=data_root, layout=layout, out_dir=out_dir, start=start)
    saved = _train_parts(trainer, records, wanted, pixels, box_source, cfg, head, mirroring, pooled, sources, folds)
    carried = start is not None and any("appliance" in i.meta for i in artifacts.fracture_models(out_dir).values())
    if carried:
        start.appliance_cut(out_dir, data_root, cfg.verbose)
    elif box_source is None and not cfg.appliance_head:
        print("No cast/splint/implant detector fitted (--no-appliance-head or --smoke).", file=sys.stderr)
    elif box_source is None and any(r.label == 1 and r.treated is not None for r in records):
        from .appliance import add_appliance_head
        add_appliance_head(out_dir, data_root, cfg.verbose)
    elif box_source is not None:
        print("No appliance detector from a cache file: run training_fracture.py --appliance-head-only on the CPU, "
              "where the data is.", file=sys.stderr)
    if init_from is not None:
        from .finetune import before_and_after
        before_and_after(init_from, out_dir, records, wanted, n_boot=200 if cfg.smoke else 1000)
    return saved


def starting_models(init_from: Path, parts, cfg: TrainConfig, head: HeadConfig):
    """The trainable Keras fracture models of ``init_from`` for ``parts``, and the training and head
    settings that match them (backbone, image size, the frozen trunk where ``frozen_through`` is "auto",
    the head's design, and its appliance weight where ``head.appliance_weight`` is None); one clear
    sentence when the folder lacks the Keras model of a part (e.g. only .tflite files)."""
    infos = {p: i for p, i in artifacts.fracture_models(Path(init_from)).items() if p in parts}
    trainable = {p: i for p, i in infos.items() if i.path.is_file()}
    if not trainable:
        raise WeightsError(
            f"{init_from} holds no trainable Keras fracture model of {', '.join(parts)} (" + (
                "only .tflite files, which cannot be trained further" if infos else "no fracture model at all")
            + "): fine-tuning starts from a folder with the .keras files, e.g. a clone's weights/ or one that "
              "training_fracture.py wrote.")
    missing = [p for p in parts if p not in trainable]
    if missing:
        raise WeightsError(
            f"{init_from} has no Keras model (fracture_<part>.keras) of {', '.join(missing)} to fine-tune from "
            f"(only .tflite files cannot be trained further): leave it out (--parts {' '.join(trainable)}) or start "
            "from a folder with the .keras files.")
    for p, info in trainable.items():
        if info.meta.get("ensemble"):
            print(f"The {p} model in {init_from} is the mean of {len(info.meta['ensemble']['members'])} models; "
                  "fine-tuning starts from the first of them (the part's own model), and the result is that one "
                  "model.", file=sys.stderr)
    first = next(iter(trainable.values())).meta
    if any(i.meta.get("backbone") != first.get("backbone") or i.image_size != first["image_size"]
           for i in trainable.values()):
        raise WeightsError(f"The fracture models in {init_from} differ in backbone or image size: fine-tune them "
                           "one part at a time (--parts).")
    training = first.get("training") or {}
    frozen = cfg.frozen_through
    if frozen == "auto" and training.get("frozen_through") is not None:
        frozen = training["frozen_through"]
    cfg = dataclasses.replace(cfg, backbone=first.get("backbone", cfg.backbone), image_size=int(first["image_size"]),
                              frozen_through=frozen, extra=dict(cfg.extra, init_from=str(init_from)))
    saved_head = {k: v for k, v in (training.get("head") or {}).items()
                  if k in {f.name for f in dataclasses.fields(HeadConfig)}}
    if head.appliance_weight is not None:  # given on the command line
        saved_head.pop("appliance_weight", None)
    head = dataclasses.replace(head, **saved_head)
    if head.appliance_weight is None:
        head = dataclasses.replace(head, appliance_weight=HeadConfig.appliance_weight)
    return trainable, cfg, head


def _train_parts(trainer, records, wanted, pixels, box_source, cfg, head, mirroring, pooled, sources,
                 folds: int = 0) -> list[Path]:
    fit = (lambda t, e, what, c: _fit_cross_validated(t, e, what, c, folds)) if folds >= 2 else \
        (lambda t, e, what, c: (_fit(t, e, what, c), None))
    if pooled:
        regions = sorted({r.part for r in records if r.label is not None and fracture_records(records, r.part)})
        ex = load_examples([r for p in regions for r in fracture_records(records, p) if r.split in ("train", "val")],
                           cfg.image_size, pixels, cfg.verbose, box_source)
        history, oof = fit(trainer, ex, "every region", cfg)
        parts_of = np.array([r.part for r in ex.records])
        return [_save_part(trainer, ex.subset(parts_of == part), part, history, cfg, head, mirroring, regions,
                           oof=_oof_subset(oof, parts_of == part), **sources) for part in wanted]
    saved = []
    for part in wanted:
        recs = [r for r in fracture_records(records, part) if r.split in ("train", "val")]
        ex = load_examples(recs, cfg.image_size, pixels, cfg.verbose, box_source)
        trainer.reset(part)
        history, oof = fit(trainer, ex, part, cfg)
        saved.append(_save_part(trainer, ex, part, history, cfg, head, mirroring, [part], oof=oof, **sources))
    return saved


def _fit_cross_validated(trainer: LocatorTrainer, ex: Examples, what: str, cfg: TrainConfig, k: int):
    """Out-of-fold scores of every train + validation film (:mod:`crossval`), then the model trained on
    all of them for the fine-tuning epochs the folds chose.  Returns its history and the out-of-fold
    outputs (in ``ex``'s order)."""
    from . import crossval
    folds = crossval.cv_folds(ex.records, k, cfg.seed)
    treated = sum(bool(r.treated) for r in ex.records if r.label == 1)
    print(f"  {what} fracture, {k}-fold cross-validation over train + validation: {int(ex.y.sum())} fractured "
          f"({treated} with an appliance in view, weight {trainer.head.appliance_weight:g}) / "
          f"{int((1 - ex.y).sum())} normal")
    versions = trainer.training_versions(ex, cfg.verbose)
    oof = crossval.out_of_fold(trainer, versions, folds, start=what)
    oof["fold"] = folds
    epochs = crossval.final_epochs(oof["fine_tune_epochs"])
    print(f"  {what}: out-of-fold AUC {metrics.binary_metrics(ex.y, oof['probs'])['auc']:.3f}; the model on every "
          f"fold fine-tunes {epochs} epochs (folds: {oof['fine_tune_epochs']})")
    trainer.reset(what)
    trainer.cfg, kept_cfg = dataclasses.replace(cfg, epochs=epochs), trainer.cfg
    try:
        history = trainer.fit(versions, crossval.subset_versions(versions, np.zeros(0, dtype=int), first_only=True))
    finally:
        trainer.cfg = kept_cfg
    del versions
    history["cross_validation"] = {"folds": k, "films": int(len(ex.y)),
                                   "fold_auc": [float(a) for a in oof["fold_auc"]],
                                   "fine_tune_epochs_per_fold": oof["fine_tune_epochs"],
                                   "fine_tune_epochs": epochs, "trained_on": "train + validation"}
    return history, oof


OUT_OF_FOLD_FILE = "out_of_fold_{part}.csv"


def read_out_of_fold(path: Path) -> list[dict]:
    """The rows of an ``out_of_fold_<part>.csv`` (:func:`_write_out_of_fold`)."""
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_out_of_fold(path: Path, ex: Examples, oof: dict, data_root: Path) -> None:
    """Every film's out-of-fold probability, its fold and what it is, so the cuts can be checked."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "part", "label", "appliance", "group", "fold", "probability"])
    for r, f, p in zip(ex.records, oof["fold"], oof["probs"]):
        w.writerow([data._relative(r.path, data_root), r.part, r.label, r.appliance, r.group, int(f),
                    f"{float(p):.6f}"])
    files.atomic_write_text(path, buf.getvalue())


def _oof_subset(oof: dict | None, mask) -> dict | None:
    return None if oof is None else dict(oof, probs=oof["probs"][mask], maps=oof["maps"][mask], fold=oof["fold"][mask])


def copy_weights(source, target) -> int:
    """Copy every layer's weights from ``source`` to the layer of the same name and shapes in ``target``
    (a saved fracture model may carry more, e.g. the cast/implant head); returns how many layers were
    copied, and raises when the backbone or the fracture head does not match."""
    by_name = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in target.layers:
        theirs = by_name.get(layer.name)
        if theirs is None or not layer.weights:
            continue
        mine, src = layer.get_weights(), theirs.get_weights()
        if len(mine) != len(src) or any(a.shape != b.shape for a, b in zip(mine, src)):
            raise WeightsError(f"The layer {layer.name} of the model to start from does not match (another "
                               "backbone, image size or head width?).")
        layer.set_weights(src)
        copied += 1
    if not copied:
        raise WeightsError("The model to start from shares no layer with the fracture model being trained.")
    return copied


def _fit(trainer: LocatorTrainer, ex: Examples, what: str, cfg: TrainConfig) -> dict:
    train, val = ex.subset(ex.split == "train"), ex.subset(ex.split == "val")
    treated = sum(bool(r.treated) for r in train.records if r.label == 1)
    print(f"  {what} fracture: train {int(train.y.sum())} fractured ({treated} with an appliance in view, weight "
          f"{trainer.head.appliance_weight:g}) / {int((1 - train.y).sum())} normal, validation {int(val.y.sum())} / "
          f"{int((1 - val.y).sum())}; {sum(len(b) > 0 for b in train.boxes)} training images with fracture boxes")
    versions = trainer.training_versions(train, cfg.verbose)
    val_versions = Versions([trainer.inputs(val.pixels, cfg.verbose, "validation", f"val|{_key(val)}")],
                            [trainer.targets(val.boxes, val.y)], val.y,
                            example_weights(val.records, trainer.head.appliance_weight))
    history = trainer.fit(versions, val_versions)
    del versions
    return history


def _save_part(trainer, ex: Examples, part: str, history: dict, cfg, head, mirroring, regions,
               data_root, layout, out_dir, oof: dict | None = None, start=None) -> Path:
    """Choose a part's cuts on its validation films, or on every film's out-of-fold score (``oof``), and
    save the model as ``fracture_<part>``."""
    if oof is None:
        val = ex.subset(ex.split == "val")
        scored = validate(trainer, val, cfg.verbose, mirroring)
    else:
        val = ex
        auc = metrics.binary_metrics(ex.y, oof["probs"])["auc"]
        scored = {"probs": oof["probs"], "maps": oof["maps"], "auc_plain": auc, "auc_mirrored": None,
                  "mirror": False}
    meta = base_metadata(artifacts.FRACTURE_TASK, ["normal", "fractured"], cfg, data_root, layout, out_dir,
                         ex.records, history)
    meta["part"] = part
    meta["label_meaning"] = ("abnormal (MURA: any abnormality, broader than fracture)" if layout == "mura"
                             else "fractured")
    meta["architecture"] = "dense fracture head (stride 16) with log-sum-exp pooling"
    meta["training"]["head"] = dataclasses.asdict(head)
    meta["training"]["regions"] = list(regions)
    kept = start.kept_figures(part, val.y) if start is not None and part in start.models else None
    meta.update(fracture_metadata_from_validation(val, scored, basis="validation" if oof is None else "out-of-fold",
                                                  kept=kept))
    if oof is not None:
        _write_out_of_fold(Path(out_dir) / OUT_OF_FOLD_FILE.format(part=part), ex, oof, Path(data_root))
        meta["cuts"]["chosen_on"] = (f"out-of-fold scores of the part's {len(ex.y)} train + validation films "
                                     f"({history['cross_validation']['folds']}-fold cross-validation)")
    model = trainer.model
    if start is not None and part in start.models:  # the starting model's cast/implant detector, carried over
        model = start.finish(part, model, trainer.cut, cfg.backbone, meta)
    path = save_model(model, meta, out_dir, f"fracture_{part}")
    v, c = meta["validation"], meta["cuts"]
    u = v["by_kind"]["untreated"]
    print(f"Saved {path} (validation AUC {_fmt(v['auc'], '.3f')}, untreated {_fmt(u['auc'], '.3f')} on "
          f"{u['n_fractured']} fractures; No fracture below {c['no_fracture_below']:.3f}, Likely FRACTURE from "
          f"{c['fracture_from']:.3f}, uncertain {_fmt(v['uncertain'], '.0%')}; top region in box "
          f"{_fmt(v['top_region_in_box'], '.0%')})")
    return path


# --- new cuts for trained models -------------------------------------------------------------

def _scores_and_maps(run, pixels: np.ndarray, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A fracture model runner's probabilities and cell maps for ``pixels``, a few films at a time."""
    outs = [run(pixels[i:i + batch_size]) for i in range(0, len(pixels), batch_size)]
    return (np.concatenate([np.asarray(o[0])[:, 0] for o in outs]) if outs else np.zeros(0),
            np.concatenate([np.asarray(o[1]) for o in outs]) if outs else np.zeros((0, 1, 1)))


def validation_outputs(info, val: Examples, runtime: str = "auto") -> dict:
    """A saved fracture model's probabilities and cell maps on validation examples (as the app runs it,
    mirrored where its metadata says so), in the form :func:`fracture_metadata_from_validation` takes."""
    from ..models.runtime import load as load_runner
    probs, maps = _scores_and_maps(load_runner(info, runtime), val.pixels)
    old = info.meta.get("validation") or {}
    return {"probs": probs, "maps": maps,
            "auc_plain": old.get("auc_without_mirroring"), "auc_mirrored": old.get("auc_with_mirroring"),
            "mirror": bool((info.meta.get("localisation") or {}).get("test_time_mirroring"))}


def by_region(meta: dict) -> bool:
    """Whether a fracture model's cuts were chosen on its part's whole region (``--by-region``)."""
    return (meta.get("cuts") or {}).get("films") == "region"


def validation_examples(weights_dir: Path, data_root: Path, part: str, size: int, verbose: int = 1,
                        region: bool = False) -> Examples:
    """A part's validation films of the weights' own split (``split.csv``), with their boxes; ``region``:
    those of the part's whole region, every source."""
    records = data.read_split(Path(weights_dir) / data.SPLIT_FILE, Path(data_root))
    recs = [r for r in fracture_records(records, part, region) if r.split == "val"]
    if not recs:
        raise data.DatasetError(f"No labelled validation films of the {part} in {data_root}.")
    return load_examples(recs, size, verbose=verbose)


def mirroring_outputs(info, val: Examples, runtime: str = "auto", mirroring: str = "auto") -> dict:
    """A saved fracture model's validation outputs with test-time mirroring decided again on these films
    (``"auto"``: kept where the mean of the image and its mirror image ranks the radiographs better, the
    AUC of each radiograph once; ``"off"``: never), in :func:`validation_outputs`' form."""
    from ..models.runtime import KerasModel, mirrored
    from ..models.runtime import load as load_runner
    run = KerasModel(info.load(), info.task) if mirrored(info.meta) else load_runner(info, runtime)  # plain
    p, m = _scores_and_maps(run, val.pixels)
    p2, m2 = with_mirror(p, m, *_scores_and_maps(run, np.ascontiguousarray(val.pixels[:, :, ::-1])))
    radiographs = [r.radiograph for r in val.records]
    treated = [r.treated for r in val.records]
    plain, both = (metrics.auc(*metrics.one_per_radiograph(radiographs, val.y, q, treated)[:2]) for q in (p, p2))
    use = mirroring == "auto" and bool(np.isfinite(plain) and np.isfinite(both) and both > plain)
    return {"probs": p2 if use else p, "maps": m2 if use else m, "auc_plain": plain, "auc_mirrored": both,
            "mirror": use}


def rechoose_cuts(weights_dir: Path, data_root: Path, parts=data.TARGET_PARTS, runtime: str = "auto",
                  verbose: int = 1, region: bool = False, mirroring: str | None = None) -> dict[str, dict]:
    """Run each saved fracture model on its part's validation films (the weights' own split; ``region``:
    those of the part's whole region, every source) and store the cuts, the region threshold and the
    validation figures chosen there, as training would have.  The model itself is unchanged; its
    metadata is rewritten whole (temporary file, then rename), without test figures measured at the
    old cuts.  ``mirroring`` ("auto" or "off"; None keeps the model's) decides test-time mirroring again
    on those films (:func:`mirroring_outputs`); where that changes it, the LiteRT file is exported again
    (without TensorFlow it is removed, and the app runs the Keras file).  Returns the new metadata per part."""
    fracture = artifacts.fracture_models(weights_dir)
    out = {}
    for part, info in fracture.items():
        if part not in parts:
            continue
        val = validation_examples(weights_dir, data_root, part, info.image_size, verbose, region)
        scored = (validation_outputs(info, val, runtime) if mirroring is None
                  else mirroring_outputs(info, val, runtime, mirroring))
        new = fracture_metadata_from_validation(val, scored)
        if region:
            views = sorted({r.view or r.part for r in val.records})
            new["cuts"].update(films="region", chosen_on=(
                f"the {part} region's validation films ({', '.join(views)} views; "
                f"{', '.join(sorted({r.source for r in val.records}))}), each radiograph once"))
        meta = dict(info.meta, **{k: new[k] for k in ("threshold", "cuts", "uncertain_band", "validation", "amber")})
        meta["localisation"] = dict(info.meta.get("localisation") or {},
                                    region_threshold=new["localisation"]["region_threshold"],
                                    test_time_mirroring=bool(scored["mirror"]))
        meta.pop("test", None)  # measured at the old cuts: predictions_test.py --write-model-card again
        if bool(scored["mirror"]) != bool((info.meta.get("localisation") or {}).get("test_time_mirroring")):
            _export_again(info, meta)
        files.atomic_write_json(info.path.with_suffix(".json"), meta)
        out[part] = meta
        c, u = meta["cuts"], meta["validation"]["by_kind"]["untreated"]
        print(f"{part}: No fracture below {c['no_fracture_below']:.4f}, Likely FRACTURE from {c['fracture_from']:.4f} "
              f"(untreated AUC {_fmt(u['auc'], '.3f')} on {u['n_fractured']} fractures, called normal "
              f"{_fmt(u['fractured_called']['normal'], '.1%')}; uncertain {_fmt(meta['validation']['uncertain'], '.1%')} "
              f"of the {'region' if region else 'part'}'s films)", file=sys.stderr)
    return out


def _export_again(info, meta: dict) -> None:
    """The LiteRT file of a model whose test-time mirroring changed, exported again (``meta`` updated);
    where this Keras backend cannot export, the stale file is removed, so the app runs the Keras file."""
    from ..models.runtime import export_litert, mirrored
    path = info.path.with_name(info.path.stem + ".tflite")
    litert = export_litert(info.load(), info.task, path, mirrored(meta))
    if litert:
        meta["litert"] = litert
    else:
        path.unlink(missing_ok=True)
        meta.pop("litert", None)


def write_amber(weights_dir: Path, data_root: Path, parts=data.TARGET_PARTS, runtime: str = "auto",
                verbose: int = 1) -> dict[str, dict]:
    """Run each saved fracture model on its part's validation films (the weights' own split) and store
    only the ``amber`` entry (:func:`amber.amber_bins`, basis "validation") at the model's present cuts;
    every other metadata field and the model files stay as they are.  The probabilities are checked
    against the stored validation AUC first (another split or other data would not reproduce it).
    A cross-validated model (its cuts chosen on ``out_of_fold_<part>.csv``) takes its bins from those
    out-of-fold scores instead (basis "out-of-fold"), as training would have.
    Returns the entry per part."""
    fracture = artifacts.fracture_models(weights_dir)
    out = {}
    for part, info in fracture.items():
        if part not in parts:
            continue
        oof_file = Path(weights_dir) / OUT_OF_FOLD_FILE.format(part=part)
        if (info.meta.get("cuts") or {}).get("chosen_on") and oof_file.is_file():
            rows = read_out_of_fold(oof_file)
            entry = amber_bins([int(r["label"]) for r in rows], [float(r["probability"]) for r in rows],
                               decisions.finding_edges(info.meta), "out-of-fold")
            files.atomic_write_json(info.path.with_suffix(".json"), dict(info.meta, amber=entry))
            out[part] = entry
            continue
        val = validation_examples(weights_dir, data_root, part, info.image_size, verbose, by_region(info.meta))
        stored = info.meta.get("validation") or {}
        # metadata written before radiographs were counted once counted every film
        keys = [r.radiograph if "n_films" in stored else r.path for r in val.records]
        y, probs, _ = metrics.one_per_radiograph(keys, val.y, validation_outputs(info, val, runtime)["probs"],
                                                 [r.treated for r in val.records])
        probs = np.round(probs, decisions.DECIMALS)
        auc = metrics.binary_metrics(y, probs)["auc"]
        if stored.get("auc") is not None and not (len(y) == stored.get("n") and abs(auc - stored["auc"]) < 2e-3):
            raise data.DatasetError(f"The {part} model's validation films give AUC {auc:.4f} on {len(y)} radiographs, "
                                    f"not the stored {stored['auc']:.4f}: is {data_root} the data it was trained on?")
        entry = amber_bins(y, probs, decisions.finding_edges(info.meta), "validation")
        files.atomic_write_json(info.path.with_suffix(".json"), dict(info.meta, amber=entry))
        out[part] = entry
        bins = ", ".join(f"[{b['from']:.4f}, {b['to']:.4f}): {b['fractured']}/{b['n']}" for b in entry["bins"])
        print(f"{part}: amber on {entry['n_films']} validation films (prevalence {entry['prevalence']:.1%}): "
              f"{bins or 'no film in the uncertain range'}", file=sys.stderr)
    return out
