"""The VGG16 trunk (jaxseg/backbones/vgg.py) against torchvision's: vgg16_bn's features, and
fc6/fc7 as convolutions. Also the torchvision -> flax variable mapping that tests/models/
test_segnet.py reuses."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from jaxseg.backbones.vgg import VGG16_CONV_NAMES, FullyConv, vgg16  # noqa: E402
from jaxseg.nn import BatchNorm  # noqa: E402
from tests.torch_reference import from_torch, randomize_batchnorm, to_torch  # noqa: E402


def conv_params(conv: torch.nn.Conv2d) -> dict:
    """A torch convolution's weights as a flax conv's (kernel OIHW -> HWIO)."""
    return {
        "kernel": conv.weight.detach().numpy().transpose(2, 3, 1, 0),
        "bias": conv.bias.detach().numpy(),
    }


def conv_bn_variables(names, convs, norms=None) -> dict:
    """Flax variables of ConvBNAct layers `names` from torch convs (and BatchNorms), as the
    VGG module docstring maps them."""
    params, stats = {}, {}
    for i, (name, conv) in enumerate(zip(names, convs, strict=True)):
        params[name] = {"conv": conv_params(conv)}
        if norms is not None:
            bn = norms[i]
            params[name]["bn"] = {
                "scale": bn.weight.detach().numpy(),
                "bias": bn.bias.detach().numpy(),
            }
            stats[name] = {"bn": {"mean": bn.running_mean.numpy(), "var": bn.running_var.numpy()}}
    return {"params": params, "batch_stats": stats}


def layers(module: torch.nn.Module, kind: type) -> list:
    """The layers of Sequential `module` that are `kind`s, in order."""
    return [m for m in module if isinstance(m, kind)]


def trunk_variables(features: torch.nn.Module, batch_norm: bool) -> dict:
    """Our VGG trunk's variables from torchvision's `vgg16(_bn)().features`."""
    norms = layers(features, torch.nn.BatchNorm2d) if batch_norm else None
    return conv_bn_variables(VGG16_CONV_NAMES, layers(features, torch.nn.Conv2d), norms)


def test_vgg16_bn_trunk_matches_torchvision_features():
    """vgg16_bn's features in eval mode, at an odd size where floor pooling drops pixels."""
    torch.manual_seed(0)
    reference = randomize_batchnorm(torchvision.models.vgg16_bn(weights=None).features)
    images = np.random.default_rng(0).normal(size=(1, 75, 99, 3)).astype(np.float32)
    with torch.no_grad():
        expected = from_torch(reference(to_torch(images)))
    trunk = vgg16("plain", norm=BatchNorm)
    out = jax.jit(trunk.apply)(trunk_variables(reference, batch_norm=True), images)["pool5"]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)


def test_vgg16_fc6_fc7_as_convolutions_match_torchvision_classifier():
    """classifier.0 and .3 reshaped into 7x7 and 1x1 convolutions give torchvision's fc7
    activations on a 224x224 image (eval mode, dropout off)."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None).eval()
    images = np.random.default_rng(1).normal(size=(1, 224, 224, 3)).astype(np.float32)
    with torch.no_grad():
        pooled = reference.avgpool(reference.features(to_torch(images)))
        expected = reference.classifier[:5](torch.flatten(pooled, 1)).numpy()
    variables = trunk_variables(reference.features, batch_norm=False)
    for name, layer, shape in (("fc6", 0, (4096, 512, 7, 7)), ("fc7", 3, (4096, 4096, 1, 1))):
        linear = reference.classifier[layer]
        variables["params"][name] = {
            "conv": {
                "kernel": linear.weight.detach().numpy().reshape(shape).transpose(2, 3, 1, 0),
                "bias": linear.bias.detach().numpy(),
            }
        }
    trunk = vgg16("plain", fully_conv=FullyConv(4096, 7))
    out = jax.jit(trunk.apply)(variables, images)["fc7"]
    assert out.shape == (1, 1, 1, 4096)
    np.testing.assert_allclose(np.asarray(out)[:, 0, 0], expected, rtol=1e-4, atol=1e-4)
