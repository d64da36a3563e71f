"""PyTorch twins of jaxseg models for benchmarks/throughput.py: same layers, same parameters.

Each entry of `PAIRS` names the jaxseg model with its options and the PyTorch network of the
same architecture (torchvision, segmentation_models_pytorch, or built here from the layers
jaxseg's code uses); throughput.py checks that both have equally many parameters.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from jaxseg.backbones.resnet import STAGE_NAMES
from jaxseg.backbones.vgg import VGG16_STAGES, stage_channels
from jaxseg.convert.smp import DEEPLABV3PLUS_OPTIONS

NUM_CLASSES = 21
VGG16_CHANNELS = stage_channels()


def upsample(x: torch.Tensor, size: Sequence[int], align_corners: bool = True) -> torch.Tensor:
    """Bilinear resizing of NCHW `x` to `size`, as jaxseg's `resize_bilinear`."""
    return F.interpolate(x, tuple(size), mode="bilinear", align_corners=align_corners)


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    dilation: int = 1,
    padding: int | None = None,
    batch_norm: bool = False,
    bias: bool = True,
) -> list[nn.Module]:
    """jaxseg's ConvBNAct: conv (padding dilation * (kernel - 1) // 2 unless given), optional
    BatchNorm, ReLU."""
    padding = dilation * (kernel - 1) // 2 if padding is None else padding
    conv = nn.Conv2d(
        in_channels, out_channels, kernel, padding=padding, dilation=dilation, bias=bias
    )
    return [conv, *([nn.BatchNorm2d(out_channels)] if batch_norm else []), nn.ReLU(inplace=True)]


class ResNet50Features(torchvision.models.ResNet):
    """torchvision's ResNet-50 (same module names, no classifier) returning jaxseg's feature
    dict: `stem` (stride 2, before max pooling) and `layer1`..`layer4`; output stride 8/16/32
    by dilation, keeping the previous dilation in a dilated stage's first block."""

    def __init__(self, output_stride: int = 32):
        dilated = {32: [False] * 3, 16: [False, False, True], 8: [False, True, True]}
        super().__init__(
            torchvision.models.resnet.Bottleneck,
            [3, 4, 6, 3],
            replace_stride_with_dilation=dilated[output_stride],
        )
        del self.avgpool, self.fc

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = {"stem": self.relu(self.bn1(self.conv1(x)))}
        x = self.maxpool(features["stem"])
        for name in STAGE_NAMES:
            x = features[name] = getattr(self, name)(x)
        return features


class TorchPSPNet(nn.Module):
    """PSPNet with jaxseg's layer layout: dilated ResNet-50, PPM (1, 2, 3, 6), 3x3 fuse, aux."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.backbone = ResNet50Features(8)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b), *conv_block(2048, 512, 1, batch_norm=True, bias=False)
            )
            for b in (1, 2, 3, 6)
        )
        self.fuse = nn.Sequential(
            *conv_block(4096, 512, 3, batch_norm=True, bias=False),
            nn.Dropout(0.1),
            nn.Conv2d(512, num_classes, 1),
        )
        self.aux = torchvision.models.segmentation.fcn.FCNHead(1024, num_classes)

    def forward(self, x):
        size = x.shape[2:]
        features = self.backbone(x)
        y = features["layer4"]
        pyramid = [y] + [upsample(b(y), y.shape[2:]) for b in self.branches]
        out = upsample(self.fuse(torch.cat(pyramid, 1)), size)
        if not self.training:
            return out
        return out, upsample(self.aux(features["layer3"]), size)


class VGG16(nn.Sequential):
    """jaxseg's VGG16 variants: 13 3x3 conv-ReLU, per-stage pool (`pools[s]`: MaxPool2d
    arguments, None: removed; ceil mode) and dilation, fc6/fc7 as `fc` = (features, kernel,
    dilation, padding) convs with ReLU and dropout 0.5."""

    def __init__(
        self,
        pools: Sequence[tuple[int, ...] | None],
        dilations: Sequence[int],
        fc: tuple[int, int, int, int] | None,
    ):
        layers, channels = [], 3
        for stage, (count, out) in enumerate(zip(VGG16_STAGES, VGG16_CHANNELS, strict=True)):
            for _ in range(count):
                layers += conv_block(channels, out, 3, dilation=dilations[stage])
                channels = out
            if pools[stage] is not None:
                layers.append(nn.MaxPool2d(*pools[stage], ceil_mode=True))
        if fc is not None:
            features, kernel, dilation, padding = fc
            layers += [
                *conv_block(channels, features, kernel, dilation=dilation, padding=padding),
                nn.Dropout(0.5),
                *conv_block(features, features, 1),
                nn.Dropout(0.5),
            ]
        super().__init__(*layers)


class ScoresUpsampled(nn.Module):
    """`body` to class scores, bilinearly upsampled to the input size."""

    def __init__(self, body: nn.Module, align_corners: bool):
        super().__init__()
        self.body, self.align_corners = body, align_corners

    def forward(self, x):
        return upsample(self.body(x), x.shape[2:], self.align_corners)


def deeplab_v1() -> nn.Module:
    """DeepLab-LargeFOV: 3x3 pools (stride 1 for pool4/5), conv5 dilated 2, fc6 3x3 at 12."""
    trunk = VGG16([(3, 2, 1)] * 3 + [(3, 1, 1)] * 2, (1, 1, 1, 1, 2), (1024, 3, 12, 12))
    return ScoresUpsampled(nn.Sequential(trunk, nn.Conv2d(1024, NUM_CLASSES, 1)), True)


def dilated(context: bool) -> nn.Module:
    """Yu and Koltun's front end (pool4/5 removed, conv5 at 2, fc6 7x7 at 4), with the large
    context module (3x3 at dilations 1, 1, 2, 4, 8, 16, 1 widening C to 32C, 1x1 back)."""
    layers = [
        VGG16([(2, 2)] * 3 + [None, None], (1, 1, 1, 1, 2), (4096, 7, 4, 12)),
        nn.Conv2d(4096, NUM_CLASSES, 1),
    ]
    if context:
        channels = NUM_CLASSES
        for d, m in zip((1, 1, 2, 4, 8, 16, 1), (2, 2, 4, 8, 16, 32, 32), strict=True):
            layers += conv_block(channels, m * NUM_CLASSES, 3, dilation=d)
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
