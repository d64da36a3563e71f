"""SegNet (jaxseg/models/segnet.py) against a SegNet written with torch ops, in outputs and
in size."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
F = torch.nn.functional

from jaxseg import models  # noqa: E402
from jaxseg.backbones.vgg import VGG16_CONV_NAMES, VGG16_STAGES  # noqa: E402
from tests.models import harness  # noqa: E402
from tests.test_vgg import conv_bn_variables, conv_params, layers, trunk_variables  # noqa: E402
from tests.torch_reference import (  # noqa: E402
    from_torch,
    parameter_count,
    randomize_batchnorm,
    to_torch,
)

DECODER_NAMES = [f"{name}_D" for name in reversed(VGG16_CONV_NAMES[1:])]


def _torch_segnet_decoder(encoder, classes: int):
    """SegNet-Tutorial's decoder (segnet_train.prototxt) in torch: a 3x3 conv-BN-ReLU
    mirroring each encoder conv but the first, whose mirror is a 3x3 conv to class scores."""
    encoder_convs = layers(encoder, torch.nn.Conv2d)
    convs = [
        torch.nn.Conv2d(c.out_channels, c.in_channels, 3, padding=1)
        for c in reversed(encoder_convs[1:])
    ]
    norms = [torch.nn.BatchNorm2d(c.out_channels) for c in convs]
    return convs, norms, torch.nn.Conv2d(encoder_convs[0].out_channels, classes, 3, padding=1)


def _torch_segnet(encoder, convs, norms, classifier, x):
    """SegNet's forward pass from torch ops: ceil-mode 2x2 pools keeping indices, and
    max_unpool2d back to each encoder stage's size before its mirrored convs."""
    indices, sizes = [], []
    for layer in encoder:
        if isinstance(layer, torch.nn.MaxPool2d):
            sizes.append(x.shape[-2:])
            x, index = F.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
            indices.append(index)
        else:
            x = layer(x)
    decoder = iter(zip(convs, norms, strict=True))
    for stage, count in reversed(list(enumerate(VGG16_STAGES))):
        x = F.max_unpool2d(x, indices.pop(), 2, 2, output_size=sizes.pop())
        for _ in range(count - (stage == 0)):
            conv, norm = next(decoder)
            x = F.relu(norm(conv(x)))
    return classifier(x)


def test_segnet_matches_a_torch_segnet():
    """Eval mode, at an odd size where every pool rounds up and unpools back to it."""
    torch.manual_seed(0)
    encoder = torchvision.models.vgg16_bn(weights=None).features
    convs, norms, classifier = _torch_segnet_decoder(encoder, classes=5)
    randomize_batchnorm(torch.nn.ModuleList([encoder, *convs, *norms, classifier]))
    images = np.random.default_rng(2).normal(size=(1, 75, 99, 3)).astype(np.float32)
    with torch.no_grad():
        expected = from_torch(_torch_segnet(encoder, convs, norms, classifier, to_torch(images)))
    trunk = trunk_variables(encoder, batch_norm=True)
    decoder = conv_bn_variables(DECODER_NAMES, convs, norms)
    variables = {
        "params": {
            "backbone": trunk["params"],
            **decoder["params"],
            "conv1_1_D": conv_params(classifier),
        },
        "batch_stats": {"backbone": trunk["batch_stats"], **decoder["batch_stats"]},
    }
    out = jax.jit(models.create("segnet", num_classes=5).apply)(variables, images)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)


def test_segnet_size_matches_a_torch_segnet():
    with torch.device("meta"):
        encoder = torchvision.models.vgg16_bn(weights=None).features
        convs, norms, classifier = _torch_segnet_decoder(encoder, classes=11)
    expected = parameter_count(encoder, *convs, *norms, classifier)
    assert harness.parameter_count("segnet", num_classes=11) == expected
