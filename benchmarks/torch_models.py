"""PyTorch twins of jaxseg models for benchmarks/throughput.py: same layers, same parameters.

Each entry of `PAIRS` names the jaxseg model with its options and the PyTorch network of the
same architecture (torchvision, segmentation_models_pytorch, or built here from the layers
jaxseg's code uses); throughput.py checks that both have equally many parameters.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
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
RESNET50_CHANNELS = {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}
COARSE_FIRST = STAGE_NAMES[::-1]  # the order RefineNet and GCN decode the stages in


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
    by dilation. torchvision keeps the previous dilation in a dilated stage's first block;
    `dilate_first_block` dilates it too (jaxseg's option, smp's `make_dilated`)."""

    def __init__(self, output_stride: int = 32, dilate_first_block: bool = False):
        dilated = {32: [False] * 3, 16: [False, False, True], 8: [False, True, True]}
        super().__init__(
            torchvision.models.resnet.Bottleneck,
            [3, 4, 6, 3],
            replace_stride_with_dilation=dilated[output_stride],
        )
        del self.avgpool, self.fc
        for name, is_dilated in zip(STAGE_NAMES[1:], dilated[output_stride], strict=True):
            layer = getattr(self, name)
            if dilate_first_block and is_dilated:
                first, second = layer[0].conv2, layer[1].conv2
                first.dilation, first.padding = second.dilation, second.padding

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
    """jaxseg's VGG16 variants: 13 3x3 conv(-BN)-ReLU, per-stage pool (`pools[s]`: MaxPool2d
    arguments, None: removed; ceil mode) and dilation, conv1_1 padded by `first_padding`,
    fc6/fc7 as `fc` = (features, kernel, dilation, padding) convs with ReLU and dropout 0.5."""

    def __init__(
        self,
        pools: Sequence[tuple[int, ...] | None],
        dilations: Sequence[int],
        fc: tuple[int, int, int, int] | None,
        *,
        first_padding: int = 1,
        batch_norm: bool = False,
    ):
        layers, channels = [], 3
        for stage, (count, out) in enumerate(zip(VGG16_STAGES, VGG16_CHANNELS, strict=True)):
            for i in range(count):
                d = dilations[stage]
                padding = first_padding if stage == i == 0 else d
                layers += conv_block(
                    channels, out, 3, dilation=d, padding=padding, batch_norm=batch_norm
                )
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

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The output and, for each max pool, (input size, pooled map, argmax indices): the
        taps of FCN's skips and SegNet's unpooling."""
        pools = []
        for layer in self:
            if isinstance(layer, nn.MaxPool2d):
                size = x.shape[2:]
                x, indices = F.max_pool2d(
                    x,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    ceil_mode=layer.ceil_mode,
                    return_indices=True,
                )
                pools.append((size, x, indices))
            else:
                x = layer(x)
        return x, pools


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


class TorchSegNet(nn.Module):
    """SegNet: VGG16-BN encoder with ceil-mode 2x2 pools, a mirrored decoder that unpools with
    their indices, each stage's convs back to the previous stage's width, and a 3x3
    classifier in place of the last one."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.encoder = VGG16([(2, 2)] * 5, (1,) * 5, None, batch_norm=True)
        channels = (3, *VGG16_CHANNELS)
        self.decoder = nn.ModuleList()
        for stage in range(len(VGG16_STAGES), 0, -1):
            widths = [channels[stage]] * VGG16_STAGES[stage - 1] + [channels[stage - 1]]
            if stage == 1:
                widths.pop()  # the classifier replaces conv1_1_D
            blocks = [conv_block(*pair, 3, batch_norm=True) for pair in pairwise(widths)]
            self.decoder.append(nn.Sequential(*(layer for b in blocks for layer in b)))
        self.classifier = nn.Conv2d(channels[1], num_classes, 3, padding=1)

    def forward(self, x):
        x, pools = self.encoder.features(x)
        for stage, (size, _, indices) in zip(self.decoder, reversed(pools), strict=True):
            x = stage(F.max_unpool2d(x, indices, 2, 2, output_size=size))
        return self.classifier(x)


def crop(x: torch.Tensor, offset: int, size: Sequence[int]) -> torch.Tensor:
    """The `size` window of NCHW `x` starting `offset` pixels in along both axes."""
    return x[:, :, offset : offset + size[0], offset : offset + size[1]]


class TorchFCN(nn.Module):
    """FCN-32s/16s/8s (`skips` 0, 1, 2): VGG16 with conv1_1 padded by 100, fc6 7x7, fc7;
    1x1 scorers, 4x4 stride-2 deconvolutions adding pool4 then pool3 scores, and a 2f x 2f
    stride-f final deconvolution, cropped at the reference Caffe nets' offsets."""

    SKIP_POOLS = (3, 2)  # pool4, then pool3 (0-based stages)
    CROPS = {0: (19,), 1: (5, 27), 2: (5, 9, 31)}

    def __init__(self, skips: int, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.trunk = VGG16([(2, 2)] * 5, (1,) * 5, (4096, 7, 1, 0), first_padding=100)
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        self.skips = nn.ModuleList(
            nn.ModuleList(
                [
                    nn.ConvTranspose2d(num_classes, num_classes, 4, 2, bias=False),
                    nn.Conv2d(VGG16_CHANNELS[stage], num_classes, 1),
                ]
            )
            for stage in self.SKIP_POOLS[:skips]
        )
        factor = 32 >> skips
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 2 * factor, factor, bias=False)
        self.offsets = self.CROPS[skips]

    def forward(self, x):
        fc7, pools = self.trunk.features(x)
        score = self.score_fr(fc7)
        taps = [pools[stage][1] for stage in self.SKIP_POOLS]
        for (deconv, scorer), pool, offset in zip(self.skips, taps, self.offsets, strict=False):
            score = deconv(score)
            score = score + crop(scorer(pool), offset, score.shape[2:])
        return crop(self.upscore(score), self.offsets[-1], x.shape[2:])


class ResidualConvUnit(nn.Module):
    """RefineNet's RCU: x + conv(ReLU(conv(ReLU(x)))), the first conv with bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ChainedResidualPooling(nn.Module):
    """ReLU, then `stages` (5x5 stride-1 max pool, 3x3 conv) in a chain, each output added."""

    def __init__(self, channels: int, stages: int = 4):
        super().__init__()
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(stages)
        )

    def forward(self, x):
        x = path = F.relu(x)
        for conv in self.convs:
            path = conv(self.pool(path))
            x = x + path
        return x


class RefineNetBlock(nn.Module):
    """Two RCUs per path (`widths`, coarse first), fusion by 3x3 convs to the narrowest width
    and bilinear upsampling to the finest path, chained residual pooling, one output RCU."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        features = min(widths)
        self.paths = nn.ModuleList(
            nn.Sequential(ResidualConvUnit(w), ResidualConvUnit(w)) for w in widths
        )
        fuse = [nn.Conv2d(w, features, 3, padding=1, bias=False) for w in widths]
        self.fusion = nn.ModuleList(fuse if len(widths) > 1 else [])
        self.pooling = ChainedResidualPooling(features)
        self.output = ResidualConvUnit(features)

    def forward(self, paths: Sequence[torch.Tensor]) -> torch.Tensor:
        refined = [unit(x) for unit, x in zip(self.paths, paths, strict=True)]
        x = refined[0]
        if self.fusion:
            size = max((r.shape[2:] for r in refined), key=lambda hw: hw[0] * hw[1])
            fused = [upsample(conv(r), size) for conv, r in zip(self.fusion, refined, strict=True)]
            x = sum(fused[1:], fused[0])
        return self.output(self.pooling(x))


class TorchRefineNet(nn.Module):
    """4-cascaded RefineNet on ResNet-50 (output stride 32): per stage, coarse first, dropout
    0.5 on layer4/layer3, a 3x3 adaptation conv (512 for layer4, else 256) and a RefineNet
    block with the previous block's output; two RCUs, dropout, 3x3 classifier."""

    def __init__(self, num_classes: int = NUM_CLASSES, features: int = 256):
        super().__init__()
        self.backbone = ResNet50Features(32)
        self.stages = nn.ModuleList()
        previous: list[int] = []  # the previous block's output width, after the first
        for stage in COARSE_FIRST:
            width = 2 * features if stage == "layer4" else features
            adapt = nn.Conv2d(RESNET50_CHANNELS[stage], width, 3, padding=1, bias=False)
            widths = [*previous, width]
            self.stages.append(nn.ModuleList([adapt, RefineNetBlock(widths)]))
            previous = [min(widths)]
        self.final = nn.Sequential(
            ResidualConvUnit(features),
            ResidualConvUnit(features),
            nn.Dropout(0.5),
            nn.Conv2d(features, num_classes, 3, padding=1),
        )
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        features = self.backbone(x)
        paths: list[torch.Tensor] = []
        for stage, (adapt, block) in zip(COARSE_FIRST, self.stages, strict=True):
            y = features[stage]
            y = self.dropout(y) if stage in ("layer4", "layer3") else y
            paths = [block([*paths, adapt(y)])]
        return upsample(self.final(paths[0]), x.shape[2:])


class BoundaryRefine(nn.Module):
    """GCN's BR block: x + conv3x3(ReLU(conv3x3(x))), both convs with bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class GlobalConv(nn.Module):
    """GCN's k x k context: (k x 1 then 1 x k) plus (1 x k then k x 1), convs with bias."""

    def __init__(self, in_channels: int, out_channels: int, k: int = 15):
        super().__init__()

        def conv(in_ch: int, shape: tuple[int, int]) -> nn.Conv2d:
            return nn.Conv2d(in_ch, out_channels, shape, padding=(shape[0] // 2, shape[1] // 2))

        self.left = nn.Sequential(conv(in_channels, (k, 1)), conv(out_channels, (1, k)))
        self.right = nn.Sequential(conv(in_channels, (1, k)), conv(out_channels, (k, 1)))

    def forward(self, x):
        return self.left(x) + self.right(x)


class TorchGCN(nn.Module):
    """GCN on ResNet-50 (output stride 32): GlobalConv + BR on every stage, coarse first; 4x4
    stride-2 deconvolutions (cropped) add each finer stage's scores, each followed by a BR;
    two more deconvolution + BR steps reach the stem and then the input resolution."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.backbone = ResNet50Features(32)
        self.heads = nn.ModuleList(
            nn.Sequential(
                GlobalConv(RESNET50_CHANNELS[stage], num_classes), BoundaryRefine(num_classes)
            )
            for stage in COARSE_FIRST
        )
        self.ups = nn.ModuleList(
            nn.ModuleList(
                [
                    nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False),
                    BoundaryRefine(num_classes),
                ]
            )
            for _ in range(len(STAGE_NAMES) + 1)
        )

    def forward(self, x):
        features = self.backbone(x)
        scores = [head(features[s]) for head, s in zip(self.heads, COARSE_FIRST, strict=True)]
        score, skips = scores[0], scores[1:]
        targets = [*skips, features["stem"], x]
        for j, ((deconv, refine), target) in enumerate(zip(self.ups, targets, strict=True)):
            height, width = target.shape[2:]
            score = deconv(score)[:, :, :height, :width]
            score = refine(score + target if j < len(skips) else score)
        return score


class TorchDeepLabV2(nn.Module):
    """DeepLab v2: ResNet-50 at output stride 8 with every dilated block dilated, ASPP-L (3x3
    convs at rates 6/12/18/24 to class scores, summed) on the image at each of `scales`
    ((n - 1) * scale + 1 pixels, shared weights), max-fused at the largest scale's size;
    training returns (fused, *per-scale) logits at the input size."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        rates: Sequence[int] = (6, 12, 18, 24),
        scales: Sequence[float] = (1.0, 0.75, 0.5),
    ):
        super().__init__()
        self.backbone = ResNet50Features(8, dilate_first_block=True)
        self.aspp = nn.ModuleList(
            nn.Conv2d(RESNET50_CHANNELS["layer4"], num_classes, 3, padding=r, dilation=r)
            for r in rates
        )
        self.scales = tuple(scales)

    def forward(self, x):
        size = x.shape[2:]
        scores = []
        for scale in self.scales:
            scaled = upsample(x, [int((n - 1) * scale) + 1 for n in size])
            y = self.backbone(scaled)["layer4"]
            branches = [branch(y) for branch in self.aspp]
            scores.append(sum(branches[1:], branches[0]))
        largest = max((s.shape[2:] for s in scores), key=lambda hw: hw[0] * hw[1])
        fused = torch.stack([upsample(s, largest) for s in scores]).amax(0)
        if not self.training:
            return upsample(fused, size)
        return tuple(upsample(s, size) for s in (fused, *scores))


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
    "deeplab_v2": Pair(
        "deeplab_v2",
        dict(depth=50),
        "torchvision resnet50 + ASPP-L at 3 scales built here",
        TorchDeepLabV2,
    ),
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
    "segnet": Pair("segnet", {}, "VGG16-BN encoder-decoder built here", TorchSegNet),
    **{
        name: Pair(name, {}, f"VGG16 {title} built here", partial(TorchFCN, skips))
        for skips, (name, title) in enumerate(
            (("fcn32s", "FCN-32s"), ("fcn16s", "FCN-16s"), ("fcn8s", "FCN-8s"))
        )
    },
    "refinenet": Pair(
        "refinenet", dict(depth=50), "torchvision resnet50 + RefineNet built here", TorchRefineNet
    ),
    "gcn": Pair("gcn", dict(depth=50), "torchvision resnet50 + GCN built here", TorchGCN),
}
