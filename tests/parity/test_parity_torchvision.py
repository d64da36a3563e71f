"""torchvision models converted with `jaxseg.convert` reproduce PyTorch: backbone features,
segmentation logits at odd sizes, and one SGD training step."""

import copy
import functools

import pytest
import torch
import torchvision

from jaxseg.convert import from_torch
from tests import torch_reference
from tests.parity import parity_harness as harness

SEGMENTATION = torchvision.models.segmentation
NUM_CLASSES = 6


@functools.cache
def _segmentation_model(arch: str, aux: bool) -> torch.nn.Module:
    """torchvision's `arch` with random weights and BatchNorm statistics (built once)."""
    builder = getattr(SEGMENTATION, arch)
    torch.manual_seed(0)
    model = builder(weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=aux)
    return torch_reference.randomize_batchnorm(model)


@pytest.mark.parametrize(("depth", "size"), [(18, (61, 83)), (50, (67, 75)), (101, (53, 71))])
def test_resnet_backbone_features(depth, size):
    torch.manual_seed(depth)
    model = torch_reference.randomize_batchnorm(getattr(torchvision.models, f"resnet{depth}")())
    images = harness.random_images(size)
    with torch.no_grad():
        reference = harness.resnet_stages(model, images)
    module, variables = from_torch(model.state_dict(), source="torchvision", arch=f"resnet{depth}")
    features = module.apply(variables, torch_reference.from_torch(images))
    for name, expected in reference.items():
        error = harness.relative_error(features[name], expected)
        print(f"parity features torchvision resnet{depth} {size} {name}: {error:.1e}")
        assert error < harness.EVAL_TOLERANCE, name


def test_vgg16_features_and_fully_connected_layers():
    torch.manual_seed(16)
    model = torchvision.models.vgg16().eval()
    images = harness.random_images((224, 224), batch=1)
    with torch.no_grad():
        pool5 = model.features(images)
        fc7 = model.classifier[:5](torch.flatten(model.avgpool(pool5), 1))
    module, variables = from_torch(model.state_dict(), source="torchvision", arch="vgg16")
    features = module.apply(variables, torch_reference.from_torch(images))
    pool5_error = harness.relative_error(features["pool5"], torch_reference.from_torch(pool5))
    fc7_error = harness.relative_error(features["fc7"].reshape(1, -1), fc7.numpy())
    print(
        f"parity features torchvision vgg16 (224, 224): pool5 {pool5_error:.1e}, "
        f"fc7 {fc7_error:.1e}"
    )
    assert pool5_error < harness.EVAL_TOLERANCE
    assert fc7_error < harness.EVAL_TOLERANCE


@pytest.mark.parametrize("size", [(67, 75), (97, 45), (40, 129)])
def test_deeplabv3_resnet50_eval_at_odd_sizes(size):
    model = _segmentation_model("deeplabv3_resnet50", aux=True)
    harness.check_eval(model, "torchvision", "deeplabv3_resnet50", size)


@pytest.mark.parametrize(
    ("arch", "aux", "size"),
    [
        ("deeplabv3_resnet101", False, (61, 83)),
        ("fcn_resnet50", True, (71, 57)),
        ("fcn_resnet101", False, (59, 67)),
    ],
)
def test_segmentation_eval(arch, aux, size):
    harness.check_eval(_segmentation_model(arch, aux), "torchvision", arch, size)


def test_deeplabv3_resnet50_train_step():
    model = copy.deepcopy(_segmentation_model("deeplabv3_resnet50", aux=True))
    harness.check_train_step(model, "torchvision", "deeplabv3_resnet50", (33, 41), NUM_CLASSES)
