"""The paper's U-Net (arXiv 1505.04597) against the same network written with torch.nn
layers.

The torch network below spells out jaxseg's U-Net with PyTorch's own primitives (Conv2d,
ConvTranspose2d, MaxPool2d with ceil_mode, cropping, concatenation), so the comparison checks
those primitives' arithmetic at odd sizes, where the cropping and rounding matter.
"""

import pytest
import torch
from torch import nn

from jaxseg import models
from jaxseg.convert.mapping import Target, fill_variables
from tests import torch_reference
from tests.parity import parity_harness as harness

FEATURES = (4, 8, 12, 16, 20)
NUM_CLASSES = 3


class TorchDoubleConv(nn.Module):
    """Two 3x3 conv(-BN)-ReLU layers; without BN the convs have biases."""

    def __init__(self, in_channels: int, features: int, batch_norm: bool):
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else lambda _: nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, features, 3, padding=1, bias=not batch_norm)
        self.bn1 = norm(features)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm)
        self.bn2 = norm(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(x)))


class TorchUNet(nn.Module):
    """U-Net with padded convs, ceil-mode 2x2 pooling, 2x2 up-convolutions cropped to the
    skip's size, [upsampled, skip] concatenation and a 1x1 classifier."""

    def __init__(self, features: tuple[int, ...], num_classes: int, batch_norm: bool):
        super().__init__()
        widths = (3, *features)
        self.encoder = nn.ModuleList(
            TorchDoubleConv(i, o, batch_norm) for i, o in zip(widths, features, strict=False)
        )
        levels = list(zip(features[:0:-1], features[-2::-1], strict=True))
        self.up = nn.ModuleList(nn.ConvTranspose2d(i, o, 2, stride=2) for i, o in levels)
        self.decoder = nn.ModuleList(TorchDoubleConv(2 * o, o, batch_norm) for _, o in levels)
        self.classifier = nn.Conv2d(features[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(nn.functional.max_pool2d(x, 2, 2, ceil_mode=True) if i else x)
            skips.append(x)
        for up, block, skip in zip(self.up, self.decoder, skips[-2::-1], strict=True):
            x = up(x)[:, :, : skip.shape[2], : skip.shape[3]]
            x = block(torch.cat([x, skip], dim=1))
        return self.classifier(x)


RULES = (
    (r"(encoder|decoder)(\d)/(convs/)?conv([12])/conv", r"\1.\2.conv\4"),
    (r"(encoder|decoder)(\d)/(convs/)?conv([12])/bn", r"\1.\2.bn\4"),
    (r"decoder(\d)/up", r"up.\1"),
    ("classifier", "classifier"),
)


def _converter(batch_norm: bool):
    """state_dict of TorchUNet -> (jaxseg U-Net, variables), through jaxseg's renaming."""
    target = Target(
        lambda n: models.create("unet", n, features=FEATURES, batch_norm=batch_norm),
        RULES,
        classifier="classifier.weight",
    )

    def convert(state_dict: dict):
        module = target.build(NUM_CLASSES)
        return module, fill_variables(state_dict, module, target, "paper U-Net")

    return convert


def _torch_unet(batch_norm: bool) -> TorchUNet:
    torch.manual_seed(0)
    return torch_reference.randomize_batchnorm(TorchUNet(FEATURES, NUM_CLASSES, batch_norm))


@pytest.mark.parametrize(
    ("batch_norm", "size"), [(True, (37, 53)), (True, (20, 13)), (True, (1, 5)), (False, (45, 31))]
)
def test_paper_unet_matches_torch_layers(batch_norm, size):
    model = _torch_unet(batch_norm)
    label = f"paper unet{' bn' if batch_norm else ''}"
    harness.check_eval(model, "torch.nn", label, size, convert=_converter(batch_norm))


def test_paper_unet_train_step():
    model = _torch_unet(batch_norm=True)
    convert = _converter(batch_norm=True)
    harness.check_train_step(model, "torch.nn", "paper unet bn", (29, 35), NUM_CLASSES, convert)


def test_unet_rejects_options_of_the_other_variant():
    with pytest.raises(ValueError, match="need resnet_depth"):
        models.create("unet", 2, width=8)
    with pytest.raises(ValueError, match="paper's U-Net"):
        models.create("unet", 2, resnet_depth=34, batch_norm=True)
