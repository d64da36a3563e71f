"""PSPNet (jaxseg/models/pspnet.py): the paper's head on ResNet-101, in size."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

from tests.models import harness  # noqa: E402
from tests.torch_reference import resnet_trunk_count  # noqa: E402


def test_pspnet_resnet101_size():
    # The paper's head on torchvision's ResNet-101 trunk: PPM (4 x 1x1 2048->512 + BN), 3x3
    # fuse conv 4096->512 + BN, 1x1 classifier; the aux head is left out.
    head = 4 * (2048 * 512 + 2 * 512) + (4096 * 512 * 9 + 2 * 512) + (512 * 21 + 21)
    expected = resnet_trunk_count(101) + head
    assert harness.parameter_count("pspnet", num_classes=21, aux=False) == expected
