"""Per-layer cost of the convolutions of a dilated-ResNet train step, in PyTorch, in plain XLA
(`lax.conv_general_dilated`) and in jaxseg's lowering (`jaxseg.nn.lowering`), alternating in one
run: forward, and forward + gradient with respect to the input and to the weights.

The loss is 0.5 * sum(y**2), so every "grad" column includes the forward pass in all three
(a linear loss would let XLA drop the forward from its gradient but not PyTorch).

    python benchmarks/dilated_conv.py [--batch 2] [--repeats 5]
"""

import argparse
import statistics
import time

import jax
import numpy as np
import torch
from torch.nn import functional as F

from jaxseg.nn import lowering

# (name, size, in, out, kernel, stride, dilation, groups): the layers that dominate a ResNet-50
# OS 8 step at 256x256, ASPP's atrous branches, and DeepLab v3+'s depthwise convolutions.
LAYERS = [
    ("layer1 3x3", 64, 64, 64, 3, 1, 1, 1),
    ("layer1 1x1", 64, 256, 64, 1, 1, 1, 1),
    ("layer2 1x1 s2", 64, 256, 512, 1, 2, 1, 1),
    ("layer3 3x3 d2", 32, 256, 256, 3, 1, 2, 1),
    ("layer4 3x3 d4", 32, 512, 512, 3, 1, 4, 1),
    ("layer4 1x1", 32, 512, 2048, 1, 1, 1, 1),
    ("ASPP 3x3 d12", 32, 2048, 256, 3, 1, 12, 1),
    ("ASPP 3x3 d36", 32, 2048, 256, 3, 1, 36, 1),
    ("depthwise 3x3", 64, 256, 256, 3, 1, 1, 256),
]


def median_ms(fn, repeats: int) -> float:
    """Median wall time in ms of `repeats` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1e3 * statistics.median(samples)


def jax_fns(x, w, stride, padding, dilation, groups, mode):
    """Forward, forward + dx, forward + dW of one lowering, as blocking thunks."""

    def conv(x, w):
        with lowering.lowering(mode):
            return lowering.conv2d(
                x, w, stride=(stride,) * 2, padding=[(padding, padding)] * 2,
                dilation=(dilation,) * 2, groups=groups,
            )  # fmt: skip

    def loss(x, w):
        return 0.5 * (conv(x, w) ** 2).sum()

    fns = (jax.jit(conv), jax.jit(jax.grad(loss, 0)), jax.jit(jax.grad(loss, 1)))
    return [lambda f=f: jax.block_until_ready(f(x, w)) for f in fns]


def torch_fns(x, w, stride, padding, dilation, groups):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()

    def conv():
        return F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)

    def forward():
        with torch.no_grad():
            conv()

    def grad(wrt):
        return lambda: torch.autograd.grad(0.5 * conv().pow(2).sum(), wrt)

    return [forward, grad(xt), grad(wt)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'layer':<14} {'part':<13} {'torch ms':>9} {'lax ms':>8} {'jaxseg ms':>10} "
          f"{'torch/jaxseg':>13}")  # fmt: skip
    for name, size, cin, cout, k, stride, dilation, groups in LAYERS:
        x = rng.normal(size=(args.batch, size, size, cin)).astype(np.float32)
        w = (rng.normal(size=(k, k, cin // groups, cout)) * 0.01).astype(np.float32)
        padding = dilation * (k - 1) // 2
        options = (stride, padding, dilation, groups)
        columns = zip(
            ("forward", "fwd+grad x", "fwd+grad w"),
            torch_fns(x, w, *options),
            jax_fns(x, w, *options, "lax"),
            jax_fns(x, w, *options, "auto"),
            strict=True,
        )
        for part, ref, plain, ours in columns:
            times = [median_ms(f, args.repeats) for f in (ref, plain, ours)]
            print(f"{name:<14} {part:<13} {times[0]:>9.1f} {times[1]:>8.1f} {times[2]:>10.1f} "
                  f"{times[0] / times[2]:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
