"""Global convolution and boundary refinement of "Large Kernel Matters" (Peng et al., arXiv
1703.02719): a dense k x k receptive field from two separable branches, and a residual
3x3 block that sharpens score maps near object boundaries.

The paper gives no initialisation; convs start from N(0, 0.01), as was usual for new layers
then: without normalisation, He initialisation makes GCN's cascade of nine boundary
refinements diverge.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import Conv2d, small_normal


class GlobalConv(nn.Module):
    """Sum of a (k x 1 then 1 x k) branch and a (1 x k then k x 1) branch, `features` wide, with
    no nonlinearity: k x k context for O(k) parameters. Spatial size is preserved.

    Convs are `left_kx1`, `left_1xk`, `right_1xk`, `right_kx1`, each with a bias.
    """

    features: int
    kernel_size: int = 15
    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"GlobalConv: kernel_size must be odd, got {self.kernel_size}")
        k = self.kernel_size
        tall, wide = (k, 1), (1, k)

        def conv(shape: tuple[int, int], name: str) -> Conv2d:
            return Conv2d(
                self.features, shape, kernel_init=self.kernel_init, dtype=self.dtype, name=name
            )

        left = conv(wide, "left_1xk")(conv(tall, "left_kx1")(x))
        right = conv(tall, "right_kx1")(conv(wide, "right_1xk")(x))
        return left + right


class BoundaryRefine(nn.Module):
    """x + conv3x3(ReLU(conv3x3(x))): a residual refinement that keeps the width of its input
    (the class scores). Convs are `conv1` and `conv2`, each with a bias."""

    dtype: Any = None
    kernel_init: Callable = small_normal

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = partial(Conv2d, x.shape[-1], 3, kernel_init=self.kernel_init, dtype=self.dtype)
        return x + conv(name="conv2")(nn.relu(conv(name="conv1")(x)))
