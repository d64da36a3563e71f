"""Building blocks: NHWC linen modules numerically compatible with their PyTorch counterparts."""

from jaxseg.nn.aspp import ASPP, ASPPV2
from jaxseg.nn.context import ContextModule
from jaxseg.nn.conv import Conv2d, ConvBNAct, SeparableConv2d, kaiming_normal_fan_out
from jaxseg.nn.gcn import BoundaryRefine, GlobalConv
from jaxseg.nn.heads import FCNHead
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.pooling import (
    adaptive_avg_pool,
    avg_pool,
    global_avg_pool,
    max_pool,
    max_pool_with_argmax,
    max_unpool,
)
from jaxseg.nn.ppm import PyramidPooling
from jaxseg.nn.refine import (
    ChainedResidualPooling,
    MultiResolutionFusion,
    RefineNetBlock,
    ResidualConvUnit,
)
from jaxseg.nn.resize import resize_bilinear
from jaxseg.nn.upsample import ConvTranspose2d, bilinear_kernel_init

__all__ = [
    "ASPP",
    "ASPPV2",
    "BatchNorm",
    "BoundaryRefine",
    "ChainedResidualPooling",
    "ContextModule",
    "Conv2d",
    "ConvBNAct",
    "ConvTranspose2d",
    "FCNHead",
    "GlobalConv",
    "MultiResolutionFusion",
    "PyramidPooling",
    "RefineNetBlock",
    "ResidualConvUnit",
    "SeparableConv2d",
    "adaptive_avg_pool",
    "avg_pool",
    "bilinear_kernel_init",
    "global_avg_pool",
    "kaiming_normal_fan_out",
    "max_pool",
    "max_pool_with_argmax",
    "max_unpool",
    "resize_bilinear",
]
