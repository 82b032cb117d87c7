"""Backbones, offline ImageNet weights and the preprocessing inside the model."""
import numpy as np
import pytest
from PIL import Image

from fracture_detection import models
from fracture_detection.pretrained import load_pth, torchvision_mobilenet_v2_path

pytestmark = pytest.mark.slow  # builds Keras models


def test_offline_imagenet_weights_classify_a_photo():
    """torchvision's weights, read without torch into our MobileNetV2: a pagoda must look like one.

    A wrong padding, transposition or normalisation gives nonsense classes here.
    """
    from sklearn.datasets import load_sample_images
    net = models.torchvision_mobilenet_v2(224, include_top=True)
    state = load_pth(torchvision_mobilenet_v2_path())
    models.load_torchvision_weights(net, state)
    net.get_layer("classifier_1").set_weights([state["classifier.1.weight"].T, state["classifier.1.bias"]])
    china = load_sample_images().images[0]  # the Summer Palace, Beijing
    x = np.asarray(Image.fromarray(china).resize((224, 224)), dtype="float32")[None]
    scores = np.asarray(net(models._torch_normalise()(x)))[0]
    top5 = set(np.argsort(scores)[::-1][:5])
    assert top5 & {663, 698, 832}, f"expected monastery/palace/stupa among the top 5, got {sorted(top5)}"
    # the same photo scaled to [0, 1] first (the wrong normalisation) loses the answer
    wrong = np.asarray(net(models._torch_normalise()(x / 255.0)))[0]
    assert np.argmax(wrong) != np.argmax(scores)


def test_resnet50_builds_without_downloads():
    m = models.build_classifier("resnet50", "none", 32, 2)
    assert m.predict_on_batch(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 1)
    pre = m.get_layer("preprocess")  # keras.applications' caffe preprocessing: BGR minus the mean
    out = np.asarray(pre(np.full((1, 2, 2, 3), [10.0, 20.0, 30.0], "float32")))[0, 0, 0]
    np.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-3)


def test_unavailable_weights_are_a_clear_error():
    with pytest.raises(models.WeightsUnavailable, match="No offline ImageNet weights"):
        models.build_classifier("resnet50", "offline", 32, 2)
    with pytest.raises(ValueError, match="Unknown backbone"):
        models.build_classifier("vgg", "none", 32, 2)
