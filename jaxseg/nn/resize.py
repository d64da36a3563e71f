"""Resampling and pooling that reproduce PyTorch's index arithmetic exactly.

Resizing and adaptive pooling are separable linear maps, so each is two small static
matrices applied with einsum: cheap, differentiable and free of the antialiasing that
`jax.image.resize` applies when shrinking.
"""

import contextlib
import contextvars
import math
from collections.abc import Iterator

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


def adaptive_pool_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) averaging weights of torch's adaptive pooling bins.

    Bin i covers [floor(i * in / out), ceil((i + 1) * in / out)), so bins may overlap and
    differ in size when `in` is not a multiple of `out`.
    """
    matrix = np.zeros((out_size, in_size), np.float32)
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _apply_separable(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    """Applies `rows` along H and `cols` along W of an NHWC array."""
    rows_j = jnp.asarray(rows, dtype=x.dtype)
    cols_j = jnp.asarray(cols, dtype=x.dtype)
    x = jnp.einsum("oh,bhwc->bowc", rows_j, x, precision=_HIGHEST)
    return jnp.einsum("pw,bowc->bopc", cols_j, x, precision=_HIGHEST)


def resize_bilinear(x: jax.Array, size: IntPair, align_corners: bool = False) -> jax.Array:
    """Bilinear resize of NHWC `x` to `size`, as F.interpolate(mode="bilinear") (no antialias)."""
    out_h, out_w = as_pair(size)
    in_h, in_w = x.shape[1:3]
    if (in_h, in_w) == (out_h, out_w):
        return x
    return _apply_separable(
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


def resize_nearest(x: jax.Array, size: IntPair) -> jax.Array:
    """Nearest-neighbour resize of NHWC `x` to `size`, as F.interpolate(mode="nearest")."""
    out_h, out_w = as_pair(size)
    in_h, in_w = x.shape[1:3]
    x = jnp.take(x, nearest_indices(in_h, out_h), axis=1)
    return jnp.take(x, nearest_indices(in_w, out_w), axis=2)


def adaptive_avg_pool(x: jax.Array, size: IntPair) -> jax.Array:
    """Average pooling of NHWC `x` to `size` bins, as torch.nn.AdaptiveAvgPool2d."""
    out_h, out_w = as_pair(size)
    in_h, in_w = x.shape[1:3]
    return _apply_separable(
        x, adaptive_pool_matrix(in_h, out_h), adaptive_pool_matrix(in_w, out_w)
    )


def _pool_geometry(
    in_size: int, kernel: int, stride: int, padding: int, ceil_mode: bool
) -> tuple[int, int]:
    """torch's pooled length and the extra right padding that ceil_mode windows need."""
    span = in_size + 2 * padding - kernel
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding(span / stride) + 1
    if ceil_mode and (out - 1) * stride >= in_size + padding:
        out -= 1
    extra = max(0, (out - 1) * stride + kernel - (in_size + 2 * padding))
    return out, extra


def _pool_padding(
    x: jax.Array, kernel: IntPair, stride: IntPair | None, padding: IntPair, ceil_mode: bool
) -> tuple[tuple[int, int], tuple[int, int], list[tuple[int, int]], tuple[int, int]]:
    """Window, strides, lax padding spec and per-axis extra padding of a torch-style pool."""
    window = as_pair(kernel)
    strides = as_pair(window if stride is None else stride)
    pads = as_pair(padding)
    extras = tuple(
        _pool_geometry(n, k, s, p, ceil_mode)[1]
        for n, k, s, p in zip(x.shape[1:3], window, strides, pads, strict=True)
    )
    spec = [(0, 0), *((p, p + e) for p, e in zip(pads, extras, strict=True)), (0, 0)]
    return window, strides, spec, extras


_PLANAR_POOLING = contextvars.ContextVar("planar_pooling", default=False)


@contextlib.contextmanager
def planar_pooling() -> Iterator[None]:
    """While tracing inside, pooling windows run over (B * C, H, W) planes instead of NHWC.

    The same numbers; ONNX exporters turn this into a MaxPool/AveragePool onnxruntime accepts
    (a 4-D NHWC window becomes a 4-D pooling kernel, which it rejects).
    """
    token = _PLANAR_POOLING.set(True)
    try:
        yield
    finally:
        _PLANAR_POOLING.reset(token)


def _reduce_window_hw(x: jax.Array, init, op, window, strides, spec) -> jax.Array:
    """`lax.reduce_window` over the H and W axes of NHWC `x` (`spec`: per-axis padding)."""
    if not _PLANAR_POOLING.get():
        return lax.reduce_window(x, init, op, (1, *window, 1), (1, *strides, 1), spec)
    batch, _, _, channels = x.shape
    planes = x.transpose(0, 3, 1, 2).reshape(batch * channels, *x.shape[1:3])
    pooled = lax.reduce_window(planes, init, op, (1, *window), (1, *strides), spec[:3])
    return pooled.reshape(batch, channels, *pooled.shape[1:]).transpose(0, 2, 3, 1)


def max_pool(
    x: jax.Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
) -> jax.Array:
    """NHWC max pooling as torch.nn.MaxPool2d (padding counts as -inf)."""
    window, strides, spec, _ = _pool_padding(x, kernel_size, stride, padding, ceil_mode)
    return _reduce_window_hw(x, -jnp.inf, lax.max, window, strides, spec)


def _window_counts(
    in_size: int, window: int, stride: int, pad: int, extra: int, include_pad: bool
) -> np.ndarray:
    """How many elements torch divides by in each 1-D average-pooling window."""
    valid = np.zeros(in_size + 2 * pad + extra, np.float32)
    if include_pad:
        valid[: in_size + 2 * pad] = 1.0
    else:
        valid[pad : pad + in_size] = 1.0
    starts = np.arange(0, valid.size - window + 1, stride)
    return np.array([valid[s : s + window].sum() for s in starts], np.float32)


def avg_pool(
    x: jax.Array,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    """NHWC average pooling as torch.nn.AvgPool2d, including its divisor rules."""
    window, strides, spec, extras = _pool_padding(x, kernel_size, stride, padding, ceil_mode)
    sums = _reduce_window_hw(x, 0.0, lax.add, window, strides, spec)
    counts = [
        _window_counts(n, k, s, p, e, count_include_pad)
        for n, k, s, p, e in zip(x.shape[1:3], window, strides, as_pair(padding), extras,
                                 strict=True)
    ]
    divisor = np.outer(counts[0], counts[1])[None, :, :, None]
    return sums / jnp.asarray(divisor, dtype=x.dtype)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Mean over H and W keeping them as 1 x 1: AdaptiveAvgPool2d(1) in NHWC."""
    return jnp.mean(x, axis=(1, 2), keepdims=True)

