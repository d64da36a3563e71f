"""PSPNet, DeepLab v3/v3+ and U-Net through the shared model harness, and their sizes."""

import pytest

from tests.models import harness

NARROW = {
    "pspnet": dict(depth=18, width=8, head_features=16),
    "deeplab_v3": dict(depth=18, width=8, aspp_features=16, aux=True),
    "deeplab_v3plus": dict(depth=18, width=8, aspp_features=16),
    "unet": dict(features=(8, 16, 16, 32, 32)),
}


class TestEncoderDecoders(harness.ModelChecks):
    """The shared checks on PSPNet, DeepLab v3/v3+ and U-Net."""

    NARROW = NARROW


def _torch_parameter_count(module, skip: str = "") -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not (skip and n.startswith(skip)))


def test_deeplab_v3_resnet101_has_torchvision_size():
    segmentation = pytest.importorskip("torchvision.models.segmentation")
    reference = segmentation.deeplabv3_resnet101(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=False
    )
    ours = harness.parameter_count("deeplab_v3", num_classes=21, multi_grid=None)
    assert ours == _torch_parameter_count(reference)


def test_pspnet_resnet101_size():
    torchvision = pytest.importorskip("torchvision")
    # The paper's head on torchvision's ResNet-101 trunk: PPM (4 x 1x1 2048->512 + BN), 3x3
    # fuse conv 4096->512 + BN, 1x1 classifier; the aux head is left out.
    trunk = _torch_parameter_count(torchvision.models.resnet101(), skip="fc.")
    head = 4 * (2048 * 512 + 2 * 512) + (4096 * 512 * 9 + 2 * 512) + (512 * 21 + 21)
    assert harness.parameter_count("pspnet", num_classes=21, aux=False) == trunk + head
