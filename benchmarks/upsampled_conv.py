"""smp U-Net's decoder convolutions (nearest 2x upsampling, concatenated skip, 3x3 conv) in
PyTorch, as jaxseg's plain convolution of the concatenation, and by phases on the small map
(`jaxseg.nn.upsampled_conv`), forward and forward + all gradients, alternating in one run.

    python benchmarks/upsampled_conv.py [--batch 2] [--repeats 5]
"""

import argparse

import jax
import numpy as np
import torch
from timing import median_ms
from torch.nn import functional as F

from jaxseg import host_memory
from jaxseg.nn import Conv2d
from jaxseg.nn.upsampled_conv import UpsampledSkip, UpsampledSkipConv2d

# (name, small map side, low channels, skip channels, output channels) at 256x256 input.
BLOCKS = [
    ("block1 @32", 16, 256, 128, 128),
    ("block2 @64", 32, 128, 64, 64),
    ("block3 @128", 64, 64, 64, 32),
    ("block4 @256", 128, 32, 0, 16),
]


def jax_fns(module, to_input, params, low, skip):
    """Forward and forward + gradients of params and inputs, as blocking thunks."""

    def forward(params, low, skip):
        return module.apply(params, to_input(low, skip))

    grad = jax.grad(lambda *a: 0.5 * (forward(*a) ** 2).sum(), (0, 1, 2))
    compiled = [jax.jit(f) for f in (forward, grad)]
    return [lambda f=f: jax.block_until_ready(f(params, low, skip)) for f in compiled]


def torch_fns(low: np.ndarray, skip: np.ndarray | None, weight: np.ndarray):
    low_t = torch.from_numpy(low.transpose(0, 3, 1, 2).copy()).requires_grad_()
    skip_t = None if skip is None else torch.from_numpy(skip.transpose(0, 3, 1, 2).copy())
    weight_t = torch.from_numpy(weight.transpose(3, 2, 0, 1).copy()).requires_grad_()

    def conv():
        x = F.interpolate(low_t, scale_factor=2, mode="nearest")
        x = x if skip_t is None else torch.cat([x, skip_t], 1)
        return F.conv2d(x, weight_t, padding=1)

    def forward():
        with torch.no_grad():
            conv()

    def grad():
        torch.autograd.grad(0.5 * conv().pow(2).sum(), (low_t, weight_t))

    return [forward, grad]


def main() -> None:
    host_memory.keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'block':<12} {'part':<9} {'torch ms':>9} {'concat ms':>10} {'phases ms':>10} "
          f"{'torch/phases':>13}")  # fmt: skip
    for name, side, low_c, skip_c, out_c in BLOCKS:
        size = (2 * side, 2 * side)
        low = rng.normal(size=(args.batch, side, side, low_c)).astype(np.float32)
        skip = rng.normal(size=(args.batch, *size, skip_c)).astype(np.float32) if skip_c else None
        ours = UpsampledSkipConv2d(out_c, 3, use_bias=False)
        params = ours.init(jax.random.PRNGKey(0), UpsampledSkip(low, size, skip))
        weight = np.asarray(params["params"]["kernel"])
        columns = zip(
            ("forward", "fwd+grad"),
            torch_fns(low, skip, weight),
            jax_fns(
                Conv2d(out_c, 3, use_bias=False),
                lambda low, skip, size=size: UpsampledSkip(low, size, skip).concatenated(),
                params, low, skip,
            ),
            jax_fns(ours, lambda low, skip, size=size: UpsampledSkip(low, size, skip),
                    params, low, skip),
            strict=True,
        )  # fmt: skip
        for part, *fns in columns:
            times = [median_ms(f, args.repeats) for f in fns]
            print(f"{name:<12} {part:<9} {times[0]:>9.1f} {times[1]:>10.1f} {times[2]:>10.1f} "
                  f"{times[0] / times[2]:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
