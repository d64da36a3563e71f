"""Max pooling that also says where each maximum came from, and the unpooling that puts values
back there: the index-based upsampling of SegNet's decoder (arXiv 1511.00561).

JAX has no max-pool-with-argmax; here each window's candidates are strided slices of the padded
input, so both functions are plain jit-able, differentiable array code. Indices follow
PyTorch's `max_pool2d(return_indices=True)`: per (image, channel) plane, the flat position
`row * W + col` of the maximum in the unpadded input.
"""

import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.nn.conv import IntPair, as_pair
from jaxseg.nn.resize import _pool_padding


def max_pool_with_argmax(
    x: jax.Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """NHWC max pooling as torch.nn.MaxPool2d(return_indices=True): (values, int32 indices).

    Ties go to the first maximum in row-major window order, as in PyTorch. The gradient flows
    to the chosen element only, so it equals `max_pool`'s.
    """
    window, strides, spec, _ = _pool_padding(x, kernel_size, stride, padding, ceil_mode)
    padded = jnp.pad(x, spec, constant_values=jnp.array(-jnp.inf, x.dtype))
    (kh, kw), (sh, sw) = window, strides
    out_h = (padded.shape[1] - kh) // sh + 1
    out_w = (padded.shape[2] - kw) // sw + 1
    batch, channels = x.shape[0], x.shape[3]
    candidates = jnp.stack(
        [
            lax.slice(
                padded,
                (0, i, j, 0),
                (batch, i + sh * (out_h - 1) + 1, j + sw * (out_w - 1) + 1, channels),
                (1, sh, sw, 1),
            )
            for i in range(kh)
            for j in range(kw)
        ],
        axis=-1,
    )
    best = jnp.argmax(candidates, axis=-1)
    values = jnp.take_along_axis(candidates, best[..., None], axis=-1)[..., 0]
    pad_top, pad_left = spec[1][0], spec[2][0]
    rows = (jnp.arange(out_h) * sh - pad_top)[None, :, None, None] + best // kw
    cols = (jnp.arange(out_w) * sw - pad_left)[None, None, :, None] + best % kw
    return values, (rows * x.shape[2] + cols).astype(jnp.int32)


def max_unpool(x: jax.Array, indices: jax.Array, output_size: IntPair) -> jax.Array:
    """NHWC max unpooling as torch.nn.functional.max_unpool2d: a zero map of `output_size`
    (height, width) with each value of `x` written at its flat index from
    `max_pool_with_argmax`. Differentiable in `x`."""
    if x.shape != indices.shape:
        raise ValueError(f"max_unpool: values {x.shape} and indices {indices.shape} differ")
    batch, height, width, channels = x.shape
    out_h, out_w = as_pair(output_size)
    flat_indices = indices.reshape(batch, height * width, channels)
    plane = jnp.arange(batch)[:, None, None]
    channel = jnp.arange(channels)[None, None, :]
    out = jnp.zeros((batch, out_h * out_w, channels), x.dtype)
    out = out.at[plane, flat_indices, channel].set(x.reshape(batch, height * width, channels))
    return out.reshape(batch, out_h, out_w, channels)
