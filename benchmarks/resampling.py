"""Adaptive average pooling (PSPNet's pyramid) in PyTorch, as XLA's einsum and as jaxseg's
batched GEMMs (`jaxseg.nn.resize.apply_separable`), forward and forward + input gradient,
alternating in one run.

    python benchmarks/resampling.py [--size 32] [--channels 2048] [--bins 1,2,3,6] [--repeats 7]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch
from timing import median_ms
from torch.nn import functional as F

from jaxseg.nn import adaptive_avg_pool
from jaxseg.nn.pooling import adaptive_pool_matrix


def einsum_pool(x: jax.Array, bins: int) -> jax.Array:
    """The same pooling as two einsums, the form XLA transposes `x` for."""
    rows = jnp.asarray(adaptive_pool_matrix(x.shape[1], bins))
    cols = jnp.asarray(adaptive_pool_matrix(x.shape[2], bins))
    highest = jax.lax.Precision.HIGHEST
    y = jnp.einsum("oh,bhwc->bowc", rows, x, precision=highest)
    return jnp.einsum("pw,bowc->bopc", cols, y, precision=highest)


def jax_fns(x, pool):
    """Forward and forward + input gradient of one pooling, as blocking thunks."""
    forward = jax.jit(pool)
    grad = jax.jit(jax.grad(lambda x: 0.5 * (pool(x) ** 2).sum()))
    return [lambda f=f: jax.block_until_ready(f(x)) for f in (forward, grad)]


def torch_fns(x: np.ndarray, bins: int):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()

    def forward():
        with torch.no_grad():
            F.adaptive_avg_pool2d(xt, bins)

    def grad():
        torch.autograd.grad(0.5 * F.adaptive_avg_pool2d(xt, bins).pow(2).sum(), xt)

    return [forward, grad]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=2048)
    parser.add_argument("--bins", default="1,2,3,6")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    shape = (args.batch, args.size, args.size, args.channels)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    print(f"{'bins':<5} {'part':<9} {'torch ms':>9} {'einsum ms':>10} {'jaxseg ms':>10} "
          f"{'torch/jaxseg':>13}")  # fmt: skip
    for bins in map(int, args.bins.split(",")):
        columns = zip(
            ("forward", "fwd+grad"),
            torch_fns(x, bins),
            jax_fns(jnp.asarray(x), lambda x, b=bins: einsum_pool(x, b)),
            jax_fns(jnp.asarray(x), lambda x, b=bins: adaptive_avg_pool(x, b)),
            strict=True,
        )
        for part, *fns in columns:
            times = [median_ms(f, args.repeats) for f in fns]
            print(f"{bins:<5} {part:<9} {times[0]:>9.2f} {times[1]:>10.2f} {times[2]:>10.2f} "
                  f"{times[0] / times[2]:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
