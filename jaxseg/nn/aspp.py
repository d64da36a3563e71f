"""Atrous spatial pyramid pooling: DeepLab v3's concat form and DeepLab v2's sum form."""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import Conv2d, ConvBNAct, SeparableConv2d
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.pooling import global_avg_pool

ModuleDef = Any


class ASPP(nn.Module):
    """DeepLab v3 ASPP (arXiv 1706.05587): 1x1, atrous 3x3 at `rates`, image pooling; concat,
    then 1x1 projection-BN-ReLU and dropout.

    Branches are `branch0` (1x1), `branch1..n` (rates), `pool` (image pooling) and `project`.
    As torchvision/smp: the pooling branch last, dropout 0.5 by default; `separable=True` makes
    the atrous branches depthwise-separable as in DeepLab v3+. The pooled 1x1 map is
    broadcast back, which equals bilinear upsampling of a single pixel for either
    align_corners setting.
    """

    rates: Sequence[int] = (6, 12, 18)
    features: int = 256
    separable: bool = False
    dropout: float = 0.5
    norm: ModuleDef = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        block = ConvBNAct
        branches = [
            block(self.features, 1, norm=self.norm, dtype=self.dtype, name="branch0")(x, train)
        ]
        atrous_conv = SeparableConv2d if self.separable else Conv2d
        for i, rate in enumerate(self.rates, start=1):
            branches.append(
                block(
                    self.features,
                    3,
                    dilation=rate,
                    conv=atrous_conv,
                    norm=self.norm,
                    dtype=self.dtype,
                    name=f"branch{i}",
                )(x, train)
            )
        pooled = block(self.features, 1, norm=self.norm, dtype=self.dtype, name="pool")(
            global_avg_pool(x), train
        )
        branches.append(jnp.broadcast_to(pooled, branches[0].shape))
        y = jnp.concatenate(branches, axis=-1)
        y = block(self.features, 1, norm=self.norm, dtype=self.dtype, name="project")(y, train)
        return nn.Dropout(self.dropout, deterministic=not train)(y)


class ASPPV2(nn.Module):
    """DeepLab v2 ASPP (arXiv 1606.00915): parallel 3x3 atrous convs with bias straight to
    class scores, fused by summation. Branches are named `branch{i}`."""

    num_classes: int
    rates: Sequence[int] = (6, 12, 18, 24)
    kernel_init: Any = nn.initializers.normal(0.01)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        outputs = [
            Conv2d(
                self.num_classes,
                3,
                dilation=rate,
                kernel_init=self.kernel_init,
                dtype=self.dtype,
                name=f"branch{i}",
            )(x)
            for i, rate in enumerate(self.rates)
        ]
        return sum(outputs[1:], outputs[0])
