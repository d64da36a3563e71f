"""Learned upsampling: transposed convolution as torch.nn.ConvTranspose2d, and FCN's bilinear
initialisation for it (arXiv 1411.4038, Sec. 3.3: "upsampling is backwards strided
convolution", initialised to bilinear interpolation and then learned)."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxseg.nn import lowering
from jaxseg.nn.conv import IntPair, as_pair, conv_parameters, kaiming_normal_fan_out


def bilinear_filter(size: int) -> np.ndarray:
    """(size, size) bilinear interpolation weights of a 2-D upsampling kernel (FCN's
    `upsample_filt`): the tent 1 - |i - centre| / factor along each axis, factor = ceil(size/2)."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    tent = 1.0 - np.abs(np.arange(size) - centre) / factor
    return np.outer(tent, tent).astype(np.float32)


def bilinear_kernel_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32):
    """Kernel initialiser (kh, kw, out, in) upsampling each channel to itself bilinearly, zero
    across channels, as FCN's `surgery.interp`. Needs a square kernel and in == out."""
    del key
    kh, kw, features, in_features = shape
    if kh != kw or features != in_features:
        raise ValueError(
            f"bilinear initialisation needs a square kernel and as many outputs as inputs, got "
            f"kernel {kh}x{kw} and {in_features} -> {features} channels"
        )
    kernel = np.zeros(shape, np.float32)
    kernel[:, :, np.arange(features), np.arange(features)] = bilinear_filter(kh)[..., None]
    return jnp.asarray(kernel, dtype)


class ConvTranspose2d(nn.Module):
    """NHWC transposed convolution with torch.nn.ConvTranspose2d's arithmetic: output size
    (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1.

    The kernel is (kh, kw, out, in): a torch weight (in, out, kh, kw) transposed by
    (2, 3, 1, 0), the same transpose as for Conv2d. Parameters: `kernel`, optional `bias`.
    """

    features: int
    kernel_size: IntPair
    stride: IntPair = 1
    padding: IntPair = 0
    output_padding: IntPair = 0
    dilation: IntPair = 1
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = kaiming_normal_fan_out
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kh, kw = as_pair(self.kernel_size)
        x, kernel, bias = conv_parameters(self, x, (kh, kw, self.features, x.shape[-1]))
        y = lowering.conv_transpose2d(
            x,
            kernel,
            stride=as_pair(self.stride),
            padding=as_pair(self.padding),
            output_padding=as_pair(self.output_padding),
            dilation=as_pair(self.dilation),
        )
        if bias is not None:
            y = y + bias
        return y
