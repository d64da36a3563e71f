"""Train-mode BatchNorm, forward and both gradients: jaxseg's closed-form gradient against the
autodiff of the same forward pass and against torch.nn.functional.batch_norm.

    python benchmarks/batch_norm.py [--batch 2] [--repeats 10]

The shapes are the seed networks' widest activations: U-Net's and SegNet's full-resolution
layers, a ResNet's stem and its OS 8 stages. Times are medians in ms after one warm-up call.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch
from timing import median_ms
from torch.nn import functional as F

from jaxseg import host_memory
from jaxseg.nn import norm

# (label, square size, channels)
SHAPES = [
    ("SegNet/U-Net 64 @256", 256, 64),
    ("U-Net decoder 16 @256", 256, 16),
    ("ResNet stem 64 @128", 128, 64),
    ("SegNet 256 @64", 64, 256),
    ("ResNet OS8 1024 @32", 32, 1024),
    ("ResNet OS8 2048 @32", 32, 2048),
]
EPSILON = 1e-5


def jax_step(normalize, x, scale, bias, dy):
    """A blocking thunk: forward and the gradients of x, scale and bias for cotangent `dy`."""

    def step(x, scale, bias, dy):
        (y, mean, var), pullback = jax.vjp(
            lambda *args: normalize(*args, EPSILON), x, scale, bias
        )
        return pullback((dy, jnp.zeros_like(mean), jnp.zeros_like(var)))

    compiled = jax.jit(step)
    return lambda: jax.block_until_ready(compiled(x, scale, bias, dy))


def torch_step(x, scale, bias, dy):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    st = torch.from_numpy(scale).requires_grad_()
    bt = torch.from_numpy(bias).requires_grad_()
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())
    mean, var = torch.zeros(len(scale)), torch.ones(len(scale))

    def step():
        y = F.batch_norm(xt, mean, var, st, bt, training=True, eps=EPSILON)
        torch.autograd.grad(y, (xt, st, bt), dyt)

    return step


def autodiff_normalize(x, scale, bias, epsilon):
    """The same forward pass as `norm.batch_normalize`, differentiated by JAX."""
    return norm._batch_normalize_fwd(x, scale, bias, epsilon)[0]


def main() -> None:
    host_memory.keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'activation':<24} {'torch ms':>9} {'autodiff ms':>12} {'jaxseg ms':>10} "
          f"{'autodiff/jaxseg':>16}")  # fmt: skip
    for label, size, channels in SHAPES:
        shape = (args.batch, size, size, channels)
        x = rng.normal(1.0, 2.0, size=shape).astype(np.float32)
        dy = rng.normal(size=shape).astype(np.float32)
        scale = rng.uniform(0.5, 2.0, channels).astype(np.float32)
        bias = rng.normal(size=channels).astype(np.float32)
        steps = (
            torch_step(x, scale, bias, dy),
            jax_step(autodiff_normalize, x, scale, bias, dy),
            jax_step(norm.batch_normalize, x, scale, bias, dy),
        )
        times = [median_ms(step, args.repeats) for step in steps]
        print(f"{label:<24} {times[0]:>9.2f} {times[1]:>12.2f} {times[2]:>10.2f} "
              f"{times[1] / times[2]:>16.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
