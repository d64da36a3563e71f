"""Feature extractors returning a dict of stage features."""

from jaxseg.backbones.resnet import (
    RESNET_DEPTHS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    stage_plan,
)
from jaxseg.backbones.vgg import VGG, VGG16_CONV_NAMES, Grid, vgg16

__all__ = [
    "RESNET_DEPTHS",
    "VGG",
    "VGG16_CONV_NAMES",
    "BasicBlock",
    "Bottleneck",
    "Grid",
    "ResNet",
    "resnet",
    "stage_plan",
    "vgg16",
]
