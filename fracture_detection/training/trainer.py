"""Training shared by ``training_parts.py`` and ``training_fracture.py``.

Sections: loading images into a compact uint8 cache, batching with class
weights, two-phase fine-tuning (frozen backbone, then the whole model at a low
learning rate), and writing the model with its metadata.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import data
from ..io.data import SPLIT_FILE


@dataclass
class TrainConfig:
    backbone: str = "mobilenetv2"
    weights: str = "offline"
    epochs: int = 15
    head_epochs: int = 2
    batch_size: int = 32
    image_size: int = 224
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    patience: int = 4
    seed: int = 42
    frozen_through: str | None = "auto"
    augment_copies: int = 2
    time_limit: float | None = None  # seconds for one model's training (both phases); None: no limit
    verbose: int = 1
    extra: dict = field(default_factory=dict)
    split_from: Path | None = None  # a saved split.csv to reuse where --out has none (the bundle's by default)
    new_split: bool = False         # draw a new split even where one is saved
    smoke: int = 0                  # > 0: train on at most this many films per split, part and label
    appliance_head: bool = True     # fit the cast/splint/implant detector where the data has those labels


# --- data --------------------------------------------------------------------------

def prepare_split(records: list[data.Record], data_root: Path, out_dir: Path, seed: int,
                  reuse: Path | None = None, new: bool = False) -> list[data.Record]:
    """Give ``records`` the split saved in ``out_dir/split.csv``, else the one in ``reuse`` (e.g. the
    bundled ``weights/split.csv``, so that a model trained into a new folder keeps the bundle's test films
    out of training), extended to any images it does not list (see :func:`data.extend_split`); a new one
    only with ``new`` or where neither lists any of the images. The result is saved in ``out_dir``.

    Both training scripts call this, so the body-part and fracture models share one split and
    no model ever trained on another's test images; adding a dataset never moves an image that
    already had a split. Saved paths are relative to the data folder, so a split keeps working when
    the data moves.
    """
    path = Path(out_dir) / SPLIT_FILE
    listed = 0
    if not new:
        for saved in (path, reuse):
            if saved is not None and Path(saved).is_file():
                listed = data.apply_split(records, Path(saved), data_root)
                if listed:
                    break
    if listed == len(records) and path.is_file() and not new:
        return records
    data.extend_split(records, seed=seed) if listed else data.assign_splits(records, seed=seed)
    data.write_split(records, path, data_root)
    return records


def smoke_subset(records: list[data.Record], per_stratum: int) -> list[data.Record]:
    """At most ``per_stratum`` films per (split, part, label), the first in path order: a quick check of
    the whole pipeline (``--smoke``), never a model to use."""
    taken: dict = {}
    out = []
    for r in sorted(records, key=lambda r: r.path):
        key = (r.split, r.part, r.label)
        if taken.get(key, 0) < per_stratum:
            taken[key] = taken.get(key, 0) + 1
            out.append(r)
    return out


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """Inverse-frequency weights, normalised so the mean weight per image is 1."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = len(y) / (present.sum() * counts[present])
    return {i: float(w[i]) for i in range(n_classes)}


def _batches(xs, y, batch_size, weights=None, shuffle=False, seed=0):
    """Batches from one array or several copies of it (``xs``; a random copy per image).  ``weights``:
    a weight per class (dict) or per image (array), or None."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(y))
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(y) / batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            copy = self.rng.integers(len(xs), size=len(idx)) if len(xs) > 1 else np.zeros(len(idx), int)
            xb = np.stack([xs[c][i] for c, i in zip(copy, idx)]).astype("float32")
            yb = y[idx].astype("float32")
            if weights is None:
                return xb, yb
            if isinstance(weights, np.ndarray):
                return xb, yb, weights[idx].astype("float32")
            return xb, yb, np.array([weights[int(v)] for v in y[idx]], dtype="float32")

        def on_epoch_end(self):
            if shuffle:
                self.rng.shuffle(self.order)

    return Batches()


# --- fitting -----------------------------------------------------------------------

def _compile(model, lr, n_classes):
    import keras
    if n_classes == 2:
        loss, acc = keras.losses.BinaryCrossentropy(), keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss, acc = keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(
            name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=[acc])


def resolve_cut(cfg: TrainConfig) -> str | None:
    if cfg.weights == "none" or cfg.frozen_through in (None, "none", ""):
        return None
    if cfg.frozen_through == "auto":
        from ..models.backbones import DEFAULT_CUTS
        return DEFAULT_CUTS.get(cfg.backbone) if cfg.weights == "offline" or cfg.backbone == "resnet50" else None
    return cfg.frozen_through


def _features(preprocess, trunk, x, augment=None, batch_size=64):
    """Trunk output for uint8 pixels, as float16 (optionally after a random augmentation)."""
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].astype("float32")
        if augment is not None:
            xb = augment(xb, training=True)
        out.append(np.asarray(trunk.predict_on_batch(preprocess(xb))).astype("float16"))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(trunk.output.shape[1:]), "float16")


class Trainer:
    """A classifier and the way it trains: two-phase fine-tuning, optionally on a cached trunk.

    Phase one trains only the new output layer (backbone frozen), phase two also the
    backbone at a low learning rate.  With a cut (``frozen_through``) the backbone below the
    cut stays frozen: :meth:`inputs` computes its output once per image (plus
    ``augment_copies`` augmented copies) and phase two trains the layers above it on that
    cache, which makes CPU training practical.  ``self.model`` is always the whole model,
    preprocessing included; the trained part shares its layers.
    """

    def __init__(self, classes: list[str], cfg: TrainConfig):
        import keras

        from ..models.backbones import build_classifier
        keras.utils.set_random_seed(cfg.seed)
        self.cfg, self.n_classes = cfg, len(classes)
        self.model = build_classifier(cfg.backbone, cfg.weights, cfg.image_size, self.n_classes)
        self.backbone = self.model.get_layer("backbone")
        self.cut = resolve_cut(cfg)
        if self.cut is None:
            self.trained = self.model
            return
        cut_tensor = self.backbone.get_layer(self.cut).output
        self.trunk = keras.Model(self.backbone.input, cut_tensor)
        top = keras.Model(cut_tensor, self.backbone.output)
        feats = keras.Input(cut_tensor.shape[1:], name="trunk_features")
        z = top(feats, training=False)
        for name in ("pool", "dropout", "probability"):
            z = self.model.get_layer(name)(z)
        self.trained = keras.Model(feats, z)

    def inputs(self, x: np.ndarray, copies: int = 0) -> list[np.ndarray]:
        """What the trained part takes for these pixels: the original and ``copies`` augmented versions."""
        if self.cut is None:
            return [x]
        preprocess, augment = self.model.get_layer("preprocess"), self.model.get_layer("augment")
        if self.cfg.verbose:
            print(f"Computing frozen-trunk features (up to {self.cut}) for {len(x)} images x {1 + copies} copies")
        return [_features(preprocess, self.trunk, x)] + [
            _features(preprocess, self.trunk, x, augment) for _ in range(copies)]

    def fit(self, train_x: list, y_train, val_x: np.ndarray, y_val, head_phase: bool = True,
            sample_weight: np.ndarray | None = None) -> dict:
        """Train on prepared inputs (from :meth:`inputs`); the best epoch's weights are kept.  Each
        training image weighs ``sample_weight`` (default: its class's inverse frequency)."""
        import keras
        cfg = self.cfg
        weights = class_weights(y_train, self.n_classes) if sample_weight is None else np.asarray(sample_weight)
        train = _batches(train_x, y_train, cfg.batch_size, weights, shuffle=True, seed=cfg.seed)
        val = _batches([val_x], y_val, cfg.batch_size)
        history: dict[str, list] = {}
        deadline = _deadline(cfg.time_limit)

        def run(epochs, lr, phase):
            if epochs <= 0 or deadline.reached:
                return
            _compile(self.trained, lr, self.n_classes)
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                 restore_best_weights=True)
            auc = _ValidationAUC(self.trained, val_x, y_val, self.n_classes)
            h = self.trained.fit(train, validation_data=val if len(y_val) else None, epochs=epochs,
                                 callbacks=[auc] + ([stop] if len(y_val) else []) + [deadline], verbose=cfg.verbose)
            for k, v in h.history.items():
                history.setdefault(k, []).extend(float(a) for a in v)
            history.setdefault("phase", []).extend([phase] * len(h.history["loss"]))
            if len(y_val):
                history.setdefault("val_auc", []).extend(auc.values)

        if head_phase and cfg.weights != "none" and cfg.head_epochs > 0:
            self.backbone.trainable = False
            run(cfg.head_epochs, cfg.head_learning_rate, "head")
        self.backbone.trainable = True
        run(cfg.epochs, cfg.learning_rate if cfg.weights != "none" else cfg.head_learning_rate, "fine_tune")
        history["frozen_through"] = self.cut
        history["time_limit_reached"] = deadline.reached
        return history


def _ValidationAUC(model, x_val, y_val, n_classes: int):
    """A callback that records the validation AUC after every epoch in ``values`` (one-vs-rest, averaged
    over the classes present, for more than two classes; None where the validation set has one class)."""
    import keras

    class ValidationAUC(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []

        def on_epoch_end(self, epoch, logs=None):
            y = np.asarray(y_val, dtype=int)
            if len(np.unique(y)) < 2:
                self.values.append(None)
                return
            from sklearn.metrics import roc_auc_score
            p = np.concatenate([np.asarray(model.predict_on_batch(x_val[i:i + 256].astype("float32")))
                                for i in range(0, len(x_val), 256)])
            if n_classes == 2 or p.shape[1] == 1:
                self.values.append(float(roc_auc_score(y, p.reshape(len(y), -1)[:, -1])))
                return
            present = np.unique(y)
            self.values.append(float(np.mean([roc_auc_score(y == c, p[:, c]) for c in present])))

    return ValidationAUC()


def _deadline(seconds: float | None):
    """A callback that ends training after the epoch when another one would end past the time limit
    (EarlyStopping, listed before it, still restores the best epoch)."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.end = None if seconds is None else time.monotonic() + seconds
            self.reached = False

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            now = time.monotonic()
            if self.end is not None and now + (now - self.started) > self.end:
                self.reached = self.model.stop_training = True
                print(f"Time limit: stopping after epoch {epoch + 1}.", flush=True)

    return Deadline()


def fit(x_train, y_train, x_val, y_val, classes: list[str], cfg: TrainConfig):
    """Train a new classifier on uint8 pixels; returns ``(model, history)``."""
    trainer = Trainer(classes, cfg)
    history = trainer.fit(trainer.inputs(x_train, cfg.augment_copies), y_train, trainer.inputs(x_val)[0], y_val)
    return trainer.model, history


def predict(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Model probabilities for uint8 pixels, in batches (no augmentation)."""
    from ..models.backbones import output_probabilities
    out = [output_probabilities(model.predict_on_batch(x[i:i + batch_size].astype("float32")))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,))


# --- metadata ----------------------------------------------------------------------

def base_metadata(task: str, classes, cfg: TrainConfig, data_root: Path, layout: str, out_dir: Path,
                  records: list[data.Record], history: dict) -> dict:
    import keras
    try:
        root = os.path.relpath(Path(data_root).resolve(), Path(out_dir).resolve())
    except ValueError:  # another drive on Windows
        root = str(Path(data_root).resolve())
    counts: dict = {}
    for r in records:
        counts.setdefault(r.split, {}).setdefault(r.part, {"fractured": 0, "normal": 0})
        counts[r.split][r.part]["fractured" if r.label else "normal"] += 1
    return {
        "task": task,
        "classes": list(classes),
        "image_size": cfg.image_size,
        "backbone": cfg.backbone,
        "pretrained_weights": cfg.weights,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "data": {"root": root, "layout": layout, "split_file": SPLIT_FILE, "counts": counts,
                 "sources": sorted({r.source for r in records})},
        "training": {"epochs": cfg.epochs, "head_epochs": cfg.head_epochs, "batch_size": cfg.batch_size,
                     "learning_rate": cfg.learning_rate, "head_learning_rate": cfg.head_learning_rate,
                     "patience": cfg.patience, "seed": cfg.seed, "frozen_through": history.get("frozen_through"),
                     "augment_copies": cfg.augment_copies, "time_limit": cfg.time_limit,
                     "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), **cfg.extra},
        "history": history,
    }


# --- the recipes ------------------------------------------------------------------------
# The body-part model, its gate and appliance head: body_part.train_body_part.


def _print_counts(what, classes, split_data):
    for s, (_, y) in split_data.items():
        counts = np.bincount(y, minlength=len(classes))
        print(f"  {what} {s:5}: " + ", ".join(f"{c} {n}" for c, n in zip(classes, counts)))
