"""The context module of "Multi-Scale Context Aggregation by Dilated Convolutions" (Yu and
Koltun, arXiv 1511.07122, Sec. 3 and Table 1).

Seven 3x3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1, each followed by ReLU, then a 1x1
convolution, on C class-score channels. The basic module keeps C channels throughout; the large
one widens to 2C, 2C, 4C, 8C, 16C, 32C, 32C. Weights start as the paper's identity
initialisation (its eq. 5), so the module first passes its (rectified) input through unchanged.

Deviation: the paper's Caffe code pads the input once by reflection and uses unpadded
convolutions; here each convolution zero-pads dilation * (k - 1) / 2, so any input size works.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxseg.nn.conv import Conv2d

DILATIONS = (1, 1, 2, 4, 8, 16, 1)
WIDENING = {"basic": (1, 1, 1, 1, 1, 1, 1), "large": (2, 2, 4, 8, 16, 32, 32)}
"""Each 3x3 layer's output channels as multiples of C, per variant (Table 1)."""
DEFAULT_NOISE = {"basic": 0.0, "large": 1e-3}
"""Std of the initial perturbation per variant; the paper asks for sigma << C / c_out only."""


def identity_init(num_classes: int, noise: float = 0.0) -> Callable:
    """The paper's eq. 5 for a (kh, kw, c_in, c_out) kernel: C / c_out at the centre tap from
    input a to output b when floor(a C / c_in) == floor(b C / c_out), plus N(0, noise^2)
    everywhere. With equal widths this is the identity."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        kh, kw, in_features, features = shape
        groups_in = np.arange(in_features) * num_classes // in_features
        groups_out = np.arange(features) * num_classes // features
        kernel = np.zeros(shape, np.float32)
        kernel[kh // 2, kw // 2] = (groups_in[:, None] == groups_out[None, :]) * (
            num_classes / features
        )
        return jnp.asarray(kernel, dtype) + noise * jax.random.normal(key, shape, dtype)

    return init


class ContextModule(nn.Module):
    """Dilated context aggregation over class scores (B, H, W, C) -> (B, H, W, C).

    `variant` is "basic" or "large"; `noise` is the std of the initial perturbation (None:
    `DEFAULT_NOISE`; the large module needs some, or its copies of each channel stay equal).
    Layers: `layer1`..`layer7` (3x3) and `final` (1x1), all with bias.
    """

    variant: str = "basic"
    noise: float | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.variant not in WIDENING:
            raise ValueError(
                f"context module variant {self.variant!r}: expected one of {sorted(WIDENING)}"
            )
        num_classes = x.shape[-1]
        noise = DEFAULT_NOISE[self.variant] if self.noise is None else self.noise
        kernel_init = identity_init(num_classes, noise)
        for i, (dilation, multiple) in enumerate(
            zip(DILATIONS, WIDENING[self.variant], strict=True), start=1
        ):
            x = Conv2d(
                multiple * num_classes,
                3,
                dilation=dilation,
                kernel_init=kernel_init,
                dtype=self.dtype,
                name=f"layer{i}",
            )(x)
            x = nn.relu(x)
        return Conv2d(num_classes, 1, kernel_init=kernel_init, dtype=self.dtype, name="final")(x)
