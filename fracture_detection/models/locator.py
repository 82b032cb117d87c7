"""The fracture model: a dense per-location fracture head whose image score is the soft maximum
of its locations, so the probability and the place it comes from are the same evidence.

    pixels (S x S x 3, 0-255) -> preprocess -> backbone ─┬─ stride-16 features ─ 1x1 conv ─┐
                                                         └─ stride-32 features ─ 1x1 conv ─ upsample x2 ─ add
        -> 3x3 conv -> 1x1 conv = cell logits (S/16 x S/16)
        -> log-sum-exp pooling -> sigmoid = P(fractured)          (output "probability")
        cell logits -> sigmoid = P(fracture in this cell)         (the map the app draws, on an absolute scale)

The cells learn from the annotators' fracture boxes (:func:`boxes.grid_targets`), the image score
from the image label; a normal image teaches every cell "no fracture".  Only built-in Keras layers
plus :class:`LogSumExpPool` (registered, so files still load in safe mode) are used.
"""
from __future__ import annotations

import functools
import sys

import keras
import numpy as np
from keras import layers, ops

HEAD_WIDTH = 64
LSE_SHARPNESS = 5.0
CELL_LOGITS = "cell_logits"


@keras.saving.register_keras_serializable(package="fracture_detection")
class LogSumExpPool(layers.Layer):
    """``(1/r) log(mean(exp(r * x)))`` over the spatial cells of ``(batch, h, w, 1)`` logits: between
    their mean (r -> 0) and their maximum (r -> inf), so one strongly suspicious cell decides the
    image while every cell still learns."""

    def __init__(self, sharpness: float = LSE_SHARPNESS, **kwargs):
        super().__init__(**kwargs)
        self.sharpness = float(sharpness)

    def call(self, x):
        r = self.sharpness
        x = ops.reshape(x, (ops.shape(x)[0], -1))
        top = ops.max(x, axis=1, keepdims=True)
        return top + ops.log(ops.mean(ops.exp(r * (x - top)), axis=1, keepdims=True)) / r

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "sharpness": self.sharpness}


class BoxPoolingLoss(keras.losses.Loss):
    """Training loss of the cell logits when fracture boxes decide where the image's label applies.

    ``y_true`` per cell: ``[target, cell weight, pooling mask, image label, image weight]``.  Two terms
    per image: the weighted cross-entropy of every cell against its target, and the cross-entropy of
    the image label against the log-sum-exp of the cells in the pooling mask (a fractured image's
    box cells; every cell of a normal image or of a fractured image without boxes), so the image's
    evidence has to come from where the fracture is.  At inference the pooling covers every cell."""

    def __init__(self, sharpness: float = LSE_SHARPNESS, cell_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.sharpness, self.cell_weight = float(sharpness), float(cell_weight)

    def call(self, y_true, y_pred):
        r = self.sharpness
        logits = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
        t = ops.reshape(y_true[..., 0], ops.shape(logits))
        w = ops.reshape(y_true[..., 1], ops.shape(logits))
        mask = ops.reshape(y_true[..., 2], ops.shape(logits))
        label, image_weight = y_true[:, 0, 0, 3], y_true[:, 0, 0, 4]
        cells = ops.mean(w * _bce_logits(t, logits), axis=1)
        masked = ops.where(mask > 0, logits, -1e9)
        top = ops.max(masked, axis=1, keepdims=True)
        pooled = top[:, 0] + ops.log(ops.sum(mask * ops.exp(r * (masked - top)), axis=1)
                                     / ops.maximum(ops.sum(mask, axis=1), 1.0)) / r
        return image_weight * _bce_logits(label, pooled) + self.cell_weight * cells


def _bce_logits(t, z):
    """Binary cross-entropy of targets ``t`` against logits ``z`` (stable)."""
    return ops.maximum(z, 0) - z * t + ops.log1p(ops.exp(-ops.abs(z)))


def mid_layer(backbone_name: str) -> str:
    """The backbone layer whose output is the stride-16 feature map (also the frozen-trunk cut)."""
    from .backbones import DEFAULT_CUTS
    return DEFAULT_CUTS[backbone_name]


# Measured by measure_alignment() (tests/test_localisation.py checks the table against it).
ALIGNMENT_SHIFT = {"mobilenetv2": -8, "resnet50": -8, "efficientnet_lite0": 8, "efficientnet_lite2": 8}


def alignment_shift(backbone: str) -> int:
    """How many pixels the image must move (negative: up and left) so that each stride-16 feature
    cell is centred on the grid cell it predicts.

    Padding conventions put a backbone's feature cell ``i`` at pixel ``16 i`` (torchvision's
    MobileNetV2, Keras's ResNet50) or ``16 i + 15`` (TensorFlow's "same" padding: EfficientNet-Lite),
    not at the cell's centre ``16 i + 7.5``; unaligned,
    every suspected region sits half a cell or more off (measured on validation hands before this
    alignment: the most suspicious cell lay a median 0.7 cells below and right of the fracture)."""
    return ALIGNMENT_SHIFT[backbone] if backbone in ALIGNMENT_SHIFT else measure_alignment(backbone)


@functools.lru_cache(maxsize=None)
def measure_alignment(backbone: str, size: int = 256) -> int:
    """Where a (randomly initialised) backbone's stride-16 cells look: for each cell of the middle half
    of the grid, the centroid of the input gradient's magnitude against the cell's centre; the mean
    offset along x (the backbones are symmetric in x and y), rounded.  Needs the TensorFlow backend."""
    import tensorflow as tf

    from .backbones import build_backbone
    keras.utils.set_random_seed(0)
    _, base = build_backbone(backbone, "none", size)
    mid = keras.Model(base.input, base.get_layer(mid_layer(backbone)).output)
    grid = int(mid.output.shape[1])
    stride = size / grid
    x = tf.Variable(np.random.default_rng(0).normal(size=(1, size, size, 3)).astype("float32"))
    offsets = []
    for cell in range(grid // 4, grid - grid // 4):
        with tf.GradientTape() as tape:
            energy = tf.reduce_sum(mid(x)[0, grid // 2, cell, :] ** 2)
        g = tf.reduce_sum(tf.abs(tape.gradient(energy, x)[0]), axis=(0, 2)).numpy()  # per column
        offsets.append(float((g * np.arange(size)).sum() / g.sum()) - (cell * stride + (stride - 1) / 2))
    return int(round(float(np.mean(offsets))))


def build_locator(backbone: str, weights: str, image_size: int, width: int = HEAD_WIDTH,
                  sharpness: float = LSE_SHARPNESS, prior: float = 0.01) -> keras.Model:
    """The fracture model; outputs ``[probability (batch, 1), cell logits (batch, S/16, S/16, 1)]``."""
    from .backbones import build_backbone
    preprocess, base = build_backbone(backbone, weights, image_size)
    mid = base.get_layer(mid_layer(backbone)).output
    two = keras.Model(base.input, [mid, base.output], name="backbone")
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = align(inputs, alignment_shift(backbone))
    f16, f32 = two(preprocess(x), training=False) if weights != "none" else two(preprocess(x))
    logits = head(f16, f32, width, prior)
    prob = layers.Activation("sigmoid", name="probability")(LogSumExpPool(sharpness, name="pool")(logits))
    return keras.Model(inputs, [prob, logits], name=f"{backbone}_fracture_locator")


def align(pixels, shift: int):
    """Move the image ``shift`` pixels down and right (negative: up and left), filling with black
    (a layer named ``align``; no layer for no shift)."""
    if shift == 0:
        return pixels
    s = abs(shift)
    if shift < 0:
        steps = [layers.Cropping2D(((s, 0), (s, 0))), layers.ZeroPadding2D(((0, s), (0, s)))]
    else:
        steps = [layers.ZeroPadding2D(((s, 0), (s, 0))), layers.Cropping2D(((0, s), (0, s)))]
    return keras.Sequential(steps, name="align")(pixels)


def pixels_to_backbone(model):
    """The layers between the pixels and the backbone (alignment, then preprocessing), as one function."""
    names = {layer.name for layer in model.layers}
    steps = [model.get_layer(n) for n in ("align", "preprocess") if n in names]

    def apply(x):
        for step in steps:
            x = step(x)
        return x
    return apply


def head(f16, f32, width: int = HEAD_WIDTH, prior: float = 0.01):
    """Stride-16 and upsampled stride-32 features fused into one logit per cell."""
    a = layers.ReLU(name="lateral16_relu")(layers.Conv2D(width, 1, name="lateral16")(f16))
    b = layers.ReLU(name="lateral32_relu")(layers.Conv2D(width, 1, name="lateral32")(f32))
    b = layers.UpSampling2D(2, interpolation="bilinear", name="lateral32_up")(b)
    if b.shape[1] != a.shape[1]:  # odd stride-16 grids: crop the upsampled map
        b = layers.Cropping2D(((0, b.shape[1] - a.shape[1]), (0, b.shape[2] - a.shape[2])), name="crop")(b)
    z = layers.Add(name="fuse_add")([a, b])
    z = layers.Conv2D(width, 3, padding="same", activation="relu", name="fuse")(z)
    bias = float(np.log(prior / (1 - prior)))
    return layers.Conv2D(1, 1, name=CELL_LOGITS, bias_initializer=keras.initializers.Constant(bias))(z)


def is_locator(model) -> bool:
    return any(layer.name == CELL_LOGITS for layer in model.layers)


@keras.saving.register_keras_serializable(package="fracture_detection")
class Mirror(layers.Layer):
    """Left-right mirror image of ``(batch, h, w, c)``."""

    def call(self, x):
        return ops.flip(x, axis=2)


def inference_model(model, mirror: bool = False) -> keras.Model:
    """``[probability (batch, 1), cell probabilities (batch, S/16, S/16)]`` from the same forward pass,
    then ``appliance_probability (batch, 1)`` where the model has an appliance head (see
    :func:`with_appliance_head`); with ``mirror`` the mean over the image and its mirror image (the
    mirror's map mirrored back; the appliance is judged on the image as it is).  An ensemble whose
    members share their frozen trunk runs it once (:func:`shared_trunk_ensemble`)."""
    model = shared_trunk_ensemble(model) or model
    inputs = keras.Input(model.inputs[0].shape[1:], name="pixels")
    prob, logits, *appliance = model(inputs)
    cells = layers.Activation("sigmoid", name="cell_probability")(logits)
    if mirror:
        prob_m, logits_m, *_ = model(Mirror(name="mirror")(inputs))
        cells_m = Mirror(name="mirror_back")(layers.Activation("sigmoid", name="cell_probability_m")(logits_m))
        prob = layers.Average(name="mean_probability")([prob, prob_m])
        cells = layers.Average(name="mean_cells")([cells, cells_m])
    cells = layers.Reshape(tuple(cells.shape[1:3]), name="map")(cells)
    return keras.Model(inputs, [prob, cells, *appliance], name="inference")


APPLIANCE_OUTPUT = "appliance_probability"


def has_appliance_head(model) -> bool:
    return any(layer.name == APPLIANCE_OUTPUT for layer in model.layers)


def pooled_trunk_features(features: np.ndarray) -> np.ndarray:
    """What the appliance head reads: the mean and the maximum of each stride-16 channel."""
    f = np.asarray(features, dtype="float32")
    return np.concatenate([f.mean(axis=(1, 2)), f.max(axis=(1, 2))], axis=1)


def with_appliance_head(model, backbone_name: str, weights: np.ndarray, bias: float) -> keras.Model:
    """The fracture model with a third output: P(cast, splint, implant or fixator in view), a logistic
    regression on the mean and maximum of the frozen stride-16 features (fitted outside the model,
    :mod:`training.appliance`), stored as one Dense layer.  One forward pass serves both."""
    two = model.get_layer("backbone")
    inputs = keras.Input(model.inputs[0].shape[1:], name="pixels")
    f16, f32 = two(pixels_to_backbone(model)(inputs), training=False)
    logits = _reapply_head(model, f16, f32)
    prob = model.get_layer("probability")(model.get_layer("pool")(logits))
    pooled = layers.Concatenate(name="appliance_pool")([layers.GlobalAveragePooling2D(name="appliance_mean")(f16),
                                                        layers.GlobalMaxPooling2D(name="appliance_max")(f16)])
    dense = layers.Dense(1, activation="sigmoid", name=APPLIANCE_OUTPUT)
    appliance = dense(pooled)
    dense.set_weights([np.asarray(weights, "float32").reshape(-1, 1), np.array([bias], "float32")])
    return keras.Model(inputs, [prob, logits, appliance], name=model.name)


def trunk_and_top(model, backbone_name: str):
    """The frozen trunk (pixels -> stride-16 features) and the trained rest (stride-16 features ->
    outputs), sharing the model's layers, for training on cached trunk features."""
    return _trunk_and_top(model, mid_layer(backbone_name))


def _trunk_and_top(model, cut: str):
    two = model.get_layer("backbone")
    mid = two.get_layer(cut).output
    trunk = keras.Model(two.input, mid, name="trunk")
    top32 = keras.Model(mid, two.outputs[1], name="top")
    feats = keras.Input(mid.shape[1:], name="trunk_features")
    f32 = top32(feats, training=False)
    logits = _reapply_head(model, feats, f32)
    prob = model.get_layer("probability")(model.get_layer("pool")(logits))
    return trunk, keras.Model(feats, [prob, logits], name="trained_part")


def _reapply_head(model, f16, f32):
    a = model.get_layer("lateral16_relu")(model.get_layer("lateral16")(f16))
    b = model.get_layer("lateral32_relu")(model.get_layer("lateral32")(f32))
    b = model.get_layer("lateral32_up")(b)
    if any(layer.name == "crop" for layer in model.layers):
        b = model.get_layer("crop")(b)
    z = model.get_layer("fuse")(model.get_layer("fuse_add")([a, b]))
    return model.get_layer(CELL_LOGITS)(z)


def trunk_features(model, trunk, images, batch_size: int = 16, verbose: int = 1, desc: str = "") -> np.ndarray:
    """Stride-16 features (float16) of uint8 images, or of an iterable of them."""
    preprocess = pixels_to_backbone(model)
    images = list(images) if not isinstance(images, np.ndarray) else images
    out = []
    for i in range(0, len(images), batch_size):
        xb = np.stack(images[i:i + batch_size]).astype("float32")
        out.append(np.asarray(trunk.predict_on_batch(preprocess(xb))).astype("float16"))
        if verbose:
            print(f"\r  {desc} trunk features {min(i + batch_size, len(images))}/{len(images)}", end="",
                  file=sys.stderr, flush=True)
    if verbose:
        print(file=sys.stderr)
    return np.concatenate(out) if out else np.zeros((0,) + tuple(trunk.output.shape[1:]), "float16")


# --- ensembles -------------------------------------------------------------------------------

ENSEMBLE_MEMBER = "member_{}"  # the members' names inside an ensemble, in order


@keras.saving.register_keras_serializable(package="fracture_detection")
class MeanOfSigmoids(layers.Layer):
    """The logit of the mean of the inputs' sigmoids: the members' cell logits combined so that the
    cell probabilities a reader sees are the mean of the members'."""

    def call(self, inputs):
        p = ops.mean(ops.stack([ops.sigmoid(x) for x in inputs], axis=0), axis=0)
        p = ops.clip(p, 1e-7, 1.0 - 1e-7)
        return ops.log(p) - ops.log(1.0 - p)


def ensemble(members: list) -> keras.Model:
    """One fracture model from several trained ones on the same input: the mean of their probabilities,
    cell probabilities in the mean of theirs, and the first member's P(cast or implant) where it has one;
    the same outputs as one locator, so the chain, the runtime and the LiteRT export need nothing else.
    Each member is kept whole in the saved model: ``members(model)`` gives them back, e.g. to fine-tune
    one; the app runs their common frozen trunk once (:func:`shared_trunk_ensemble`)."""
    shapes = {tuple(m.inputs[0].shape[1:]) for m in members}
    if len(members) < 2 or len(shapes) != 1:
        raise ValueError("An ensemble needs at least two fracture models with the same input size.")
    inputs = keras.Input(members[0].inputs[0].shape[1:], name="pixels")
    probs, logits, appliance = [], [], []
    for i, m in enumerate(members):
        named = keras.Model(m.inputs, m.outputs, name=ENSEMBLE_MEMBER.format(i))
        prob, cells, *extra = named(inputs)
        probs.append(prob)
        logits.append(cells)
        appliance += extra[:1] if i == 0 else []
    prob = layers.Average(name="probability")(probs)
    cells = MeanOfSigmoids(name=CELL_LOGITS)(logits)
    outs = [prob, cells] + [layers.Identity(name=APPLIANCE_OUTPUT)(a) for a in appliance]
    return keras.Model(inputs, outs, name="ensemble_fracture_locator")


def members(model) -> list:
    """An ensemble's members (:func:`ensemble`), in order; ``[]`` for a single model."""
    names = {layer.name for layer in model.layers}
    out, i = [], 0
    while ENSEMBLE_MEMBER.format(i) in names:
        out.append(model.get_layer(ENSEMBLE_MEMBER.format(i)))
        i += 1
    return out


def single(model):
    """The model itself, or an ensemble's first member (what fine-tuning starts from)."""
    found = members(model)
    return found[0] if found else model


def shared_trunk(model) -> str | None:
    """The layer through which every member of an ensemble has the same weights (the stride-16 cut of
    the frozen trunk they were all trained on, :func:`mid_layer`), else None: for a single model, for
    members of different backbones, or where one was fine-tuned below the cut."""
    from .backbones import DEFAULT_CUTS
    found = members(model)
    if len(found) < 2:
        return None
    first = found[0]
    backbones = [m.get_layer("backbone") for m in found]
    names = {layer.name for layer in backbones[0].layers}
    cut = next((c for c in DEFAULT_CUTS.values() if c in names), None)
    if cut is None:
        return None
    trunk = keras.Model(backbones[0].input, backbones[0].get_layer(cut).output)
    try:  # the same pixels-to-backbone steps, then the same trunk weights
        same = all(_same_layer(first, m, n) for m in found[1:] for n in ("align", "preprocess"))
        same = same and all(_same_weights(layer, b.get_layer(layer.name)) for b in backbones[1:] for layer in trunk.layers)
    except ValueError:  # a member lacks one of the first member's trunk layers
        return None
    return cut if same else None


def _same_layer(a, b, name: str) -> bool:
    """Models ``a`` and ``b`` both lack the layer ``name``, or both have it alike (configuration and weights)."""
    import json
    has = [name in {layer.name for layer in m.layers} for m in (a, b)]
    if not any(has):
        return True
    if not all(has):
        return False
    la, lb = a.get_layer(name), b.get_layer(name)
    config = (lambda layer: json.dumps(layer.get_config(), sort_keys=True, default=str))
    return config(la) == config(lb) and _same_weights(la, lb)


def _same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(wa, wb))


def shared_trunk_ensemble(model) -> keras.Model | None:
    """An ensemble (:func:`ensemble`) rebuilt to run its members' common frozen trunk once, then each
    member's trained top and head on its output: the same outputs as the ensemble, in a fraction of the
    time (the trunk through the stride-16 stage is most of a MobileNetV2's work).  None where the members
    do not share it (:func:`shared_trunk`).  Shares the ensemble's layers; nothing is saved this way.
    (The LiteRT converter finds the common trunk by itself: the bundled hand ensemble's ``.tflite`` has
    the same 148 operations either way; this gives the Keras runtime the same saving.)"""
    cut = shared_trunk(model)
    if cut is None:
        return None
    found = members(model)
    first = found[0]
    two = first.get_layer("backbone")
    trunk = keras.Model(two.input, two.get_layer(cut).output, name="shared_trunk")
    inputs = keras.Input(model.inputs[0].shape[1:], name="pixels")
    f16 = trunk(pixels_to_backbone(first)(inputs), training=False)
    probs, logits = [], []
    for i, m in enumerate(found):
        top = _trunk_and_top(m, cut)[1]
        prob, cells = keras.Model(top.inputs, top.outputs, name=f"{ENSEMBLE_MEMBER.format(i)}_top")(f16)
        probs.append(prob)
        logits.append(cells)
    outs = [layers.Average(name="probability")(probs), MeanOfSigmoids(name=CELL_LOGITS)(logits)]
    if has_appliance_head(model) and has_appliance_head(first):
        feats = keras.Input(f16.shape[1:], name="trunk_features")
        pooled = first.get_layer("appliance_pool")([first.get_layer("appliance_mean")(feats),
                                                    first.get_layer("appliance_max")(feats)])
        detector = keras.Model(feats, first.get_layer(APPLIANCE_OUTPUT)(pooled), name="appliance")
        outs.append(layers.Identity(name=APPLIANCE_OUTPUT)(detector(f16)))
    return keras.Model(inputs, outs, name=model.name)
