"""A convolution of a nearest-neighbour upsampled map concatenated with a skip connection
(U-Net's decoder, smp's variant), computed without the upsampled map.

Upsampling by an integer factor f repeats each pixel f x f times, so every output phase
(row mod f, column mod f) of a "same" k x k convolution reads the small map through a kernel
whose taps are summed by the source pixel they land on: f^2 convolutions with
ceil-sized kernels on the small map (for f = 2, k = 3: four 2x2 convolutions, 16 against 36
multiply-adds per small-map pixel), interleaved. The skip's share is an ordinary convolution
with its slice of the kernel, so nothing is concatenated either. Exact up to float rounding.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxseg.nn import lowering
from jaxseg.nn.conv import Conv2d, as_pair, conv_parameters
from jaxseg.nn.resize import resize_nearest


class UpsampledSkip(NamedTuple):
    """`low` nearest-upsampled to `size`, then `skip` (None: none) concatenated after it."""

    low: jax.Array
    size: tuple[int, int]
    skip: jax.Array | None = None

    def concatenated(self) -> jax.Array:
        up = resize_nearest(self.low, self.size)
        return up if self.skip is None else jnp.concatenate([up, self.skip], axis=-1)


def _phase_taps(factor: int, kernel: int, pad: int, phase: int) -> tuple[np.ndarray, int, int]:
    """(taps of the phase kernel, kernel taps) one-hot grouping, and the small map's padding
    before and after, for output positions `phase` mod `factor` along one axis."""
    sources = [(phase + t - pad) // factor for t in range(kernel)]
    first, last = sources[0], sources[-1]
    grouping = np.zeros((last - first + 1, kernel), np.float32)
    grouping[np.array(sources) - first, np.arange(kernel)] = 1.0
    return grouping, -first, last


def conv2d_of_nearest_upsampled(
    x: jax.Array, kernel: jax.Array, factor: tuple[int, int], precision=None
) -> jax.Array:
    """conv2d(x repeated `factor` times along H and W, kernel, "same" padding) as one small
    convolution per output phase (module docstring); odd kernels, stride and dilation 1."""
    (fh, fw), (kh, kw) = factor, kernel.shape[:2]
    rows = [_phase_taps(fh, kh, kh // 2, p) for p in range(fh)]
    cols = [_phase_taps(fw, kw, kw // 2, q) for q in range(fw)]
    phases = []
    for row_taps, top, bottom in rows:
        row = []
        for col_taps, left, right in cols:
            grouping = (jnp.asarray(row_taps, kernel.dtype), jnp.asarray(col_taps, kernel.dtype))
            phase_kernel = jnp.einsum("ak,bl,klio->abio", *grouping, kernel)
            padding = [(top, bottom), (left, right)]
            row.append(lowering.conv2d(x, phase_kernel, padding=padding, precision=precision))
        phases.append(jnp.stack(row, axis=3))
    n, h, w, _, cout = phases[0].shape
    return jnp.stack(phases, axis=2).reshape(n, h * fh, w * fw, cout)


class UpsampledSkipConv2d(Conv2d):
    """A stride-1 "same" Conv2d of an `UpsampledSkip`'s concatenation (its parameters, over
    the concatenated channels), by phases where the upsampling is by an integer factor and
    the skip is narrower than the upsampled input: with both gradients, smp U-Net's last block
    (no skip) 24 against 49 ms, its 128 + 64 -> 64 block at 64x64 37 against 51 ms, but its
    64 + 64 -> 32 block at 128x128 113 against 69 ms (`benchmarks/upsampled_conv.py`)."""

    @nn.compact
    def __call__(self, inputs: UpsampledSkip) -> jax.Array:
        if self.groups != 1:
            raise ValueError("UpsampledSkipConv2d: only groups 1 is supported")
        low, size, skip = inputs
        kh, kw = as_pair(self.kernel_size)
        channels = low.shape[-1] + (0 if skip is None else skip.shape[-1])
        low, kernel, bias = conv_parameters(self, low, (kh, kw, channels, self.features))
        padding = self.explicit_padding()
        factor = tuple(out // small for out, small in zip(size, low.shape[1:3], strict=True))
        by_phases = (
            lowering.mode() != "lax"
            and as_pair(self.stride) == (1, 1)
            and as_pair(self.dilation) == (1, 1)
            and kh % 2 == 1
            and kw % 2 == 1
            and padding == [(kh // 2, kh // 2), (kw // 2, kw // 2)]
            and all(f * s == o for f, s, o in zip(factor, low.shape[1:3], size, strict=True))
            and (skip is None or skip.shape[-1] < low.shape[-1])
        )
        if by_phases:
            split = low.shape[-1]
            y = conv2d_of_nearest_upsampled(low, kernel[:, :, :split], factor, self.precision)
            if skip is not None:
                y = y + lowering.conv2d(
                    skip.astype(kernel.dtype),
                    kernel[:, :, split:],
                    padding=padding,
                    precision=self.precision,
                )
        else:
            y = lowering.conv2d(
                UpsampledSkip(
                    low, size, None if skip is None else skip.astype(low.dtype)
                ).concatenated(),
                kernel,
                stride=as_pair(self.stride),
                padding=padding,
                dilation=as_pair(self.dilation),
                precision=self.precision,
            )
        return y if bias is None else y + bias
