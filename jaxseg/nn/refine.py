"""RefineNet's blocks (Lin et al., arXiv 1611.06612): residual conv unit, multi-resolution
fusion, chained residual pooling, and the RefineNet block that chains them.

None of them uses normalisation. Conv biases follow the authors' released models (only the
first conv of a residual conv unit has one), and so does the initialisation, N(0, 0.01):
without normalisation, He initialisation makes the cascade's activations explode.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import Conv2d, small_normal
from jaxseg.nn.pooling import max_pool
from jaxseg.nn.resize import resize_bilinear


class ResidualConvUnit(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, plus the input: a ResNet block without BatchNorm that
    keeps the width of its input. Convs are `conv1` (with bias) and `conv2`."""

    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        features = x.shape[-1]
        conv = partial(Conv2d, features, 3, kernel_init=self.kernel_init, dtype=self.dtype)
        y = conv(name="conv1")(nn.relu(x))
        y = conv(use_bias=False, name="conv2")(nn.relu(y))
        return x + y


class ChainedResidualPooling(nn.Module):
    """ReLU, then a chain of `stages` blocks (stride-1 max pool, 3x3 conv) whose outputs are all
    added to the input: context from ever larger windows, weighted by learned convs.

    Convs are `conv0..`. The authors' training code defaults to two blocks; their released
    VOC model has four.
    """

    stages: int = 4
    pool_size: int = 5
    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(x)
        path = x
        for i in range(self.stages):
            path = max_pool(path, self.pool_size, 1, self.pool_size // 2)
            path = Conv2d(
                x.shape[-1],
                3,
                use_bias=False,
                kernel_init=self.kernel_init,
                dtype=self.dtype,
                name=f"conv{i}",
            )(path)
            x = x + path
        return x


class MultiResolutionFusion(nn.Module):
    """A 3x3 conv per path to `features` channels, bilinear upsampling to the largest path's
    size, then the sum. A single path passes through untouched. Convs are `conv{i}`."""

    features: int
    align_corners: bool = True
    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, paths: Sequence[jnp.ndarray]) -> jnp.ndarray:
        if len(paths) == 1:
            return paths[0]
        size = max((p.shape[1:3] for p in paths), key=lambda hw: hw[0] * hw[1])
        conv = partial(
            Conv2d, self.features, 3, use_bias=False, kernel_init=self.kernel_init, dtype=self.dtype
        )
        resized = [
            resize_bilinear(conv(name=f"conv{i}")(p), size, self.align_corners)
            for i, p in enumerate(paths)
        ]
        return sum(resized[1:], resized[0])


class RefineNetBlock(nn.Module):
    """`path_units` residual conv units on every input path, fusion to the narrowest path's
    width at the finest path's resolution, chained residual pooling, one output unit.

    Paths are listed coarse first, e.g. (previous block's output, backbone features).
    Submodules: `path{i}_rcu{j}`, `fusion`, `pooling`, `output_rcu`.
    """

    path_units: int = 2
    pooling_stages: int = 4
    align_corners: bool = True
    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, paths: Sequence[jnp.ndarray]) -> jnp.ndarray:
        options = dict(dtype=self.dtype, kernel_init=self.kernel_init)
        refined = []
        for i, x in enumerate(paths):
            for j in range(self.path_units):
                x = ResidualConvUnit(**options, name=f"path{i}_rcu{j}")(x)
            refined.append(x)
        features = min(x.shape[-1] for x in refined)
        x = MultiResolutionFusion(features, self.align_corners, **options, name="fusion")(refined)
        x = ChainedResidualPooling(self.pooling_stages, **options, name="pooling")(x)
        return ResidualConvUnit(**options, name="output_rcu")(x)
