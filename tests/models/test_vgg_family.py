"""FCN, SegNet, the dilated networks and DeepLab v1 through the shared model harness; their
VGG16 trunk against torchvision; their sizes against torchvision/PyTorch or the papers; FCN's
crops against the reference Caffe nets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import models
from jaxseg.backbones.vgg import VGG16_CONV_NAMES, FullyConv, vgg16
from jaxseg.models.fcn import crop_offsets
from jaxseg.nn import BatchNorm
from tests.models import harness

# FCN's zero-initialised class scorers (the paper's choice, checked below) block every
# gradient below them on the first step; the harness's "reaches every parameter" check needs
# them drawn at random.
NARROW_VGG = dict(width=8, fc_features=32)
NARROW = {
    "fcn32s": dict(NARROW_VGG, zero_init_scores=False),
    "fcn16s": dict(NARROW_VGG, zero_init_scores=False),
    "fcn8s": dict(NARROW_VGG, zero_init_scores=False),
    "segnet": dict(width=8),
    "dilated_frontend": NARROW_VGG,
    "dilated_context": NARROW_VGG,
    "deeplab_v1": NARROW_VGG,
    "fcn_resnet": dict(depth=18, width=8, aux=True),
}


@pytest.mark.parametrize("name", sorted(NARROW))
def test_forward_at_odd_sizes(name):
    harness.check_forward(name, NARROW[name])


@pytest.mark.parametrize("name", sorted(NARROW))
def test_gradients_reach_every_parameter(name):
    harness.check_gradients(name, NARROW[name])


@pytest.mark.parametrize("name", sorted(NARROW))
def test_learns_on_shapes(name):
    harness.check_learns(name, NARROW[name])


def test_fcn_starts_from_zero_scores():
    """The paper zero-initialises every class scorer, so an untrained FCN predicts all zeros."""
    model = models.create("fcn8s", num_classes=harness.NUM_CLASSES, **NARROW_VGG)
    images = np.random.default_rng(0).normal(size=(1, 45, 61, 3)).astype(np.float32)
    logits = model.apply(harness.init_variables(model), images)
    assert logits.shape == (1, 45, 61, harness.NUM_CLASSES)
    assert not np.any(np.asarray(logits))


@pytest.mark.parametrize(("skips", "caffe_offsets"), [(0, (19,)), (1, (5, 27)), (2, (5, 9, 31))])
def test_fcn_crops_where_the_reference_nets_crop(skips, caffe_offsets):
    """The crop_param offsets of fcn.berkeleyvision.org voc-fcn32s/16s/8s train.prototxt
    (score_pool4c, score_pool3c, score), from our layer geometry."""
    assert crop_offsets(vgg16("fcn").grids(), skips) == caffe_offsets


# ---------------------------------------------------------------- the VGG16 trunk vs torchvision
torchvision = pytest.importorskip("torchvision")
torch = pytest.importorskip("torch")


def _conv_variables(features, batch_norm: bool) -> dict:
    """Flax variables of our VGG trunk from torchvision's `features`, as the module docstring
    maps them."""
    params, stats = {}, {}
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in features if isinstance(m, torch.nn.BatchNorm2d)]
    for i, (name, conv) in enumerate(zip(VGG16_CONV_NAMES, convs, strict=True)):
        params[name] = {
            "conv": {
                "kernel": conv.weight.detach().numpy().transpose(2, 3, 1, 0),
                "bias": conv.bias.detach().numpy(),
            }
        }
        if batch_norm:
            bn = norms[i]
            params[name]["bn"] = {
                "scale": bn.weight.detach().numpy(),
                "bias": bn.bias.detach().numpy(),
            }
            stats[name] = {"bn": {"mean": bn.running_mean.numpy(), "var": bn.running_var.numpy()}}
    return {"params": params, "batch_stats": stats}


def _randomise_batch_norm(module) -> None:
    """Running statistics and affine parameters away from their identity defaults."""
    generator = torch.Generator().manual_seed(0)
    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        size = bn.num_features
        bn.weight.data = 1 + 0.1 * torch.randn(size, generator=generator)
        bn.bias.data = 0.1 * torch.randn(size, generator=generator)
        bn.running_mean = 0.1 * torch.randn(size, generator=generator)
        bn.running_var = 0.5 + torch.rand(size, generator=generator)


def _nhwc(tensor) -> np.ndarray:
    return tensor.detach().numpy().transpose(0, 2, 3, 1)


def test_vgg16_bn_trunk_matches_torchvision_features():
    """vgg16_bn's features in eval mode, at an odd size where floor pooling drops pixels."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg16_bn(weights=None).features.eval()
    _randomise_batch_norm(reference)
    images = np.random.default_rng(0).normal(size=(1, 75, 99, 3)).astype(np.float32)
    with torch.no_grad():
        expected = _nhwc(reference(torch.from_numpy(images.transpose(0, 3, 1, 2))))
    trunk = vgg16("plain", norm=BatchNorm)
    out = jax.jit(trunk.apply)(_conv_variables(reference, batch_norm=True), images)["pool5"]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)


def test_vgg16_fc6_fc7_as_convolutions_match_torchvision_classifier():
    """classifier.0 and .3 reshaped into 7x7 and 1x1 convolutions give torchvision's fc7
    activations on a 224x224 image (eval mode, dropout off)."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None).eval()
    images = np.random.default_rng(1).normal(size=(1, 224, 224, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference.classifier[:5](
            torch.flatten(
                reference.avgpool(
                    reference.features(torch.from_numpy(images.transpose(0, 3, 1, 2)))
                ),
                1,
            )
        ).numpy()
    variables = _conv_variables(reference.features, batch_norm=False)
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


# ---------------------------------------------------------------------- full-size parameters
def _torch_count(*modules) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def _vgg16_trunk_count() -> int:
    """torchvision VGG16 without its ImageNet classifier (classifier.6): convs, fc6, fc7."""
    vgg = torchvision.models.vgg16(weights=None)
    return _torch_count(vgg.features, vgg.classifier[0], vgg.classifier[3])


def _upsampling(factor: int, classes: int = 21):
    return torch.nn.ConvTranspose2d(classes, classes, 2 * factor, factor, bias=False)


def test_fcn_sizes_match_torch_and_the_paper():
    nn = torch.nn
    trunk = _vgg16_trunk_count()
    score_fr, score_pool4, score_pool3 = (
        nn.Conv2d(4096, 21, 1),
        nn.Conv2d(512, 21, 1),
        nn.Conv2d(256, 21, 1),
    )
    expected = {
        "fcn32s": trunk + _torch_count(score_fr, _upsampling(32)),
        "fcn16s": trunk + _torch_count(score_fr, _upsampling(2), score_pool4, _upsampling(16)),
        "fcn8s": trunk
        + _torch_count(
            score_fr, _upsampling(2), score_pool4, _upsampling(2), score_pool3, _upsampling(8)
        ),
    }
    for name, count in expected.items():
        assert harness.parameter_count(name, num_classes=21) == count, name
    # Table 1 of arXiv 1411.4038: FCN-VGG16 has 134M parameters.
    assert round(expected["fcn8s"] / 1e6) == 134


def test_segnet_size_matches_a_torch_segnet():
    """vgg16_bn's 13 conv-BN layers, and a decoder mirroring each of them (SegNet-Tutorial's
    segnet_train.prototxt) whose last layer is a 3x3 conv to the 11 CamVid classes."""
    encoder = torchvision.models.vgg16_bn(weights=None).features
    convs = [m for m in encoder if isinstance(m, torch.nn.Conv2d)]
    decoder = [torch.nn.Conv2d(c.out_channels, c.in_channels, 3, padding=1) for c in convs[1:]]
    decoder += [torch.nn.BatchNorm2d(c.in_channels) for c in convs[1:]]
    decoder.append(torch.nn.Conv2d(64, 11, 3, padding=1))
    assert harness.parameter_count("segnet", num_classes=11) == _torch_count(encoder, *decoder)


def test_deeplab_v1_size_matches_torch_and_the_paper():
    nn = torch.nn
    head = (
        nn.Conv2d(512, 1024, 3, padding=12, dilation=12),
        nn.Conv2d(1024, 1024, 1),
        nn.Conv2d(1024, 21, 1),
    )
    expected = _torch_count(torchvision.models.vgg16(weights=None).features, *head)
    assert harness.parameter_count("deeplab_v1", num_classes=21) == expected
    assert round(expected / 1e5) / 10 == 20.5  # DeepLab-LargeFOV, arXiv 1412.7062, Table 2


@pytest.mark.parametrize("context", [None, "basic", "large"])
def test_dilated_sizes_match_torch(context):
    """Front end (VGG16 trunk with fc6/fc7, 1x1 classifier) plus the context module's layers
    per Table 1 of arXiv 1511.07122."""
    classes = 21
    modules = [torch.nn.Conv2d(4096, classes, 1)]
    if context is not None:
        widths = {"basic": [1] * 7, "large": [2, 2, 4, 8, 16, 32, 32]}[context]
        channels = [classes] + [w * classes for w in widths]
        modules += [
            torch.nn.Conv2d(a, b, 3) for a, b in zip(channels[:-1], channels[1:], strict=True)
        ]
        modules.append(torch.nn.Conv2d(channels[-1], classes, 1))
    name, options = (
        ("dilated_context", {"context": context}) if context else ("dilated_frontend", {})
    )
    count = harness.parameter_count(name, num_classes=classes, **options)
    assert count == _vgg16_trunk_count() + _torch_count(*modules)


@pytest.mark.parametrize(("depth", "aux"), [(50, True), (101, False)])
def test_fcn_resnet_size_matches_torchvision(depth, aux):
    builder = getattr(torchvision.models.segmentation, f"fcn_resnet{depth}")
    reference = builder(weights=None, weights_backbone=None, num_classes=21, aux_loss=aux)
    ours = harness.parameter_count("fcn_resnet", num_classes=21, depth=depth, aux=aux)
    assert ours == _torch_count(reference)


def test_fcn_resnet_train_mode_returns_the_auxiliary_logits():
    model = models.create("fcn_resnet", num_classes=3, **NARROW["fcn_resnet"])
    variables = harness.init_variables(model)
    images = jnp.zeros((2, 33, 41, 3))
    (logits, aux), _ = model.apply(
        variables,
        images,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": jax.random.PRNGKey(0)},
    )
    assert logits.shape == aux.shape == (2, 33, 41, 3)
