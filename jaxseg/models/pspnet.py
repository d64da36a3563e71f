"""PSPNet, "Pyramid Scene Parsing Network" (Zhao et al., arXiv 1612.01105).

Dilated ResNet (output stride 8), pyramid pooling over 1x1, 2x2, 3x3 and 6x6 bins, a 3x3
conv-BN-ReLU fusing the pyramid with the features, dropout 0.1 and a 1x1 classifier;
logits are upsampled bilinearly (align_corners, as the authors' code) to the input size.
Training adds the paper's auxiliary FCN head on stage 4 (`layer3`), weighted 0.4 in the loss.

Deviation: the paper's ResNet uses a deep stem of three 3x3 convs; the default here is
torchvision's 7x7 stem so ImageNet weights from torchvision load, `deep_stem=True` restores it.
"""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.models.common import as_dtype, resnet_backbone, to_input_size
from jaxseg.models.registry import register
from jaxseg.nn import ConvBNAct, FCNHead, PyramidPooling
from jaxseg.nn.conv import Conv2d


class PSPNet(nn.Module):
    """Backbone, pyramid pooling, fusion conv and classifier; returns (logits, aux) in training
    when `aux` is set, else logits, both at the input resolution."""

    backbone: nn.Module
    num_classes: int
    bins: Sequence[int] = (1, 2, 3, 6)
    head_features: int = 512
    dropout: float = 0.1
    aux: bool = True
    align_corners: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False):
        features = self.backbone(images, train)
        x = PyramidPooling(self.bins, align_corners=self.align_corners, dtype=self.dtype,
                           name="ppm")(features["layer4"], train)
        x = ConvBNAct(self.head_features, 3, dtype=self.dtype, name="fuse")(x, train)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = Conv2d(self.num_classes, 1, dtype=self.dtype, name="classifier")(x)
        logits = to_input_size(x, images, self.align_corners)
        if not self.aux or not (train or self.is_initializing()):
            return logits
        aux = FCNHead(self.num_classes, features=self.head_features // 2, dtype=self.dtype,
                      name="aux_head")(features["layer3"], train)
        if not train:  # initialised in eval mode: the auxiliary parameters exist now
            return logits
        return logits, to_input_size(aux, images, self.align_corners)


@register("pspnet")
def pspnet(
    num_classes: int,
    depth: int = 101,
    output_stride: int = 8,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    deep_stem: bool = False,
    bins: tuple[int, ...] = (1, 2, 3, 6),
    head_features: int = 512,
    aux: bool = True,
    dtype: Any = None,
) -> PSPNet:
    """PSPNet on ResNet-`depth`; `width`/`head_features`/`stage_sizes` shrink it for tests."""
    backbone = resnet_backbone(depth, output_stride, width=width, stage_sizes=stage_sizes,
                               deep_stem=deep_stem, dtype=dtype)
    return PSPNet(backbone, num_classes, bins=bins, head_features=head_features, aux=aux,
                  dtype=as_dtype(dtype))
