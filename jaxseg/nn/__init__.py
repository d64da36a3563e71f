"""Building blocks: NHWC linen modules numerically compatible with their PyTorch counterparts."""

from jaxseg.nn.aspp import ASPP, ASPPV2
from jaxseg.nn.conv import Conv2d, ConvBNAct, SeparableConv2d, kaiming_normal_fan_out
from jaxseg.nn.heads import FCNHead
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.ppm import PyramidPooling
from jaxseg.nn.resize import (
    adaptive_avg_pool,
    avg_pool,
    global_avg_pool,
    max_pool,
    resize_bilinear,
)

__all__ = [
    "ASPP",
    "ASPPV2",
    "BatchNorm",
    "Conv2d",
    "ConvBNAct",
    "FCNHead",
    "PyramidPooling",
    "SeparableConv2d",
    "adaptive_avg_pool",
    "avg_pool",
    "global_avg_pool",
    "kaiming_normal_fan_out",
    "max_pool",
    "resize_bilinear",
]
