"""torchvision sources: ImageNet ResNets and VGG16 (backbones) and the DeepLab v3 and FCN
segmentation models (`torchvision.models.segmentation`).

torchvision's segmentation ResNets reach output stride 8 by `replace_stride_with_dilation`,
which keeps the previous dilation in the first block of a dilated stage and has no
multi-grid; ASPP puts image pooling last; logits and auxiliary logits are upsampled with
align_corners=False. BatchNorm eps is 1e-5 throughout.
"""

from collections.abc import Callable, Collection
from functools import partial

from jaxseg.backbones.resnet import resnet
from jaxseg.backbones.vgg import VGG16_CONV_NAMES, VGG16_STAGES, FullyConv, vgg16
from jaxseg.convert.mapping import (
    Rules,
    Target,
    aspp_rules,
    conv_bn_rules,
    registered,
    resnet_rules,
)

AUX_CLASSIFIER = "aux_classifier.4.weight"


def resnet_backbone(depth: int, keys: Collection[str]) -> Target:
    """An ImageNet ResNet-`depth` as jaxseg's ResNet trunk; the `fc` classifier is dropped."""
    del keys
    return Target(lambda _: resnet(depth), resnet_rules("", ""), ignore=(r"fc\..*",))


def vgg_feature_indices() -> tuple[int, ...]:
    """Positions of the convs in `vgg16().features` (each followed by a ReLU, each stage by
    a max pool)."""
    indices, position = [], 0
    for count in VGG16_STAGES:
        for _ in range(count):
            indices.append(position)
            position += 2
        position += 1
    return tuple(indices)


def vgg16_backbone(keys: Collection[str]) -> Target:
    """ImageNet VGG16: `features` convs and the first two classifier layers as fc6 (a 7x7
    conv) and fc7 (1x1), FCN's fully convolutional reading; the 1000-way layer is dropped.

    On a 224 x 224 input fc7 equals torchvision's `classifier[:5]` output.
    """
    del keys
    rules = tuple(
        (f"{name}/conv", f"features.{index}")
        for name, index in zip(VGG16_CONV_NAMES, vgg_feature_indices(), strict=True)
    ) + (("fc6/conv", "classifier.0"), ("fc7/conv", "classifier.3"))
    return Target(
        lambda _: vgg16("plain", fully_conv=FullyConv(4096, 7)),
        rules,
        ignore=(r"classifier\.6\..*",),
    )


def aux_rules() -> Rules:
    """jaxseg's auxiliary FCNHead (`aux_head`) to torchvision's `aux_classifier`."""
    return (
        *conv_bn_rules("aux_head/block", "aux_classifier.0", "aux_classifier.1"),
        ("aux_head/classifier", "aux_classifier.4"),
    )


def deeplabv3(depth: int, keys: Collection[str]) -> Target:
    """`deeplabv3_resnet{depth}`, with `aux_classifier` when the weights have one."""
    rules = (
        *resnet_rules("backbone/", "backbone."),
        *aspp_rules("classifier.0."),
        *conv_bn_rules("head", "classifier.1", "classifier.2"),
        ("classifier", "classifier.4"),
        *aux_rules(),
    )
    return registered(
        "deeplab_v3",
        rules,
        "classifier.4.weight",
        depth=depth,
        output_stride=8,
        multi_grid=None,
        aux=AUX_CLASSIFIER in keys,
    )


def fcn(depth: int, keys: Collection[str]) -> Target:
    """`fcn_resnet{depth}`, with `aux_classifier` when the weights have one."""
    rules = (
        *resnet_rules("backbone/", "backbone."),
        *conv_bn_rules("head/block", "classifier.0", "classifier.1"),
        ("head/classifier", "classifier.4"),
        *aux_rules(),
    )
    return registered(
        "fcn_resnet", rules, "classifier.4.weight", depth=depth, aux=AUX_CLASSIFIER in keys
    )


ARCHS: dict[str, Callable[[Collection[str]], Target]] = {
    **{f"resnet{depth}": partial(resnet_backbone, depth) for depth in (18, 34, 50, 101, 152)},
    "vgg16": vgg16_backbone,
    "deeplabv3_resnet50": partial(deeplabv3, 50),
    "deeplabv3_resnet101": partial(deeplabv3, 101),
    "fcn_resnet50": partial(fcn, 50),
    "fcn_resnet101": partial(fcn, 101),
}
