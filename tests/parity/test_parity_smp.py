"""segmentation_models_pytorch models converted with `jaxseg.convert` reproduce PyTorch:
logits at several sizes, and one SGD training step.

smp refuses inputs that its encoder's output stride does not divide (U-Net excepted), so
those models are checked at sizes that are odd multiples of that stride and not square.
"""

import copy
import functools

import pytest
import segmentation_models_pytorch as smp
import torch

from tests import torch_reference
from tests.parity import parity_harness as harness

NUM_CLASSES = 5
CLASSES = {
    "unet": smp.Unet,
    "pspnet": smp.PSPNet,
    "deeplabv3": smp.DeepLabV3,
    "deeplabv3plus": smp.DeepLabV3Plus,
}


@functools.cache
def _model(arch: str) -> torch.nn.Module:
    """smp's `arch` with random weights and BatchNorm statistics (built once per session)."""
    family, encoder = arch.split("_")
    torch.manual_seed(len(arch))
    model = CLASSES[family](encoder, encoder_weights=None, classes=NUM_CLASSES)
    return torch_reference.randomize_batchnorm(model)


@pytest.mark.parametrize(
    ("arch", "size"),
    [
        ("unet_resnet34", (67, 75)),
        ("unet_resnet34", (45, 99)),
        ("unet_resnet34", (33, 17)),
        ("unet_resnet50", (61, 77)),
        ("pspnet_resnet50", (72, 88)),
        ("pspnet_resnet50", (56, 120)),
        ("pspnet_resnet101", (88, 72)),
        ("deeplabv3_resnet50", (72, 88)),
        ("deeplabv3plus_resnet50", (80, 112)),
        ("deeplabv3plus_resnet50", (48, 144)),
        ("deeplabv3plus_resnet101", (112, 80)),
    ],
)
def test_eval(arch, size):
    harness.check_eval(_model(arch), "smp", arch, size)


@pytest.mark.parametrize(
    ("arch", "size"),
    [
        ("unet_resnet34", (29, 35)),
        ("pspnet_resnet50", (40, 56)),
        ("deeplabv3plus_resnet50", (32, 48)),
    ],
)
def test_train_step(arch, size):
    model = copy.deepcopy(_model(arch))
    harness.check_train_step(model, "smp", arch, size, NUM_CLASSES)
