"""FCN, SegNet, the dilated networks and DeepLab v1 through the shared model harness; their
VGG16 trunk against torchvision; their sizes against torchvision/PyTorch or the papers; FCN's
crops against the reference Caffe nets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import data, metrics, models
from jaxseg.backbones.vgg import VGG16_CONV_NAMES, VGG16_STAGES, FullyConv, vgg16
from jaxseg.models.fcn import crop_offsets
from jaxseg.nn import BatchNorm
from tests.models import harness

# FCN's zero-initialised class scorers (the paper's choice, checked below) block every
# gradient below them on the first step; the harness's "reaches every parameter" check needs
# them drawn at random.
NARROW_VGG = dict(width=8, fc_features=32)
NARROW = {
    "fcn32s": dict(width=4, fc_features=16, zero_init_scores=False),
    "fcn16s": dict(width=4, fc_features=16, zero_init_scores=False),
    "fcn8s": dict(NARROW_VGG, zero_init_scores=False),
    "segnet": dict(width=16),
    "dilated_frontend": NARROW_VGG,
    "dilated_context": NARROW_VGG,
    "deeplab_v1": NARROW_VGG,
    "fcn_resnet": dict(depth=18, width=8, aux=True),
}
# Short SGD runs from scratch. Within them fcn8s, segnet and fcn_resnet learn the shapes
# beyond the class prior; the VGG16 nets without BatchNorm or skips (fcn32s, fcn16s,
# deeplab_v1, the dilated nets) only reach the all-background prediction, which their
# papers avoid by starting from ImageNet weights.
LEARNING = {"fcn8s": dict(lr=0.005), "segnet": dict(steps=100)}
BEYOND_THE_PRIOR = {"fcn8s", "segnet", "fcn_resnet"}


@pytest.fixture(scope="module")
def background_miou() -> float:
    """Val mIoU of predicting background everywhere on the learning test's dataset."""
    source = data.load_source("shapes/tiny", "val")
    masks = [source[i]["segmentation_mask"] for i in range(len(source))]
    matrices = [
        metrics.confusion_matrix(m, np.zeros_like(m), len(source.class_names)) for m in masks
    ]
    return metrics.mean_iou(sum(np.asarray(cm, np.int64) for cm in matrices))


class TestVggFamily(harness.ModelChecks):
    """The shared checks on FCN, SegNet, the dilated nets and DeepLab v1, with the learning
    test's own step counts and rates, and the class-prior bar where the models clear it."""

    NARROW = NARROW

    def test_learns_on_shapes(self, model_name, background_miou):
        _, final = harness.check_learns(
            model_name, NARROW[model_name], **LEARNING.get(model_name, {})
        )
        if model_name in BEYOND_THE_PRIOR:
            assert final > background_miou, f"{model_name}: val mIoU {final:.3f} is the prior's"


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
F = torch.nn.functional


def _conv_bn_variables(names, convs, norms=None) -> dict:
    """Flax variables of ConvBNAct layers `names` from torch convs (and BatchNorms), as the
    VGG module docstring maps them."""
    params, stats = {}, {}
    for i, (name, conv) in enumerate(zip(names, convs, strict=True)):
        params[name] = {"conv": _conv_params(conv)}
        if norms is not None:
            bn = norms[i]
            params[name]["bn"] = {
                "scale": bn.weight.detach().numpy(),
                "bias": bn.bias.detach().numpy(),
            }
            stats[name] = {"bn": {"mean": bn.running_mean.numpy(), "var": bn.running_var.numpy()}}
    return {"params": params, "batch_stats": stats}


def _conv_params(conv) -> dict:
    return {
        "kernel": conv.weight.detach().numpy().transpose(2, 3, 1, 0),
        "bias": conv.bias.detach().numpy(),
    }


def _layers(module, kind) -> list:
    return [m for m in module if isinstance(m, kind)]


def _trunk_variables(features, batch_norm: bool) -> dict:
    """Our VGG trunk's variables from torchvision's `vgg16(_bn)().features`."""
    norms = _layers(features, torch.nn.BatchNorm2d) if batch_norm else None
    return _conv_bn_variables(VGG16_CONV_NAMES, _layers(features, torch.nn.Conv2d), norms)


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


def _nchw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def test_vgg16_bn_trunk_matches_torchvision_features():
    """vgg16_bn's features in eval mode, at an odd size where floor pooling drops pixels."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg16_bn(weights=None).features.eval()
    _randomise_batch_norm(reference)
    images = np.random.default_rng(0).normal(size=(1, 75, 99, 3)).astype(np.float32)
    with torch.no_grad():
        expected = _nhwc(reference(torch.from_numpy(images.transpose(0, 3, 1, 2))))
    trunk = vgg16("plain", norm=BatchNorm)
    out = jax.jit(trunk.apply)(_trunk_variables(reference, batch_norm=True), images)["pool5"]
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
    variables = _trunk_variables(reference.features, batch_norm=False)
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


SEGNET_DECODER_NAMES = [f"{name}_D" for name in reversed(VGG16_CONV_NAMES[1:])]


def _torch_segnet_decoder(encoder, classes: int):
    """SegNet-Tutorial's decoder (segnet_train.prototxt) in torch: a 3x3 conv-BN-ReLU
    mirroring each encoder conv but the first, whose mirror is a 3x3 conv to class scores."""
    encoder_convs = _layers(encoder, torch.nn.Conv2d)
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
    layers = iter(zip(convs, norms, strict=True))
    for stage, count in reversed(list(enumerate(VGG16_STAGES))):
        x = F.max_unpool2d(x, indices.pop(), 2, 2, output_size=sizes.pop())
        for _ in range(count - (stage == 0)):
            conv, norm = next(layers)
            x = F.relu(norm(conv(x)))
    return classifier(x)


def test_segnet_matches_a_torch_segnet():
    """Eval mode, at an odd size where every pool rounds up and unpools back to it."""
    torch.manual_seed(0)
    encoder = torchvision.models.vgg16_bn(weights=None).features
    convs, norms, classifier = _torch_segnet_decoder(encoder, classes=5)
    modules = torch.nn.ModuleList([encoder, *convs, *norms, classifier]).eval()
    _randomise_batch_norm(modules)
    images = np.random.default_rng(2).normal(size=(1, 75, 99, 3)).astype(np.float32)
    with torch.no_grad():
        expected = _nhwc(
            _torch_segnet(encoder, convs, norms, classifier, torch.from_numpy(_nchw(images)))
        )
    trunk = _trunk_variables(encoder, batch_norm=True)
    decoder = _conv_bn_variables(SEGNET_DECODER_NAMES, convs, norms)
    variables = {
        "params": {
            "backbone": trunk["params"],
            **decoder["params"],
            "conv1_1_D": _conv_params(classifier),
        },
        "batch_stats": {"backbone": trunk["batch_stats"], **decoder["batch_stats"]},
    }
    out = jax.jit(models.create("segnet", num_classes=5).apply)(variables, images)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-4)


def test_deeplab_v1_gives_41x41_scores_on_321x321_crops():
    """The authors' LargeFOV net maps its 321x321 training crops to 41x41 score maps."""
    model = models.create("deeplab_v1", num_classes=21)
    images = jax.ShapeDtypeStruct((1, 321, 321, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), images)
    features = jax.eval_shape(
        lambda v, x: model.backbone.apply({"params": v["params"]["backbone"]}, x),
        variables,
        images,
    )
    assert features["fc7"].shape == (1, 41, 41, 1024)


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
    encoder = torchvision.models.vgg16_bn(weights=None).features
    convs, norms, classifier = _torch_segnet_decoder(encoder, classes=11)
    expected = _torch_count(encoder, *convs, *norms, classifier)
    assert harness.parameter_count("segnet", num_classes=11) == expected


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
