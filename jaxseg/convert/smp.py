"""segmentation_models_pytorch sources (0.5/0.6): U-Net, PSPNet, DeepLab v3 and v3+ on
torchvision-style ResNet encoders.

smp differs from torchvision in ways that change the numbers: its `make_dilated` dilates
every conv of a stage, the first block included; its decoders upsample with
align_corners=True; PSPNet pools `layer2` (encoder depth 3) with the pyramid branches before
the input and an unnormalised 1x1 bin; DeepLab v3+ uses separable convs and ASPP rates
(12, 24, 36) at output stride 16. Default arguments of each smp class are assumed.
"""

from collections.abc import Callable, Collection
from functools import partial

from jaxseg.convert.mapping import (
    Target,
    aspp_rules,
    conv_bn_rules,
    registered,
    resnet_rules,
)

CLASSIFIER = ("classifier", "segmentation_head.0")
CLASSIFIER_WEIGHT = "segmentation_head.0.weight"
ENCODER = resnet_rules("backbone/", "encoder.")
DEEPLABV3PLUS_OPTIONS = dict(
    output_stride=16,
    multi_grid=None,
    rates=(12, 24, 36),
    aspp_conv=True,
    fuse_convs=1,
    dilate_first_block=True,
)
"""jaxseg `deeplab_v3plus` options (all but `depth`) that reproduce `smp.DeepLabV3Plus`."""


def unet(depth: int, keys: Collection[str]) -> Target:
    """`smp.Unet(encoder_name=f"resnet{depth}")`."""
    del keys
    rules = (
        *ENCODER,
        *conv_bn_rules(
            r"block(\d)/convs/(conv[12])", r"decoder.blocks.\1.\2.0", r"decoder.blocks.\1.\2.1"
        ),
        CLASSIFIER,
    )
    return registered("unet", rules, CLASSIFIER_WEIGHT, resnet_depth=depth)


def pspnet(depth: int, keys: Collection[str]) -> Target:
    """`smp.PSPNet(encoder_name=f"resnet{depth}")`: its encoder stops after `layer2`, so the
    weights of `layer3` and `layer4`, which it never runs, are dropped."""
    del keys
    rules = (
        *ENCODER,
        *conv_bn_rules(
            r"ppm/branch(\d)", r"decoder.psp.blocks.\1.pool.1.0", r"decoder.psp.blocks.\1.pool.1.1"
        ),
        *conv_bn_rules("fuse", "decoder.conv.0", "decoder.conv.1"),
        CLASSIFIER,
    )
    return registered(
        "pspnet",
        rules,
        CLASSIFIER_WEIGHT,
        ignore=(r"encoder\.layer[34]\..*",),
        depth=depth,
        output_stride=8,
        num_stages=2,
        aux=False,
        ppm_input_first=False,
        norm_global_bin=False,
        fuse_kernel=1,
        dropout=0.2,
        spatial_dropout=True,
        classifier_kernel=3,
    )


def deeplabv3(depth: int, keys: Collection[str]) -> Target:
    """`smp.DeepLabV3(encoder_name=f"resnet{depth}")`: output stride 8."""
    del keys
    rules = (
        *ENCODER,
        *aspp_rules("decoder.aspp."),
        *conv_bn_rules("head", "decoder.conv", "decoder.bn"),
        CLASSIFIER,
    )
    return registered(
        "deeplab_v3",
        rules,
        CLASSIFIER_WEIGHT,
        depth=depth,
        output_stride=8,
        multi_grid=None,
        rates=(12, 24, 36),
        dilate_first_block=True,
        align_corners=True,
    )


def deeplabv3plus(depth: int, keys: Collection[str]) -> Target:
    """`smp.DeepLabV3Plus(encoder_name=f"resnet{depth}")`: output stride 16."""
    del keys
    rules = (
        *ENCODER,
        *aspp_rules("decoder.aspp.0.", separable=True),
        *conv_bn_rules("aspp_conv", "decoder.aspp.1", "decoder.aspp.2", separable=True),
        *conv_bn_rules("low_level", "decoder.block1.0", "decoder.block1.1"),
        *conv_bn_rules("fuse0", "decoder.block2.0", "decoder.block2.1", separable=True),
        CLASSIFIER,
    )
    return registered(
        "deeplab_v3plus",
        rules,
        CLASSIFIER_WEIGHT,
        depth=depth,
        **DEEPLABV3PLUS_OPTIONS,
    )


ARCHS: dict[str, Callable[[Collection[str]], Target]] = {
    "unet_resnet34": partial(unet, 34),
    "unet_resnet50": partial(unet, 50),
    "pspnet_resnet50": partial(pspnet, 50),
    "pspnet_resnet101": partial(pspnet, 101),
    "deeplabv3_resnet50": partial(deeplabv3, 50),
    "deeplabv3_resnet101": partial(deeplabv3, 101),
    "deeplabv3plus_resnet50": partial(deeplabv3plus, 50),
    "deeplabv3plus_resnet101": partial(deeplabv3plus, 101),
}
