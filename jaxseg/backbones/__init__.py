"""Feature extractors returning a dict of stage features."""

from jaxseg.backbones.resnet import (
    RESNET_DEPTHS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    stage_plan,
)

__all__ = ["RESNET_DEPTHS", "BasicBlock", "Bottleneck", "ResNet", "resnet", "stage_plan"]
