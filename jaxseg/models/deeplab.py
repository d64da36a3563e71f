"""DeepLab v3, "Rethinking Atrous Convolution for Semantic Image Segmentation" (Chen et al.,
arXiv 1706.05587).

Dilated ResNet with multi-grid rates in the last stage, ASPP (1x1, three 3x3 atrous convs,
image pooling; all with BN) concatenated and projected to 256 channels, then a 1x1
classifier; logits are upsampled bilinearly to the input size. ASPP rates are (6, 12, 18) at
output stride 16 and doubled at output stride 8, as the paper prescribes.

Deviation: `head_conv=True` (default) adds torchvision's extra 3x3 conv-BN-ReLU before the
classifier, so torchvision's DeepLabV3 weights load unchanged; `head_conv=False` is the
paper's head. An auxiliary FCN head on `layer3` (torchvision's `aux_classifier`) is optional.
"""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.models.common import as_dtype, resnet_backbone, to_input_size
from jaxseg.models.registry import register
from jaxseg.nn import ASPP, ConvBNAct, FCNHead
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
        logits = to_input_size(x, images, self.align_corners)
        if not self.aux or not (train or self.is_initializing()):
            return logits
        aux = FCNHead(self.num_classes, dtype=self.dtype, name="aux_head")(features["layer3"], train)
        if not train:  # initialised in eval mode: the auxiliary parameters exist now
            return logits
        return logits, to_input_size(aux, images, self.align_corners)


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """The paper's ASPP rates: (6, 12, 18) at output stride 16, doubled at 8."""
    return tuple(r * 16 // output_stride for r in (6, 12, 18))


@register("deeplab_v3")
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
    dtype: Any = None,
) -> DeepLabV3:
    """DeepLab v3 on ResNet-`depth`; `width`/`aspp_features`/`stage_sizes` shrink it for tests."""
    backbone = resnet_backbone(depth, output_stride, width=width, stage_sizes=stage_sizes,
                               multi_grid=multi_grid, dtype=dtype)
    return DeepLabV3(backbone, num_classes, rates=aspp_rates(output_stride),
                     aspp_features=aspp_features, head_conv=head_conv, aux=aux,
                     dtype=as_dtype(dtype))
