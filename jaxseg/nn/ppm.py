"""Pyramid pooling module of PSPNet (arXiv 1612.01105), configurable for its PyTorch ports."""

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from jaxseg.nn import lowering
from jaxseg.nn.conv import Conv2d, ConvBNAct, as_pair, conv_parameters
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.pooling import adaptive_avg_pool
from jaxseg.nn.resize import bilinear_matrix, resize_bilinear

ModuleDef = Any


class Pyramid(NamedTuple):
    """The pyramid before concatenation: in channel order, the full-size input and the pooled
    branches, each still small; `concatenated()` is what PyramidPooling returns by default."""

    parts: tuple[jax.Array, ...]
    size: tuple[int, int]
    align_corners: bool

    def concatenated(self) -> jax.Array:
        resized = [resize_bilinear(p, self.size, self.align_corners) for p in self.parts]
        return jnp.concatenate(resized, axis=-1)


class PyramidPooling(nn.Module):
    """Pools the input into `bins` x `bins` grids, 1x1 conv-BN-ReLU each, upsamples, concats.

    Options cover the common implementations: the paper / semseg (input first, BN on every
    branch, align_corners=True) and segmentation_models_pytorch (`input_first=False`,
    `norm_global_bin=False`: the 1x1 bin gets a biased conv without BN). Branch convs are
    named `branch{i}` in `bins` order. `features` defaults to in_channels // len(bins).
    `concatenate=False` returns the `Pyramid` unconcatenated, for `PyramidFusionConv2d`.
    """

    bins: Sequence[int] = (1, 2, 3, 6)
    features: int | None = None
    norm_global_bin: bool = True
    align_corners: bool = True
    input_first: bool = True
    concatenate: bool = True
    norm: ModuleDef = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray | Pyramid:
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
            branches.append(y)
        parts = (x, *branches) if self.input_first else (*branches, x)
        pyramid = Pyramid(parts, (height, width), self.align_corners)
        return pyramid.concatenated() if self.concatenate else pyramid


class PyramidFusionConv2d(Conv2d):
    """A stride-1 Conv2d of a `Pyramid`'s concatenation, equal to it up to float rounding, that
    never convolves the upsampled branches: by linearity, the convolution of a bilinear
    upsampling is the sum over taps of the tap-shifted upsampling of (small map @ tap weights).
    PSPNet's 3x3 fusion of 2048 + 4 x 512 channels so costs a 2048-channel convolution.
    Parameters are Conv2d's, over the concatenated channels.
    """

    @nn.compact
    def __call__(self, pyramid: Pyramid) -> jnp.ndarray:
        if as_pair(self.stride) != (1, 1) or self.groups != 1:
            raise ValueError("PyramidFusionConv2d: only stride 1 and groups 1 are supported")
        if lowering.mode() == "lax":
            pyramid = Pyramid((pyramid.concatenated(),), pyramid.size, pyramid.align_corners)
        kh, kw = as_pair(self.kernel_size)
        channels = sum(part.shape[-1] for part in pyramid.parts)
        full = next(p for p in pyramid.parts if p.shape[1:3] == pyramid.size)
        _, kernel, bias = conv_parameters(self, full, (kh, kw, channels, self.features))
        padding = self.explicit_padding()
        dilation = as_pair(self.dilation)
        total, start = None, 0
        for part in pyramid.parts:
            weights = kernel[:, :, start : start + part.shape[-1]].astype(part.dtype)
            start += part.shape[-1]
            if part.shape[1:3] == pyramid.size:
                y = lowering.conv2d(
                    part, weights, padding=padding, dilation=dilation, precision=self.precision
                )
            else:
                y = _conv_of_upsampled(part, weights, pyramid, padding, dilation)
            total = y if total is None else total + y
        return total if bias is None else total + bias


def _shifted_bilinear(size, out, small, k, pad, d, align_corners) -> np.ndarray:
    """(k, out, small): row t maps output o to the upsampled position o + t*d - pad, zero where
    that lies in the padding (the upsampling matrix shifted per kernel tap)."""
    upsample = bilinear_matrix(small, size, align_corners)
    shifted = np.zeros((k, out, small), np.float32)
    for t in range(k):
        rows = np.arange(out) + t * d - pad
        inside = (rows >= 0) & (rows < size)
        shifted[t, inside] = upsample[rows[inside]]
    return shifted


def _conv_of_upsampled(small, weights, pyramid: Pyramid, padding, dilation) -> jax.Array:
    """conv2d(resize_bilinear(small, pyramid.size), weights) without the full-size input."""
    (kh, kw), (h, w) = weights.shape[:2], pyramid.size
    oh = lowering.output_size(h, padding[0], kh, 1, dilation[0])
    ow = lowering.output_size(w, padding[1], kw, 1, dilation[1])
    rows = _shifted_bilinear(
        h, oh, small.shape[1], kh, padding[0][0], dilation[0], pyramid.align_corners
    )
    cols = _shifted_bilinear(
        w, ow, small.shape[2], kw, padding[1][0], dilation[1], pyramid.align_corners
    )
    per_tap = jnp.einsum("nhwc,ijcf->nhwijf", small, weights, precision=lax.Precision.HIGHEST)
    return jnp.einsum(
        "ioh,jpw,nhwijf->nopf",
        jnp.asarray(rows, small.dtype),
        jnp.asarray(cols, small.dtype),
        per_tap,
        precision=lax.Precision.HIGHEST,
    )
