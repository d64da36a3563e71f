"""Pyramid pooling module of PSPNet (arXiv 1612.01105), configurable for its PyTorch ports."""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import ConvBNAct
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.pooling import adaptive_avg_pool
from jaxseg.nn.resize import resize_bilinear

ModuleDef = Any


class PyramidPooling(nn.Module):
    """Pools the input into `bins` x `bins` grids, 1x1 conv-BN-ReLU each, upsamples, concats.

    Options cover the common implementations: the paper / semseg (input first, BN on every
    branch, align_corners=True) and segmentation_models_pytorch (`input_first=False`,
    `norm_global_bin=False`: the 1x1 bin gets a biased conv without BN). Branch convs are
    named `branch{i}` in `bins` order. `features` defaults to in_channels // len(bins).
    """

    bins: Sequence[int] = (1, 2, 3, 6)
    features: int | None = None
    norm_global_bin: bool = True
    align_corners: bool = True
    input_first: bool = True
    norm: ModuleDef = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        height, width = x.shape[1:3]
        features = x.shape[-1] // len(self.bins) if self.features is None else self.features
        branches = []
        for i, bins in enumerate(self.bins):
            normed = bins != 1 or self.norm_global_bin
            y = adaptive_avg_pool(x, bins)
            y = ConvBNAct(
                features,
                1,
                norm=self.norm if normed else None,
                dtype=self.dtype,
                name=f"branch{i}",
            )(y, train)
            branches.append(resize_bilinear(y, (height, width), self.align_corners))
        parts = [x, *branches] if self.input_first else [*branches, x]
        return jnp.concatenate(parts, axis=-1)
