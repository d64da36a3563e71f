"""Small segmentation heads shared by several models."""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import Conv2d, ConvBNAct
from jaxseg.nn.norm import BatchNorm

ModuleDef = Any


class FCNHead(nn.Module):
    """3x3 conv-BN-ReLU, dropout, 1x1 classifier with bias: torchvision's FCN head and the
    auxiliary head of PSPNet / DeepLab. `features` defaults to in_channels // 4.

    Submodules: `block` (conv `conv`, norm `bn`) and `classifier`.
    """

    num_classes: int
    features: int | None = None
    dropout: float = 0.1
    norm: ModuleDef = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = x.shape[-1] // 4 if self.features is None else self.features
        x = ConvBNAct(features, 3, norm=self.norm, dtype=self.dtype, name="block")(x, train)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return Conv2d(self.num_classes, 1, dtype=self.dtype, name="classifier")(x)
