"""Where the CPU time of a dilated-ResNet train step goes: one 3x3 convolution of layer4
(512 channels, 33x33 map of a 257x257 input at output stride 8) forward, input-gradient and
weight-gradient, at dilation 1, 2 and 4, in XLA and in PyTorch, alternating in one run.
The last column times the weight gradient written as im2col patches times the output
gradient (one GEMM), the formulation a CPU-specific custom VJP would use.

    python benchmarks/dilated_conv.py [--channels 512] [--size 33] [--batch 2]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.nn import functional as F


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def jax_fns(x: np.ndarray, w: np.ndarray, dilation: int):
    def conv(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (1, 1), [(dilation, dilation)] * 2, rhs_dilation=(dilation, dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    xj, wj = jnp.asarray(x), jnp.asarray(w)
    forward = jax.jit(conv)
    grad_x = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=0))
    grad_w = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=1))
    def grad_w_gemm(x, w):
        patches = jax.lax.conv_general_dilated_patches(
            x, (3, 3), (1, 1), [(dilation, dilation)] * 2, rhs_dilation=(dilation, dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.einsum("nhwk,nhwo->ko", patches, jnp.ones_like(x[..., : w.shape[-1]]))

    fns = (forward, grad_x, grad_w, jax.jit(grad_w_gemm))
    return [lambda f=f: f(xj, wj).block_until_ready() for f in fns]


def torch_fns(x: np.ndarray, w: np.ndarray, dilation: int):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()

    def forward():
        with torch.no_grad():
            F.conv2d(xt, wt, padding=dilation, dilation=dilation)

    def grad(wrt):
        def run():
            out = F.conv2d(xt, wt, padding=dilation, dilation=dilation).sum()
            torch.autograd.grad(out, wrt)
        return run

    return [forward, grad(xt), grad(wt)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--size", type=int, default=33)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.size, args.size, args.channels)).astype(np.float32)
    w = rng.normal(size=(3, 3, args.channels, args.channels)).astype(np.float32) * 0.01
    print(f"{'dilation':>8} {'part':>12} {'XLA ms':>8} {'torch ms':>9} {'ratio':>6} "
          f"{'GEMM ms':>8}")
    for dilation in (1, 2, 4):
        *fns, gemm = jax_fns(x, w, dilation)
        for part, jf, tf in zip(("forward", "grad input", "grad weight"), fns,
                                torch_fns(x, w, dilation), strict=True):
            ours, ref = median_seconds(jf), median_seconds(tf)
            extra = f" {1e3 * median_seconds(gemm):>8.1f}" if part == "grad weight" else ""
            print(f"{dilation:>8} {part:>12} {1e3 * ours:>8.1f} {1e3 * ref:>9.1f} "
                  f"{ref / ours:>6.2f}{extra}")


if __name__ == "__main__":
    main()
