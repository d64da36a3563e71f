"""Per-layer cost of the convolutions that dominate the model families' steps, in PyTorch, in
plain XLA (`lax.conv_general_dilated`) and in jaxseg's lowering (`jaxseg.nn.lowering`),
alternating in one run: forward, and forward + gradient with respect to the input, to the
weights, and to both (what a train step pays). Each layer set is one family of shapes the
lowering rules were measured on.

The loss is 0.5 * sum(y**2), so every gradient row includes the forward pass in all three
(a linear loss would let XLA drop the forward from its gradient but not PyTorch).

    python benchmarks/conv_layers.py [--sets dilated,full_resolution,unet,large_kernel,
        upsampling,head]
        [--batch 2] [--repeats 5]
"""

import argparse
from typing import NamedTuple

import jax
import numpy as np
import torch
from timing import median_ms
from torch.nn import functional as F

from jaxseg.nn import lowering


class Layer(NamedTuple):
    """One convolution: square `size` input, `kernel` square or (height, width), `padding` on
    every side (None: "same")."""

    name: str
    size: int
    cin: int
    cout: int
    kernel: int | tuple[int, int]
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    padding: int | None = None


LAYER_SETS = {
    # A ResNet-50 OS 8 step at 256x256, ASPP's atrous branches, DeepLab v3+'s depthwise layers.
    "dilated": [
        Layer("layer1 3x3", 64, 64, 64, 3),
        Layer("layer1 1x1", 64, 256, 64, 1),
        Layer("layer2 1x1 s2", 64, 256, 512, 1, stride=2),
        Layer("layer3 3x3 d2", 32, 256, 256, 3, dilation=2),
        Layer("layer4 3x3 d4", 32, 512, 512, 3, dilation=4),
        Layer("layer4 1x1", 32, 512, 2048, 1),
        Layer("ASPP 3x3 d12", 32, 2048, 256, 3, dilation=12),
        Layer("ASPP 3x3 d36", 32, 2048, 256, 3, dilation=36),
        Layer("depthwise 3x3", 64, 256, 256, 3, groups=256),
    ],
    # U-Net's and SegNet's full-resolution layers, GCN's boundary refinement, and VGG's
    # channel-doubling layers on FCN's 100-pixel-padded maps: the weight-gradient rules.
    "full_resolution": [
        Layer("64->64 @256", 256, 64, 64, 3),
        Layer("64->21 @256", 256, 64, 21, 3),
        Layer("32->16 @256", 256, 32, 16, 3),
        Layer("16->16 @256", 256, 16, 16, 3),
        Layer("BR 21->21 @256", 256, 21, 21, 3),
        Layer("conv2_1 @227", 227, 64, 128, 3),
        Layer("conv3_1 @114", 114, 128, 256, 3),
        Layer("conv4_1 @57", 57, 256, 512, 3),
    ],
    # smp's U-Net (ResNet-34) at 256x256: the stem, layer1, and the decoder's blocks at 64 to
    # 256 pixels (upsampled input concatenated with the skip), down to the 16-wide last block.
    "unet": [
        Layer("stem 7x7 s2", 256, 3, 64, 7, stride=2),
        Layer("layer1 @64", 64, 64, 64, 3),
        Layer("dec 192->64 @64", 64, 192, 64, 3),
        Layer("dec 128->32 @128", 128, 128, 32, 3),
        Layer("dec 32->32 @128", 128, 32, 32, 3),
        Layer("dec 32->16 @256", 256, 32, 16, 3),
        Layer("head 16->21 @256", 256, 16, 21, 3),
    ],
    # GCN's large-kernel branches (k = 15) into 21 classes on ResNet-50's four maps.
    "large_kernel": [
        Layer("GCN kx1 @8", 8, 2048, 21, (15, 1)),
        Layer("GCN kx1 @16", 16, 1024, 21, (15, 1)),
        Layer("GCN kx1 @32", 32, 512, 21, (15, 1)),
        Layer("GCN kx1 @64", 64, 256, 21, (15, 1)),
        Layer("GCN 1xk @64", 64, 21, 21, (1, 15)),
    ],
    # The 2x2 phase convolutions of the sub-pixel transposed convolutions (padding grows the
    # map): GCN's 4/2 upsampler to 256x256 and FCN-32s's 64/32 one on its 9x9 score map.
    "upsampling": [
        Layer("GCN 4/2 @128", 128, 21, 84, 2, padding=1),
        Layer("FCN 64/32 @9", 9, 21, 21504, 2, padding=1),
    ],
    # The heads' widest layers: PSPNet's fusion over the backbone's half of the pyramid,
    # DeepLab v2's ASPP branch at rate 6 (2048 inputs, class scores out), VGG's fc6 as a 7x7
    # convolution on FCN's pool5 map and dilated by 4 on the front end's.
    "head": [
        Layer("PSP fuse @32", 32, 2048, 512, 3),
        Layer("ASPPv2 d6 @32", 32, 2048, 21, 3, dilation=6),
        Layer("fc6 7x7 @15", 15, 512, 4096, 7, padding=0),
        Layer("fc6 7x7 d4 @32", 32, 512, 4096, 7, dilation=4),
    ],
}


def jax_fns(x, w, stride, padding, dilation, groups, mode):
    """Forward, forward + dx, forward + dW, forward + both of one lowering, as blocking thunks."""

    def conv(x, w):
        with lowering.lowering(mode):
            return lowering.conv2d(
                x, w, stride=(stride,) * 2, padding=[(p, p) for p in padding],
                dilation=(dilation,) * 2, groups=groups,
            )  # fmt: skip

    def loss(x, w):
        return 0.5 * (conv(x, w) ** 2).sum()

    grads = [jax.jit(jax.grad(loss, wrt)) for wrt in (0, 1, (0, 1))]
    fns = (jax.jit(conv), *grads)
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

    return [forward, grad(xt), grad(wt), grad((xt, wt))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sets", default="dilated", help=f"comma-separated, from {', '.join(LAYER_SETS)}"
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    unknown = set(args.sets.split(",")) - set(LAYER_SETS)
    if unknown:
        choices = ", ".join(LAYER_SETS)
        parser.error(f"--sets: unknown {', '.join(sorted(unknown))}; choose from {choices}")
    rng = np.random.default_rng(0)
    print(f"{'layer':<16} {'part':<13} {'torch ms':>9} {'lax ms':>8} {'jaxseg ms':>10} "
          f"{'torch/jaxseg':>13}")  # fmt: skip
    for name, size, cin, cout, k, stride, dilation, groups, padding in (
        layer for chosen in args.sets.split(",") for layer in LAYER_SETS[chosen]
    ):
        kernel_hw = k if isinstance(k, tuple) else (k, k)
        x = rng.normal(size=(args.batch, size, size, cin)).astype(np.float32)
        w = (rng.normal(size=(*kernel_hw, cin // groups, cout)) * 0.01).astype(np.float32)
        padding = tuple(
            dilation * (side - 1) // 2 if padding is None else padding for side in kernel_hw
        )
        options = (stride, padding, dilation, groups)
        columns = zip(
            ("forward", "fwd+grad x", "fwd+grad w", "fwd+both"),
            torch_fns(x, w, *options),
            jax_fns(x, w, *options, "lax"),
            jax_fns(x, w, *options, "auto"),
            strict=True,
        )
        for part, ref, plain, ours in columns:
            times = [median_ms(f, args.repeats) for f in (ref, plain, ours)]
            print(f"{name:<16} {part:<13} {times[0]:>9.1f} {times[1]:>8.1f} {times[2]:>10.1f} "
                  f"{times[0] / times[2]:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
