"""Batch normalisation that reproduces torch.nn.BatchNorm2d in both modes."""

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

_FROZEN = contextvars.ContextVar("frozen_batch_norm", default=False)


@contextlib.contextmanager
def frozen_statistics(frozen: bool = True) -> Iterator[None]:
    """While tracing inside, every `BatchNorm` normalises with its running statistics and leaves
    them unchanged, also in train mode (small-batch fine-tuning; DeepLab's frozen BatchNorm)."""
    token = _FROZEN.set(frozen)
    try:
        yield
    finally:
        _FROZEN.reset(token)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_normalize(
    x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(x - mean) / sqrt(var + epsilon) * scale + bias over every axis but the last, with the
    batch mean and biased variance. Its gradient is the closed form on the saved centred
    input, two reductions and one elementwise pass: fewer passes over the activation than the
    autodiff of the forward, which also materialises the normalised input."""
    return _batch_normalize_fwd(x, scale, bias, epsilon)[0]


def _batch_normalize_fwd(x, scale, bias, epsilon):
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axes)
    centered = x - mean
    var = jnp.mean(jnp.square(centered), axes)
    inv_std = lax.rsqrt(var + epsilon)
    return (centered * inv_std * scale + bias, mean, var), (centered, inv_std, scale)


def _batch_normalize_bwd(epsilon, residuals, cotangents):
    del epsilon
    centered, inv_std, scale = residuals
    dy, dmean, dvar = cotangents
    axes = tuple(range(centered.ndim - 1))
    count = centered.size // centered.shape[-1]
    dbias = jnp.sum(dy, axes)
    # Reducing dy * centered (same shapes) lets XLA fuse the product into the reduction.
    dscale = jnp.sum(dy * centered, axes) * inv_std
    dx = (scale * inv_std) * (dy - dbias / count - centered * (inv_std * dscale / count))
    # The statistics' own cotangents (zero unless a loss reads the running averages).
    dx = dx + (dmean + 2.0 * dvar * centered) / count
    return dx, dscale, dbias


batch_normalize.defvjp(_batch_normalize_fwd, _batch_normalize_bwd)


class BatchNorm(nn.Module):
    """BatchNorm over every axis but the last, numerically as torch.nn.BatchNorm2d.

    Eval normalises with the running statistics. Train normalises with the biased batch
    variance and updates running mean/var with torch's `momentum` (new = (1 - m) * old +
    m * batch) using the *unbiased* variance, as PyTorch does. Statistics are float32 (float64
    for float64 inputs) and taken over the whole (global, when sharded under jit) batch.
    Variables: params {scale, bias}, batch_stats {mean, var}. Running stats are not updated
    during `init`, nor under `frozen_statistics()`.
    """

    use_running_average: bool | None = None
    momentum: float = 0.1
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    scale_init: Callable = nn.initializers.ones_init()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jnp.ndarray, use_running_average: bool | None = None) -> jnp.ndarray:
        use_running_average = (
            nn.merge_param("use_running_average", self.use_running_average, use_running_average)
            or _FROZEN.get()
        )
        features = x.shape[-1]
        running_mean = self.variable(
            "batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32)
        )
        running_var = self.variable(
            "batch_stats", "var", lambda: jnp.ones((features,), jnp.float32)
        )
        x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        scale = (
            self.param("scale", self.scale_init, (features,), self.param_dtype)
            if self.use_scale
            else jnp.ones((features,), x32.dtype)
        )
        bias = (
            self.param("bias", self.bias_init, (features,), self.param_dtype)
            if self.use_bias
            else jnp.zeros((features,), x32.dtype)
        )
        if use_running_average:
            mean, var = running_mean.value, running_var.value
            y = (x32 - mean) * lax.rsqrt(var + self.epsilon) * scale + bias
        else:
            y, mean, var = batch_normalize(x32, scale, bias, self.epsilon)
            if not self.is_initializing():
                count = x.size // features
                unbiased = var * (count / max(count - 1, 1))
                m = self.momentum
                running_mean.value = (1.0 - m) * running_mean.value + m * mean
                running_var.value = (1.0 - m) * running_var.value + m * unbiased
        return y.astype(self.dtype or x.dtype)
