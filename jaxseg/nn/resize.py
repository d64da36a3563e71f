"""Resampling that reproduces PyTorch's index arithmetic exactly.

Bilinear resizing is a separable linear map, so it is two small static matrices applied with
einsum: cheap, differentiable and free of the antialiasing that `jax.image.resize` applies when
shrinking.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.nn.conv import IntPair, as_pair

_HIGHEST = lax.Precision.HIGHEST


def bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    """(out, in) float32 weights of torch's 1-D linear interpolation for a target size."""
    out_idx = np.arange(out_size, dtype=np.float32)
    if align_corners:
        scale = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0)
        src = out_idx * scale
    else:
        scale = np.float32(in_size) / np.float32(out_size)
        src = np.maximum((out_idx + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0))
    low = np.minimum(src.astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (src - low.astype(np.float32)).astype(np.float32)
    matrix = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), np.float32(1) - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def apply_separable(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    """Applies `rows` (out, H) along H and `cols` (out, W) along W of an NHWC array: the one
    step of every separable resampling, resizing here and adaptive pooling in `pooling`.

    XLA lowers the einsum by transposing `x` so that the contracted axis is innermost; where
    neither axis grows (pooling) that transpose costs more than the products, so there each
    axis is a batched GEMM that reads `x` in place (PSPNet's pyramid on 2048 channels at 32x32:
    0.4-0.9 against 4-6 ms per bin size, `benchmarks/resampling.py`)."""
    rows_j = jnp.asarray(rows, dtype=x.dtype)
    cols_j = jnp.asarray(cols, dtype=x.dtype)
    if rows.shape[0] <= rows.shape[1] and cols.shape[0] <= cols.shape[1]:
        return _matrix_along(_matrix_along(x, rows_j, 1), cols_j, 2)
    x = jnp.einsum("oh,bhwc->bowc", rows_j, x, precision=_HIGHEST)
    return jnp.einsum("pw,bowc->bopc", cols_j, x, precision=_HIGHEST)


def _matrix_along(x: jax.Array, matrix: jax.Array, axis: int) -> jax.Array:
    """`matrix` (out, in) applied along `axis` of `x` as a GEMM per index of the axes before
    it, whose operand is the (in, rest) row-major block of `x` as it lies in memory."""
    lead, size = x.shape[:axis], x.shape[axis]
    blocks = x.reshape(-1, size, int(np.prod(x.shape[axis + 1 :])))  # the batch may be symbolic
    matrices = jnp.broadcast_to(matrix, (blocks.shape[0], *matrix.shape))
    dims = (((2,), (1,)), ((0,), (0,)))
    y = lax.dot_general(matrices, blocks, dims, precision=_HIGHEST)
    return y.reshape(*lead, matrix.shape[0], *x.shape[axis + 1 :])


def resize_bilinear(x: jax.Array, size: IntPair, align_corners: bool = False) -> jax.Array:
    """Bilinear resize of NHWC `x` to `size`, as F.interpolate(mode="bilinear") (no antialias)."""
    out_h, out_w = as_pair(size)
    in_h, in_w = x.shape[1:3]
    if (in_h, in_w) == (out_h, out_w):
        return x
    return apply_separable(
        x,
        bilinear_matrix(in_h, out_h, align_corners),
        bilinear_matrix(in_w, out_w, align_corners),
    )


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output position in torch's legacy "nearest" mode.

    floor(i * scale) with scale = in / out computed in float32, clamped to the last index.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _nearest_along(x: jax.Array, axis: int, out_size: int) -> jax.Array:
    """One axis of `resize_nearest`: a repeat where every source index is repeated equally
    often (integer upsampling; its gradient is a sum, not XLA's slow scatter), else a gather."""
    in_size = x.shape[axis]
    indices = nearest_indices(in_size, out_size)
    factor = out_size // in_size
    if factor >= 1 and np.array_equal(indices, np.arange(out_size) // factor):
        return jnp.repeat(x, factor, axis=axis, total_repeat_length=out_size)
    return jnp.take(x, indices, axis=axis)


def resize_nearest(x: jax.Array, size: IntPair) -> jax.Array:
    """Nearest-neighbour resize of NHWC `x` to `size`, as F.interpolate(mode="nearest")."""
    out_h, out_w = as_pair(size)
    return _nearest_along(_nearest_along(x, 1, out_h), 2, out_w)
