"""PyTorch twins of jaxseg models for benchmarks/throughput.py: same layers, same parameters.

Each entry of `PAIRS` names the jaxseg model with its options and the PyTorch network of the
same architecture (torchvision, segmentation_models_pytorch, or built here from the layers
jaxseg's code uses); throughput.py checks that both have equally many parameters.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from jaxseg.convert.smp import DEEPLABV3PLUS_OPTIONS

NUM_CLASSES = 21


class TorchPSPNet(nn.Module):
    """PSPNet with jaxseg's layer layout: dilated ResNet-50, PPM (1, 2, 3, 6), 3x3 fuse, aux."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        trunk = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool)
        self.layers = nn.ModuleList([trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4])
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(2048, 512, 1, bias=False),
                nn.BatchNorm2d(512),
                nn.ReLU(inplace=True),
            )
            for b in (1, 2, 3, 6)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(4096, 512, 3, padding=1, bias=False),
            nn.BatchNorm2d(512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(512, num_classes, 1),
        )
        self.aux = torchvision.models.segmentation.fcn.FCNHead(1024, num_classes)

    def forward(self, x):
        size = x.shape[2:]
        y = self.stem(x)
        y = self.layers[1](self.layers[0](y))
        aux = self.layers[2](y)
        y = self.layers[3](aux)
        pyramid = [y] + [
            F.interpolate(b(y), y.shape[2:], mode="bilinear", align_corners=True)
            for b in self.branches
        ]
        out = F.interpolate(
            self.fuse(torch.cat(pyramid, 1)), size, mode="bilinear", align_corners=True
        )
        if not self.training:
            return out
        return out, F.interpolate(self.aux(aux), size, mode="bilinear", align_corners=True)


def vgg16_trunk(pools: list, dilations: tuple[int, ...], fc: tuple | None) -> nn.Sequential:
    """jaxseg's VGG16 variants: 13 3x3 conv-ReLU, per-stage pool (None: removed) and dilation,
    fc6/fc7 as `fc` = (features, kernel, dilation, padding) convs with ReLU and dropout 0.5."""
    layers, channels = [], 3
    for stage, count in enumerate((2, 2, 3, 3, 3)):
        out = 64 * min(2**stage, 8)
        for _ in range(count):
            d = dilations[stage]
            layers += [nn.Conv2d(channels, out, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            channels = out
        if pools[stage] is not None:
            layers.append(nn.MaxPool2d(*pools[stage], ceil_mode=True))
    if fc is not None:
        features, kernel, dilation, padding = fc
        layers += [
            nn.Conv2d(channels, features, kernel, padding=padding, dilation=dilation),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Conv2d(features, features, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
        ]
    return nn.Sequential(*layers)


class ScoresUpsampled(nn.Module):
    """`body` to class scores, bilinearly upsampled to the input size."""

    def __init__(self, body: nn.Module, align_corners: bool):
        super().__init__()
        self.body, self.align_corners = body, align_corners

    def forward(self, x):
        return F.interpolate(
            self.body(x), x.shape[2:], mode="bilinear", align_corners=self.align_corners
        )


def deeplab_v1() -> nn.Module:
    """DeepLab-LargeFOV: 3x3 pools (stride 1 for pool4/5), conv5 dilated 2, fc6 3x3 at 12."""
    trunk = vgg16_trunk([(3, 2, 1)] * 3 + [(3, 1, 1)] * 2, (1, 1, 1, 1, 2), (1024, 3, 12, 12))
    return ScoresUpsampled(nn.Sequential(trunk, nn.Conv2d(1024, NUM_CLASSES, 1)), True)


def dilated(context: bool) -> nn.Module:
    """Yu and Koltun's front end (pool4/5 removed, conv5 at 2, fc6 7x7 at 4), with the large
    context module (3x3 at dilations 1, 1, 2, 4, 8, 16, 1 widening C to 32C, 1x1 back)."""
    layers = [
        vgg16_trunk([(2, 2)] * 3 + [None, None], (1, 1, 1, 1, 2), (4096, 7, 4, 12)),
        nn.Conv2d(4096, NUM_CLASSES, 1),
    ]
    if context:
        channels = NUM_CLASSES
        for d, m in zip((1, 1, 2, 4, 8, 16, 1), (2, 2, 4, 8, 16, 32, 32), strict=True):
            layers += [
                nn.Conv2d(channels, m * NUM_CLASSES, 3, padding=d, dilation=d),
                nn.ReLU(inplace=True),
            ]
            channels = m * NUM_CLASSES
        layers.append(nn.Conv2d(channels, NUM_CLASSES, 1))
    return ScoresUpsampled(nn.Sequential(*layers), False)


def smp_model(arch: str, encoder: str) -> nn.Module:
    """segmentation_models_pytorch's `arch` on `encoder`, imported only when asked for."""
    import segmentation_models_pytorch as smp

    return getattr(smp, arch)(encoder_name=encoder, encoder_weights=None, classes=NUM_CLASSES)


@dataclass(frozen=True)
class Pair:
    """A jaxseg model with its options and the builder of its PyTorch twin."""

    model: str
    options: dict[str, Any]
    reference: str
    build: Callable[[], nn.Module]
    needs_smp: bool = False


PAIRS: dict[str, Pair] = {
    "deeplab_v1": Pair("deeplab_v1", {}, "VGG16 LargeFOV built here", deeplab_v1),
    "deeplab_v3": Pair(
        "deeplab_v3",
        dict(depth=50, output_stride=8, multi_grid=None, aux=True),
        "torchvision deeplabv3_resnet50",
        lambda: torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True
        ),
    ),
    "deeplab_v3plus": Pair(
        "deeplab_v3plus",
        dict(depth=50, **DEEPLABV3PLUS_OPTIONS),
        "smp DeepLabV3Plus resnet50",
        lambda: smp_model("DeepLabV3Plus", "resnet50"),
        needs_smp=True,
    ),
    "pspnet": Pair(
        "pspnet",
        dict(depth=50, output_stride=8, aux=True),
        "torchvision dilated resnet50 + PPM built here",
        TorchPSPNet,
    ),
    "fcn_resnet": Pair(
        "fcn_resnet",
        dict(depth=50, aux=True),
        "torchvision fcn_resnet50",
        lambda: torchvision.models.segmentation.fcn_resnet50(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True
        ),
    ),
    "unet": Pair(
        "unet",
        dict(resnet_depth=34),
        "smp Unet resnet34",
        lambda: smp_model("Unet", "resnet34"),
        needs_smp=True,
    ),
    "dilated_frontend": Pair(
        "dilated_frontend", {}, "dilated VGG16 built here", lambda: dilated(False)
    ),
    "dilated_context": Pair(
        "dilated_context", {}, "dilated VGG16 + context built here", lambda: dilated(True)
    ),
}
