"""DeepLab v3, "Rethinking Atrous Convolution for Semantic Image Segmentation" (Chen et al.,
arXiv 1706.05587).

Dilated ResNet with multi-grid rates in the last stage, ASPP (1x1, three 3x3 atrous convs,
image pooling; all with BN) concatenated and projected to 256 channels, then a 1x1
classifier; logits are upsampled bilinearly to the input size. ASPP rates are (6, 12, 18) at
output stride 16 and doubled at output stride 8, as the paper prescribes.

Deviation: `head_conv=True` (default) adds torchvision's extra 3x3 conv-BN-ReLU before the
classifier, so torchvision's DeepLabV3 weights load unchanged; `head_conv=False` is the
paper's head. An auxiliary FCN head on `layer3` (torchvision's `aux_classifier`) is optional.

DeepLab v3+, "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation" (Chen et al., arXiv 1802.02611), adds a decoder on `layer1` to the v3 encoder.

DeepLab v2, "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
Convolution, and Fully Connected CRFs" (Chen et al., arXiv 1606.00915): see `DeepLabV2`.

DeepLab v1, "Semantic Image Segmentation with Deep Convolutional Nets and Fully Connected
CRFs" (Chen et al., arXiv 1412.7062), in its DeepLab-LargeFOV form: see `DeepLabV1`.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.vgg import VGG, vgg16
from jaxseg.models.common import (
    SHORT_SCHEDULE_CAVEAT,
    VGG_SCRATCH_CAVEAT,
    as_dtype,
    auxiliary_logits,
    finalize_logits,
    resnet_backbone,
)
from jaxseg.models.registry import register
from jaxseg.nn import ASPP, ASPPV2, ConvBNAct, SeparableConv2d, resize_bilinear
from jaxseg.nn.conv import Conv2d


class DeepLabV3(nn.Module):
    """Backbone, ASPP, optional 3x3 head conv, classifier; (logits, aux) in training with aux."""

    backbone: nn.Module
    num_classes: int
    rates: Sequence[int] = (12, 24, 36)
    aspp_features: int = 256
    head_conv: bool = True
    aux: bool = False
    align_corners: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False):
        features = self.backbone(images, train)
        x = ASPP(self.rates, self.aspp_features, dtype=self.dtype, name="aspp")(
            features["layer4"], train
        )
        if self.head_conv:
            x = ConvBNAct(self.aspp_features, 3, dtype=self.dtype, name="head")(x, train)
        x = Conv2d(self.num_classes, 1, dtype=self.dtype, name="classifier")(x)
        logits = finalize_logits(x, images, self.align_corners)
        if not self.aux:
            return logits
        return auxiliary_logits(self, logits, features["layer3"], images, train,
                                align_corners=self.align_corners)


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """The paper's ASPP rates: (6, 12, 18) at output stride 16, doubled at 8."""
    return tuple(r * 16 // output_stride for r in (6, 12, 18))


@register(
    "deeplab_v3",
    small=dict(depth=18, width=8, aspp_features=16, aux=True),
    scratch_caveat=SHORT_SCHEDULE_CAVEAT,
)
def deeplab_v3(
    num_classes: int,
    depth: int = 101,
    output_stride: int = 8,
    multi_grid: tuple[int, ...] | None = (1, 2, 4),
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    aspp_features: int = 256,
    head_conv: bool = True,
    aux: bool = False,
    rates: tuple[int, ...] | None = None,
    dilate_first_block: bool = False,
    align_corners: bool = False,
    dtype: Any = None,
) -> DeepLabV3:
    """DeepLab v3 on ResNet-`depth`; `width`/`aspp_features`/`stage_sizes` shrink it for tests.

    `rates=None` takes the paper's ASPP rates for `output_stride`. torchvision's variant is
    `multi_grid=None`; smp's adds `dilate_first_block=True` and `align_corners=True`.
    """
    backbone = resnet_backbone(depth, output_stride, width=width, stage_sizes=stage_sizes,
                               multi_grid=multi_grid, dilate_first_block=dilate_first_block,
                               dtype=dtype)
    return DeepLabV3(backbone, num_classes, rates=rates or aspp_rates(output_stride),
                     aspp_features=aspp_features, head_conv=head_conv, aux=aux,
                     align_corners=align_corners, dtype=as_dtype(dtype))


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+ (arXiv 1802.02611): the v3 encoder plus a decoder that upsamples the ASPP
    output to `layer1`'s size, concatenates `layer1` reduced to 48 channels and refines with
    3x3 convs before the classifier; logits are upsampled to the input size.

    `separable` makes ASPP and decoder convs depthwise-separable (the paper's atrous separable
    convolution); `aspp_conv` adds smp's 3x3 conv-BN-ReLU after ASPP; `fuse_convs` is the
    number of refining 3x3 convs (two in the paper, one in smp).
    """

    backbone: nn.Module
    num_classes: int
    rates: Sequence[int] = (6, 12, 18)
    features: int = 256
    low_level_features: int = 48
    separable: bool = True
    aspp_conv: bool = False
    fuse_convs: int = 2
    align_corners: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = self.backbone(images, train)
        conv = SeparableConv2d if self.separable else Conv2d
        block = partial(ConvBNAct, dtype=self.dtype)
        x = ASPP(self.rates, self.features, separable=self.separable, dtype=self.dtype,
                 name="aspp")(features["layer4"], train)
        if self.aspp_conv:
            x = block(self.features, 3, conv=conv, name="aspp_conv")(x, train)
        skip = features["layer1"]
        x = resize_bilinear(x, skip.shape[1:3], self.align_corners)
        skip = block(self.low_level_features, 1, name="low_level")(skip, train)
        x = jnp.concatenate([x, skip], axis=-1)
        for i in range(self.fuse_convs):
            x = block(self.features, 3, conv=conv, name=f"fuse{i}")(x, train)
        x = Conv2d(self.num_classes, 1, dtype=self.dtype, name="classifier")(x)
        return finalize_logits(x, images, self.align_corners)


@register("deeplab_v3plus", small=dict(depth=18, width=8, aspp_features=16))
def deeplab_v3plus(
    num_classes: int,
    depth: int = 101,
    output_stride: int = 16,
    multi_grid: tuple[int, ...] | None = (1, 2, 4),
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    aspp_features: int = 256,
    rates: tuple[int, ...] | None = None,
    separable: bool = True,
    aspp_conv: bool = False,
    fuse_convs: int = 2,
    dilate_first_block: bool = False,
    dtype: Any = None,
) -> DeepLabV3Plus:
    """DeepLab v3+ on ResNet-`depth` at output stride 16, as the paper trains it.

    smp's variant: `multi_grid=None`, `rates=(12, 24, 36)`, `aspp_conv=True`, `fuse_convs=1`,
    `dilate_first_block=True`.
    """
    backbone = resnet_backbone(depth, output_stride, width=width, stage_sizes=stage_sizes,
                               multi_grid=multi_grid, dilate_first_block=dilate_first_block,
                               dtype=dtype)
    return DeepLabV3Plus(backbone, num_classes, rates=rates or aspp_rates(output_stride),
                         features=aspp_features, separable=separable, aspp_conv=aspp_conv,
                         fuse_convs=fuse_convs, dtype=as_dtype(dtype))


class DeepLabV2(nn.Module):
    """DeepLab v2 (arXiv 1606.00915): ASPP-L (3x3 atrous convs at rates 6/12/18/24 straight to
    class scores, summed) on a ResNet at output stride 8, run on the image at each of `scales`
    with shared weights; the score maps are resized to the largest one and fused by max.

    Scaled inputs are (n - 1) * scale + 1 pixels, resized with align_corners, as the authors'
    Caffe Interp layer. Training returns (fused, *per-scale) logits: the paper's loss sums the
    cross-entropy of every scale and of the fusion (train with `aux_weight=1`).

    Deviations: logits are upsampled to the labels (Caffe shrinks the labels to the logits);
    the backbone is torchvision's ResNet (stride on the 3x3 conv; Caffe's on the 1x1) with
    trainable BatchNorm, whose statistics see every scale (the authors freeze BatchNorm).
    """

    backbone: nn.Module
    num_classes: int
    rates: Sequence[int] = (6, 12, 18, 24)
    scales: Sequence[float] = (1.0, 0.75, 0.5)
    align_corners: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False):
        aspp = ASPPV2(self.num_classes, self.rates, dtype=self.dtype, name="aspp")
        scores = []
        for scale in self.scales:
            size = tuple(int((n - 1) * scale) + 1 for n in images.shape[1:3])
            scaled = resize_bilinear(images, size, align_corners=True)
            scores.append(finalize_logits(aspp(self.backbone(scaled, train)["layer4"])))
        size = max((s.shape[1:3] for s in scores), key=lambda hw: hw[0] * hw[1])
        fused = jnp.max(jnp.stack([resize_bilinear(s, size, True) for s in scores]), axis=0)
        logits = finalize_logits(fused, images, self.align_corners)
        if not train or len(scores) == 1:
            return logits
        return (logits, *(finalize_logits(s, images, self.align_corners) for s in scores))


@register(
    "deeplab_v2", small=dict(depth=18, width=8, stage_sizes=(1, 1, 1, 1), scales=(1.0, 0.5))
)
def deeplab_v2(
    num_classes: int,
    depth: int = 101,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    rates: tuple[int, ...] = (6, 12, 18, 24),
    scales: tuple[float, ...] = (1.0, 0.75, 0.5),
    dtype: Any = None,
) -> DeepLabV2:
    """DeepLab v2 on ResNet-`depth` at output stride 8, every block of the dilated stages
    dilated as in the authors' model; `width`/`stage_sizes` shrink it, `scales=(1.0,)` runs
    a single scale."""
    if not scales:
        raise ValueError("deeplab_v2: scales must list at least one input scale, got ()")
    backbone = resnet_backbone(
        depth, 8, width=width, stage_sizes=stage_sizes, dilate_first_block=True, dtype=dtype
    )
    return DeepLabV2(backbone, num_classes, rates=rates, scales=scales, dtype=as_dtype(dtype))


class DeepLabV1(nn.Module):
    """DeepLab-LargeFOV (arXiv 1412.7062): VGG16 with 3x3 pools (pool4 and pool5 at stride 1),
    conv5 at dilation 2, fc6 a 3x3 conv at dilation 12 with 1024 channels, fc7 1x1, dropout
    0.5 after both, and `fc8` a 1x1 classifier drawn from N(0, 0.01^2): output stride 8.
    Scores are upsampled bilinearly with align_corners, as the authors' Interp layer.

    Deviations: logits are upsampled to the labels (Caffe shrinks the labels by 8 instead);
    the dense CRF is a post-processing step of evaluation (`config.eval.crf`), not part of the
    module.
    """

    backbone: VGG
    num_classes: int
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = self.backbone(images, train)["fc7"]
        x = Conv2d(self.num_classes, 1, kernel_init=nn.initializers.normal(0.01),
                   dtype=self.dtype, name="fc8")(x)
        return finalize_logits(x, images, align_corners=True)


@register("deeplab_v1", small=dict(width=8, fc_features=32), scratch_caveat=VGG_SCRATCH_CAVEAT)
def deeplab_v1(
    num_classes: int, width: int = 64, fc_features: int = 1024, dtype: Any = None
) -> DeepLabV1:
    """DeepLab-LargeFOV on VGG16; `width` (conv1 channels) and `fc_features` shrink it."""
    backbone = vgg16("largefov", width=width, fc_features=fc_features, dtype=as_dtype(dtype),
                     name="backbone")
    return DeepLabV1(backbone, num_classes, dtype=as_dtype(dtype))
