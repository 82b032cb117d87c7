"""Training the body-part model with its gate (:mod:`gate`) and its appliance head.

The recipe, shared by ``training_parts.py`` and the leave-one-region-out evaluation (:mod:`loro`):

1. :func:`body_part_data`: every image with its class, split, region, source and appliance label.
   The classes are the views a reader names (finger, hand, wrist, forearm, elbow, shoulder: those of
   the target regions the data has), or with ``views=False`` the regions themselves, plus *other*:
   every film of another region (leg, hip, spine, a humerus shaft, a chest or whole trunk, ...) and
   generated non-radiographs.  Which region (fracture model) each class goes to is stored once, in
   the metadata's ``regions``; the gate and the chain work on regions (a region's probability is the
   sum of its views').
2. :func:`trunk_features`: the frozen trunk's output for every image, plus augmented copies of the
   training images, computed once (and optionally kept in a cache file, so a leave-one-region-out
   run or a second training reuses it).
3. :func:`fit_top`: the layers above the trunk and the output layer, trained as
   :class:`training.Trainer` does, on any subset of the images.
4. :func:`pooled_outputs`, :func:`fit_gate` and :func:`fit_appliance_head`: the pooled features of
   every image, the Mahalanobis gate, its cuts (target cut, part floor, OOD threshold) chosen on
   validation, and P(cast or implant).
5. :func:`model_with_gate`: the classifier with the gate's score and the appliance probability as
   extra outputs, which is what is saved and exported to LiteRT.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..chain import decisions
from ..evaluation import metrics
from ..io import data, files
from ..models import artifacts
from ..models.runtime import body_part_outputs, save_model
from . import gate
from .trainer import TrainConfig, Trainer, _features, base_metadata, prepare_split, smoke_subset

GENERATED = "generated"   # region of the generated non-radiographs
# the views the body-part model can learn (those whose region a fracture model reads); its classes take them
# region by region, in the order of the regions given
VIEW_CLASSES = tuple(v for v, r in data.VIEW_REGIONS.items() if r != data.OTHER_REGION and "_" not in v)
BUDGET_GROUPS = {"pooled": None, "region": ("region",), "region_source": ("region", "source")}


# --- the images ------------------------------------------------------------------------

@dataclass
class BodyPartData:
    classes: list[str]
    sources: list               # paths, or arrays for the generated images
    y: np.ndarray               # class index
    split: np.ndarray           # train / val / test
    region: np.ndarray          # the record's part, or GENERATED
    appliance: np.ndarray       # 1, 0 or data.UNKNOWN_APPLIANCE
    origin: np.ndarray          # the record's dataset (fracatlas, roboflow, ...), or GENERATED
    records: list[data.Record]  # the dataset's usable records (for the metadata)
    synthetic: int
    regions: dict               # each class but 'other' -> its region (the fracture model that reads it)
    view: np.ndarray            # what the film shows (data.VIEWS), '' unknown

    @property
    def reject_index(self) -> int | None:
        return self.classes.index(artifacts.REJECT_CLASS) if artifacts.REJECT_CLASS in self.classes else None

    @property
    def class_regions(self) -> tuple:
        """Each class's region in class order (the rule's ``regions``)."""
        return tuple(self.regions.get(c, c) for c in self.classes)

    def rule(self, choice: "gate.GateChoice") -> decisions.BodyPartRule:
        return choice.rule(self.reject_index, self.class_regions)

    def keep(self, idx) -> "BodyPartData":
        idx = np.asarray(idx, dtype=int)
        return BodyPartData(self.classes, [self.sources[i] for i in idx], self.y[idx], self.split[idx],
                            self.region[idx], self.appliance[idx], self.origin[idx], self.records, self.synthetic,
                            self.regions, self.view[idx])

    def budget_groups(self, mask, by: str = "region_source") -> np.ndarray | None:
        """The group each image in ``mask`` spends the gate's budget in: its region, and its source."""
        keys = BUDGET_GROUPS[by]
        if keys is None:
            return None
        cols = {"region": self.region[mask], "source": self.origin[mask]}
        return np.array(["/".join(str(cols[k][i]) for k in keys) for i in range(int(np.sum(mask)))])

    def non_target_regions(self) -> list[str]:
        return sorted({str(r) for r, y in zip(self.region, self.y) if y == self.reject_index})


def body_part_data(records: list[data.Record], parts, synthetic: int, seed: int, views: bool = True,
                   by_part: bool = False) -> BodyPartData:
    """Records (already split) plus ``synthetic`` generated non-radiographs as classification data.
    ``parts``: the target regions (elbow, hand, shoulder).  A film of one of them is its view's class
    (``views``; a film with no view of its own, e.g. a shoulder-and-chest film, takes the region's own
    class), or its region's; every other film is *other*.  FracAtlas ``mixed`` images (several regions)
    and records without a split are left out.  ``region`` names, per film, its target region, or for
    *other* what it shows (humerus, chest, other: by eye) or its dataset part (leg, hip, spine).
    ``by_part``: the dataset's parts instead of regions, as models made before views were trained (so
    a Roboflow wrist film is *other* there)."""
    from ..io.synthetic import non_radiographs, split_of
    if by_part:
        records = [data.Record(**{**asdict(r), "view": ""}) for r in records]
    usable = [r for r in records if r.region != "mixed" and r.split]
    targets = [r for r in usable if r.region in parts]

    def class_of(r: data.Record) -> str:
        return r.view if views and data.VIEW_REGIONS.get(r.view) == r.region and r.view in VIEW_CLASSES \
            else r.region

    if views:  # per region in the order given, the views the data has (and the region's own word)
        present = {class_of(r) for r in targets} | set(parts)
        named = [c for part in parts for c in
                 ([v for v in VIEW_CLASSES if v in present and data.VIEW_REGIONS[v] == part] or [part])]
    else:      # the regions, in the order given (as models made before views)
        named = list(parts)
    has_other = any(r.region not in parts for r in usable) or synthetic > 0
    classes = named + ([artifacts.REJECT_CLASS] if has_other else [])
    index = {c: i for i, c in enumerate(classes)}
    other = index.get(artifacts.REJECT_CLASS)
    usable = [r for r in usable if r.region in parts or other is not None]
    sources: list = [r.path for r in usable]
    y = [index[class_of(r)] if r.region in parts else other for r in usable]
    split = [r.split for r in usable]
    region = [r.region if r.region in parts else (r.view if r.region == data.OTHER_REGION and r.view else r.region)
              for r in usable]
    view = [r.view for r in usable]
    appliance = [data.appliance_label(r) for r in usable]
    origin = [r.source for r in usable]
    if synthetic:
        fake = non_radiographs(synthetic, seed=seed)
        sources += fake
        y += [other] * len(fake)
        split += [split_of(i, len(fake)) for i in range(len(fake))]
        region += [GENERATED] * len(fake)
        view += [""] * len(fake)
        appliance += [data.UNKNOWN_APPLIANCE] * len(fake)
        origin += [GENERATED] * len(fake)
    regions = {c: data.VIEW_REGIONS.get(c, c) if views else c for c in named}
    return BodyPartData(classes, sources, np.array(y, dtype=int), np.array(split), np.array(region),
                        np.array(appliance, dtype=int), np.array(origin), usable, synthetic, regions, np.array(view))


def body_part_data_for(records: list[data.Record], meta: dict) -> BodyPartData:
    """:func:`body_part_data` as a saved body-part model was trained (its classes, views or not, and
    its generated images; by the dataset's parts for a model made before views, whose metadata has no
    ``regions``); a :class:`data.DatasetError` when the data no longer gives its classes."""
    reject = meta.get("reject_class")
    named = [c for c in meta["classes"] if c != reject]
    regions = meta.get("regions")
    parts = sorted(set(regions.values())) if regions else named
    spec = meta.get("synthetic_non_radiographs") or {}
    bp = body_part_data(records, parts, int(spec.get("count", 0)), int(spec.get("seed", 0)), views=bool(regions),
                        by_part=not regions)
    if bp.classes != list(meta["classes"]):
        raise data.DatasetError(f"The data gives the classes {', '.join(bp.classes)}, but the body-part model "
                                f"has {', '.join(meta['classes'])}; train it again with training_parts.py.")
    return bp


# --- the frozen trunk's features, once ---------------------------------------------------

@dataclass
class TrunkFeatures:
    """What :meth:`Trainer.inputs` gives, for every image at once: ``original`` (every image, no
    augmentation) and ``copies`` (augmented copies of the images at ``train_index``)."""
    original: np.ndarray
    copies: list[np.ndarray]
    train_index: np.ndarray

    def training_inputs(self, mask: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Inputs for training on the images in ``mask`` (train split only) and their indices."""
        pos = mask[self.train_index]
        idx = self.train_index[pos]
        return [self.original[idx]] + [c[pos] for c in self.copies], idx


def _fingerprint(bp: BodyPartData, cfg: TrainConfig, cut) -> str:
    names = [str(Path(s).resolve()) if isinstance(s, str) else f"generated:{i}" for i, s in enumerate(bp.sources)]
    spec = {"sources": names, "split": bp.split.tolist(), "size": cfg.image_size, "backbone": cfg.backbone,
            "weights": cfg.weights, "cut": cut, "seed": cfg.seed, "copies": cfg.augment_copies,
            "synthetic": bp.synthetic}
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()


def trunk_features(trainer: Trainer, bp: BodyPartData, cfg: TrainConfig, cache: Path | None = None):
    """Read every image and compute the trunk's features; returns ``(features, bp)`` where ``bp``
    has lost the images that could not be read.  With ``cache``, a file from an earlier run with the
    same images, split and trunk is reused (and written when missing or stale)."""
    key = _fingerprint(bp, cfg, trainer.cut)
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as z:
            if str(z["fingerprint"]) == key:
                if cfg.verbose:
                    print(f"Frozen-trunk features from {cache}")
                n = int(z["n_copies"])
                return (TrunkFeatures(z["original"], [z[f"copy_{i}"] for i in range(n)], z["train_index"]),
                        bp.keep(z["kept"]))
    x, kept = data.load_pixels(bp.sources, cfg.image_size, "Loading images for the body-part model", cfg.verbose)
    bp = bp.keep(kept)
    train_index = np.nonzero(bp.split == "train")[0]
    original = trainer.inputs(x)[0]
    copies = []
    if trainer.cut is not None:  # as Trainer.inputs makes them, without computing the originals twice
        preprocess, augment = trainer.model.get_layer("preprocess"), trainer.model.get_layer("augment")
        if cfg.verbose:
            print(f"Augmented copies of the {len(train_index)} training images x {cfg.augment_copies}")
        copies = [_features(preprocess, trainer.trunk, x[train_index], augment) for _ in range(cfg.augment_copies)]
    del x
    feats = TrunkFeatures(original, copies, train_index)
    if cache is not None and trainer.cut is not None:
        with files.atomic_path(Path(cache), suffix=".npz") as tmp:
            np.savez(tmp, fingerprint=key, kept=kept, original=original, train_index=train_index,
                     n_copies=len(copies), **{f"copy_{i}": c for i, c in enumerate(copies)})
    return feats, bp


# --- training ----------------------------------------------------------------------------

BALANCES = ("views", "regions")


def balance_weights(bp: BodyPartData, idx: np.ndarray, balance: str = "views") -> np.ndarray | None:
    """Each training image's weight in the loss (mean 1 over ``idx``).  ``views``: None, i.e. each class
    weighs alike (inverse frequency), so the target regions' view classes outweigh *other* (one class
    of seven).  ``regions``: each target region and *other* weigh alike, a region's weight shared
    equally by its view classes, and *other*'s by what its films show (humerus, leg, hip, spine,
    chest, generated images, ...) in proportion to the square root of their counts, so a small,
    hard region such as a humerus shaft is not drowned by legs and spines."""
    if balance == "views":
        return None
    if balance != "regions":
        raise ValueError(f"unknown class balance {balance!r}; choose one of {', '.join(BALANCES)}")
    y, other = bp.y[idx], bp.reject_index
    group = np.array([artifacts.REJECT_CLASS if c == other else bp.regions[bp.classes[c]] for c in y])
    w = np.zeros(len(idx))
    groups = sorted(set(group))
    for g in groups:
        in_g = group == g
        if g == artifacts.REJECT_CLASS:   # shared by what the films show, by the square root of their counts
            sub = bp.region[idx][in_g]
            names, counts = np.unique(sub, return_counts=True)
            per = dict(zip(names, np.sqrt(counts) / np.sqrt(counts).sum() / counts))
            w[in_g] = [per[s] for s in sub]
        else:                            # shared equally by the region's view classes
            classes, counts = np.unique(y[in_g], return_counts=True)
            per = dict(zip(classes, 1.0 / (len(classes) * counts)))
            w[in_g] = [per[c] for c in y[in_g]]
    w /= len(groups)
    return w * len(idx)


def fit_top(trainer: Trainer, feats: TrunkFeatures, bp: BodyPartData, train: np.ndarray, val: np.ndarray,
            balance: str = "views") -> dict:
    """Train the model's layers above the trunk on the images in ``train`` (early stopping on
    ``val``), starting from whatever weights ``trainer.model`` holds; ``balance``: how the loss weighs
    the classes (:func:`balance_weights`)."""
    train_in, idx = feats.training_inputs(train)
    return trainer.fit(train_in, bp.y[idx], feats.original[val], bp.y[val],
                       sample_weight=balance_weights(bp, idx, balance))


def _feature_model(trainer: Trainer):
    """Input (trunk features, or pixels without a cut) -> [pooled features, class probabilities]."""
    import keras
    model = trainer.model
    if trainer.cut is None:
        return keras.Model(model.inputs, [model.get_layer("pool").output, model.output])
    cut = trainer.backbone.get_layer(trainer.cut).output
    top = keras.Model(cut, trainer.backbone.output)
    inp = keras.Input(cut.shape[1:])
    pooled = model.get_layer("pool")(top(inp, training=False))
    return keras.Model(inp, [pooled, model.get_layer("probability")(pooled)])


@dataclass
class Outputs:
    pooled: np.ndarray   # (N, d) pooled features
    probs: np.ndarray    # (N, classes)
    logits: np.ndarray   # (N, classes)


def pooled_outputs(trainer: Trainer, inputs: np.ndarray, batch_size: int = 128) -> Outputs:
    """Pooled features, probabilities and logits of the trained model for prepared inputs."""
    m = _feature_model(trainer)
    pooled, probs = [], []
    for i in range(0, len(inputs), batch_size):
        a, b = m.predict_on_batch(inputs[i:i + batch_size].astype("float32"))
        pooled.append(np.asarray(a, "float32"))
        probs.append(np.asarray(b, "float32"))
    pooled, probs = np.concatenate(pooled), np.concatenate(probs)
    w, b = trainer.model.get_layer("probability").get_weights()
    return Outputs(pooled, probs, pooled @ w + b)


def fit_gate(bp: BodyPartData, out: Outputs, train: np.ndarray, val: np.ndarray, components: int = gate.COMPONENTS,
             budget_by: str = "region_source"):
    """The Mahalanobis statistics on the training images of the target regions (one mean per class),
    and the gate's cuts on their validation images, the budget holding in each of ``budget_by``'s groups
    (:data:`BUDGET_GROUPS`: each region, and each source's films of it, by default); returns
    ``(statistics, choice)``."""
    reject = bp.reject_index
    target = bp.y != reject
    stats = gate.fit_mahalanobis(out.pooled[train & target], bp.y[train & target], components)
    choice = gate.choose_gate(out.probs[val & target], stats.scores(out.pooled[val & target]), reject,
                              regions=bp.class_regions, groups=bp.budget_groups(val & target, budget_by),
                              budget_by=budget_by)
    return stats, choice


def fit_appliance_head(bp: BodyPartData, out: Outputs, train: np.ndarray, val: np.ndarray) -> dict | None:
    """P(cast or implant) from the pooled features, threshold by Youden's J on validation; None
    when the training or validation images hold no labelled cast/implant and no negative."""
    known_tr, known_va = train & (bp.appliance != data.UNKNOWN_APPLIANCE), val & (bp.appliance != data.UNKNOWN_APPLIANCE)
    if len(np.unique(bp.appliance[known_tr])) < 2 or len(np.unique(bp.appliance[known_va])) < 2:
        return None
    head = gate.fit_appliance(out.pooled[known_tr], bp.appliance[known_tr])
    p_val = gate.appliance_probability(out.pooled[known_va], head)
    thr = decisions.reported(metrics.youden_threshold(bp.appliance[known_va], p_val))
    return {"head": head, "label": gate.APPLIANCE, "threshold": thr,
            "validation": metrics.binary_metrics(bp.appliance[known_va], p_val, thr),
            "training_images": {"with": int((bp.appliance[known_tr] == 1).sum()),
                                "without": int((bp.appliance[known_tr] == 0).sum())}}


def compare_scores(bp: BodyPartData, out: Outputs, train: np.ndarray, val: np.ndarray) -> dict:
    """Every candidate out-of-distribution score alone, its threshold rejecting at most the OOD
    check's share of the budget of the validation images of the three parts: the share rejected of
    each non-target region's validation images."""
    target = bp.y != bp.reject_index
    targets = [i for i in range(len(bp.classes)) if i != bp.reject_index]
    scores = gate.candidate_scores(out.pooled[train & target], bp.y[train & target], out.pooled[val],
                                   out.logits[val], out.probs[val], targets)
    regions, tv = bp.region[val], target[val]
    names = [r for r in bp.non_target_regions() if (regions == r).any()]
    rejected = {}
    share = gate.MAX_TARGET_REJECTION * gate.SHARES["unfamiliar"]
    for name, sc in scores.items():
        thr = gate.threshold_for(sc[tv], share)
        rejected[name] = {r: float(np.mean(sc[regions == r] > thr)) for r in names}
    return {"regions": names, "rejected": rejected, "share": share}


def model_with_gate(model, stats: gate.Mahalanobis, appliance: dict | None):
    """The classifier with two more outputs on its pooled features: the OOD score and P(cast or implant)."""
    import keras
    pooled = model.get_layer("pool").output
    outputs = [model.output, gate.mahalanobis_layers(pooled, stats)]
    if appliance is not None:
        outputs.append(gate.appliance_layer(pooled, appliance["head"]))
    return keras.Model(model.inputs, outputs, name=model.name)


def decide(bp: BodyPartData, out: Outputs, rule: decisions.BodyPartRule, stats: gate.Mahalanobis | None,
           mask) -> tuple:
    """The gate's decisions for the images in ``mask``: ``(chosen class, reasons)``."""
    return decisions.decide_body_parts(out.probs[mask], rule, None if stats is None else stats.scores(out.pooled[mask]))


def rejection_by_region(bp: BodyPartData, reasons, mask) -> dict:
    """Per region: images, share rejected and why."""
    out = {}
    regions = bp.region[mask]
    for region in sorted(set(regions)):
        rs = [r for r, g in zip(reasons, regions) if g == region]
        out[str(region)] = {"n": len(rs), "rejected": float(np.mean([r is not None for r in rs])),
                            "reasons": {k: sum(r == k for r in rs) for k in sorted({r for r in rs if r})}}
    return out


def body_part_validation(bp: BodyPartData, out: Outputs, rule, stats, val: np.ndarray) -> dict:
    """Validation figures of the whole gate: accuracy (rejected images count as *other*), confusion
    matrix, and the share rejected per region."""
    return gate_figures(bp, out.probs[val], None if stats is None else stats.scores(out.pooled[val]), rule, val)


def gate_figures(bp: BodyPartData, probs: np.ndarray, scores, rule, val: np.ndarray) -> dict:
    """:func:`body_part_validation` from the images' probabilities and OOD scores (rows of ``val``)."""
    from sklearn.metrics import confusion_matrix
    chosen, reasons = decisions.decide_body_parts(probs, rule, scores)
    y = bp.y[val]
    target = y != bp.reject_index
    accepted = np.array([r is None for r in reasons], dtype=bool)
    names = np.array(bp.class_regions)
    both = target & accepted
    return {
        "n": int(len(y)), "accuracy": float((chosen == y).mean()) if len(y) else float("nan"),
        "confusion_matrix": confusion_matrix(y, chosen, labels=list(range(len(bp.classes)))).tolist(),
        "target_rejected": float((~accepted[target]).mean()) if target.any() else float("nan"),
        # the region (the fracture model) right, and the class (the view, for a model of views) right
        "part_accuracy_on_accepted": float((names[chosen[both]] == names[y[both]]).mean()) if both.any()
        else float("nan"),
        "view_accuracy_on_accepted": float((chosen[both] == y[both]).mean()) if both.any() else float("nan"),
        "by_region": rejection_by_region(bp, reasons, val),
        "target_causes": target_causes(bp, reasons, val),
        "cut_trade_off": trade_off(bp, probs, val, rule.target_cut),
    }


def trade_off(bp: BodyPartData, probs: np.ndarray, val: np.ndarray, cut: float | None = None) -> dict:
    """:func:`gate.cut_trade_off` on the images of ``val`` (``probs`` their rows), the budget by region and
    source (``val`` a mask of the images), the films named by their file names."""
    if bp.reject_index is None:
        return {}
    rows = np.nonzero(np.asarray(val, dtype=bool))[0]
    target = bp.y[rows] != bp.reject_index
    groups = np.array([f"{r}/{o}" for r, o in zip(bp.region[rows], bp.origin[rows])])
    names = [Path(bp.sources[i]).name if isinstance(bp.sources[i], str) else f"generated {i}" for i in rows]
    return gate.cut_trade_off(probs, bp.reject_index, target, groups, bp.region[rows], regions=bp.class_regions,
                              films=names, cut=cut)


def target_causes(bp: BodyPartData, reasons, mask) -> dict:
    """Per target region: the images not analysed, by reason, how many of them show a cast, splint or
    implant (labelled by eye), and per source the region's images and how many were not analysed
    (``sources``: the not-analysed ones' sources, as before)."""
    out = {}
    regions, appliance, sources = bp.region[mask], bp.appliance[mask], bp.origin[mask]
    for part in dict.fromkeys(bp.class_regions):
        if part == artifacts.REJECT_CLASS:
            continue
        idx = [i for i, g in enumerate(regions) if g == part and reasons[i] is not None]
        mine = regions == part
        out[part] = {"n": int(mine.sum()), "rejected": len(idx),
                     "reasons": _count(reasons[i] for i in idx),
                     "with_appliance": int(sum(appliance[i] == 1 for i in idx)),
                     "sources": _count(str(sources[i]) for i in idx),
                     "by_source": {str(src): {"n": int((mine & (sources == src)).sum()),
                                              "rejected": int(sum(sources[i] == src for i in idx))}
                                   for src in sorted(set(sources[mine].tolist()))}}
    return out


def turned_away_lines(figures: dict) -> list[str]:
    """Per target region and per source: validation films turned away of all, as a person reads it."""
    lines = []
    for part, c in (figures.get("target_causes") or {}).items():
        per = ", ".join(f"{src} {s['rejected']}/{s['n']}" for src, s in c.get("by_source", {}).items())
        share = c["rejected"] / c["n"] if c["n"] else float("nan")
        lines.append(f"  {part:9} {c['rejected']}/{c['n']} ({share:.1%}) not analysed" + (f"; {per}" if per else ""))
    return lines


def _count(values) -> dict:
    values = list(values)
    return {k: values.count(k) for k in sorted(set(values))}


# --- the recipe ----------------------------------------------------------------------------

def train_body_part(data_root: Path, layout: str, out_dir: Path, cfg: TrainConfig, parts=data.TARGET_PARTS,
                    synthetic: int = 0, trunk_cache: Path | None = None, views: bool = True,
                    budget_by: str = "region_source", balance: str = "regions") -> Path:
    """Classifier over the views of the target regions ``parts`` (or the regions, without ``views``) plus
    ``other`` (every other region, and non-radiographs), with the gate (its budget holding in each of
    ``budget_by``'s groups) and the appliance head; writes ``body_part.keras``, ``.tflite`` and ``.json``
    to ``out_dir``."""
    records = data.read_dataset(data_root, layout)
    layout = data.detect_layout(Path(data_root)) if layout == "auto" else layout
    records = prepare_split(records, data_root, out_dir, cfg.seed, cfg.split_from, cfg.new_split)
    records = smoke_subset(records, cfg.smoke) if cfg.smoke else records
    bp = body_part_data(records, parts, synthetic, cfg.seed, views=views)
    trainer = Trainer(bp.classes, cfg)
    feats, bp = trunk_features(trainer, bp, cfg, trunk_cache)
    train, val = bp.split == "train", bp.split == "val"
    _print_counts(bp)
    history = fit_top(trainer, feats, bp, train, val, balance)
    meta = base_metadata(artifacts.BODY_PART_TASK, bp.classes, cfg, data_root, layout, out_dir, bp.records, history)
    meta["reject_class"] = artifacts.REJECT_CLASS if bp.reject_index is not None else None
    if views:  # the one place that says which fracture model reads each view
        meta["regions"] = dict(bp.regions)
    meta["synthetic_non_radiographs"] = {"count": synthetic, "seed": cfg.seed}
    meta["class_balance"] = balance
    model = trainer.model
    out = pooled_outputs(trainer, feats.original)
    if bp.reject_index is None:  # every class is a part: the most probable one
        meta["validation"] = body_part_validation(bp, out, decisions.BodyPartRule(), None, val)
    else:
        stats, choice = fit_gate(bp, out, train, val, budget_by=budget_by)
        appliance = fit_appliance_head(bp, out, train, val)
        meta["gate"] = gate.gate_meta(choice, stats)
        meta["gate"]["comparison"] = compare_scores(bp, out, train, val)
        meta["validation"] = body_part_validation(bp, out, bp.rule(choice), stats, val)
        if appliance is not None:
            meta["appliance"] = {k: v for k, v in appliance.items() if k != "head"}
        model = model_with_gate(model, stats, appliance)
    meta["outputs"] = body_part_outputs(model)
    path = save_model(model, meta, out_dir, "body_part")
    v = meta.get("validation", {})
    print(f"Saved {path} (validation accuracy {v.get('accuracy', float('nan')):.3f}; region right on "
          f"{v.get('part_accuracy_on_accepted', float('nan')):.1%} and class right on "
          f"{v.get('view_accuracy_on_accepted', float('nan')):.1%} of the analysed target films)")
    lines = turned_away_lines(v)
    if lines:
        print("Validation films of each target region turned away by the gate, per source:\n" + "\n".join(lines))
    return path


def rechoose_gate(weights_dir: Path, data_root: Path | None = None, verbose: int = 1,
                  budget_by: str | None = None) -> Path:
    """Train nothing: run the saved body-part model on its validation images (the folder's split.csv)
    and choose the gate's cuts again (:func:`gate.choose_gate`), storing them and the validation
    figures in its metadata.  The Mahalanobis statistics and the appliance head stay as trained.
    ``budget_by``: where the budget must hold (:data:`BUDGET_GROUPS`); default: as the metadata says
    (one pooled budget for weights made before groups)."""
    from ..models.runtime import load as load_model
    weights_dir = Path(weights_dir)
    info = artifacts.model_set(weights_dir)[0]
    meta = dict(info.meta)
    if not meta.get("gate") or "ood_score" not in meta.get("outputs", []):
        raise data.DatasetError(f"{info.name} in {weights_dir} has no gate to choose again; train it with training_parts.py.")
    root = Path(data_root) if data_root is not None else artifacts.resolve_data_root(meta, weights_dir)
    records = data.read_split(weights_dir / meta["data"].get("split_file", "split.csv"), root)
    bp = body_part_data_for(records, meta)
    bp = bp.keep(np.nonzero(bp.split == "val")[0])
    x, kept = data.load_pixels(bp.sources, info.image_size, "Validation images of the body-part model", verbose)
    bp = bp.keep(kept)
    run = load_model(info)
    batches = [dict(zip(meta["outputs"], run(x[i:i + 32].astype("float32")))) for i in range(0, len(x), 32)]
    probs = np.concatenate([b["probabilities"] for b in batches])
    scores = np.concatenate([b["ood_score"] for b in batches]).reshape(-1)
    target = bp.y != bp.reject_index
    budget_by = budget_by or meta["gate"].get("budget_by") or "pooled"  # weights from before groups: pooled
    budget_by = budget_by if budget_by in BUDGET_GROUPS else "pooled"
    choice = gate.choose_gate(probs[target], scores[target], bp.reject_index, regions=bp.class_regions,
                              groups=bp.budget_groups(target, budget_by), budget_by=budget_by)
    old = meta["gate"]
    meta["gate"] = {**{k: v for k, v in old.items() if k not in ("reject_threshold", "floor")}, **asdict(choice)}
    meta.pop("reject_threshold", None)
    every = np.ones(len(bp.y), dtype=bool)
    meta["validation"] = {**gate_figures(bp, probs, scores, bp.rule(choice), every),
                          "previous_rule": {k: old.get(k) for k in ("reject_threshold", "floor", "ood_threshold")
                                            if k in old} | {"target_rejected": old.get("validation_target_rejected")}}
    files.atomic_write_json(weights_dir / f"{info.name}.json", meta)
    if verbose:
        print(f"New gate for {info.name}: target cut {choice.target_cut:.4f}, part floor {choice.part_floor:.2f}, "
              f"OOD threshold {choice.ood_threshold:.3f}; validation elbow/hand/shoulder images not analysed "
              f"{choice.validation_target_rejected:.1%} of {choice.n_validation_targets}")
        print("\n".join(turned_away_lines(meta["validation"])))
    return weights_dir / f"{info.name}.json"


def _print_counts(bp: BodyPartData):
    for s in data.SPLITS:
        counts = np.bincount(bp.y[bp.split == s], minlength=len(bp.classes))
        print(f"  body part {s:5}: " + ", ".join(f"{c} {n}" for c, n in zip(bp.classes, counts)), file=sys.stderr)
