"""The one place every convolution in jaxseg is lowered to XLA.

`conv2d` and `conv_transpose2d` take PyTorch's arithmetic (explicit symmetric padding, HWIO
kernels) and pick, by backend and static shape, among exact formulations of the same
function: taps that only ever read padding are dropped, atrous convolutions that still read
mostly padding become one GEMM per tap over its live outputs, 1x1 convolutions become GEMMs,
depthwise convolutions become shifted multiply-adds on CPU, and transposed convolutions are
sub-pixel convolutions (no zero-inserted input). Dense k x k convolutions stay XLA's, except
that on CPU 7x7 kernels are one GEMM per tap, 2048-wide inputs are one GEMM for all taps whose
per-tap products are shifted into place (as are GCN's long 1 x k and k x 1 kernels into
few classes), and the weight gradient is one GEMM per block of output rows on maps of 48 x 48
pixels and more and wherever padding makes the output larger than the input (the sub-pixel
phase convolutions). Every formulation equals `lax.conv_general_dilated` in value and both
gradients up to float rounding.
`JAXSEG_CONV_LOWERING=lax` (or `lowering("lax")`, `config.conv_lowering`) forces the plain
`lax` path for debugging and comparison.
"""

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
from jax import lax

MODES = ("auto", "lax")
ENV_VAR = "JAXSEG_CONV_LOWERING"
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
Pair = tuple[int, int]

# Largest share of live multiply-adds (`live_fraction`) at which a stride-1 convolution is
# computed tap by tap: ASPP's rate 24 on a 32x32 map (0.25) is 5x faster so, rate 12 (0.56) 2x,
# while layer4's rate 4 (0.84) is faster as one convolution.
TAPWISE_MAX_LIVE = 0.6
# Input width from which a stride-1 convolution on CPU multiplies the input once by every tap's
# kernel (`output_taps_conv2d`) when it is dense (live share above TAPWISE_MAX_LIVE) or its
# output at most OUTPUT_TAPS_NARROW wide (`benchmarks/conv_layers.py --sets head`, forward and
# both gradients against XLA's convolution): PSPNet's 2048 -> 512 3x3 fusion on a 32x32 map 337
# against 521 ms, DeepLab v2's 2048 -> 21 ASPP branch at rate 6 22 against 60 ms. A 256-wide
# output at rate 12 stays tap by tap on the input.
OUTPUT_TAPS_MIN_CHANNELS = 2048
OUTPUT_TAPS_NARROW = 64
# Taps from which a one-dimensional (1 x k or k x 1) kernel with at most OUTPUT_TAPS_NARROW
# outputs multiplies the input once by every tap's kernel on CPU, whatever the input width:
# GCN's 15-tap branches into 21 classes, forward and both gradients, 256 -> 21 on a 64x64 map
# 27 against 74 ms, 1024 -> 21 on 16x16 7.5 against 19.5 ms, 21 -> 21 on 64x64 4.1 against
# 9.2 ms (`benchmarks/conv_layers.py --sets large_kernel`).
OUTPUT_TAPS_MIN_LINE = 7
# Kernel taps from which a stride-1 convolution is computed tap by tap on CPU: VGG's 7x7 fc6
# (512 -> 4096) on FCN's 15x15 pool5 map takes 463 against 805 ms forward and 1127 against 2126
# ms with both gradients; dilated by 4 on the front end's 32x32 map 1.9 against 2.8 s forward
# (with both gradients even, 7.4 against 7.6 s).
TAPWISE_MIN_TAPS_ON_CPU = 49
# Output pixels per image from which a dense convolution's CPU weight gradient is a GEMM per
# block of output rows (`blocked_weight_grad`) instead of XLA's, which makes the batch the
# innermost dimension of a convolution (`benchmarks/conv_layers.py --sets full_resolution`).
BLOCKED_WEIGHT_GRAD_MIN_PIXELS = 48 * 48
# Elements of one block's im2col (4 MiB in float32): small enough to stay in cache between
# being written and being multiplied, large enough that each GEMM runs at full speed.
BLOCK_ELEMENTS = 2**20

_scoped_modes: list[str] = []
_configured_mode: list[str] = []


def _checked(name: str, source: str) -> str:
    if name not in MODES:
        raise ValueError(f"{source}={name!r} is not a convolution lowering; use one of {MODES}")
    return name


def mode() -> str:
    """The lowering in force: the innermost `lowering(...)` block, else the one `configure`
    set, else $JAXSEG_CONV_LOWERING, else "auto"."""
    if _scoped_modes:
        return _scoped_modes[-1]
    if _configured_mode:
        return _configured_mode[0]
    return _checked(os.environ.get(ENV_VAR) or "auto", ENV_VAR)


def configure(name: str | None) -> None:
    """Sets the process's lowering (`config.conv_lowering`); None defers to the environment."""
    _configured_mode.clear()
    if name is not None:
        _configured_mode.append(_checked(name, "config.conv_lowering"))


@contextlib.contextmanager
def lowering(name: str) -> Iterator[None]:
    """Traces the convolutions inside the block with lowering `name` ("auto" or "lax")."""
    _scoped_modes.append(_checked(name, "lowering"))
    try:
        yield
    finally:
        _scoped_modes.pop()


def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def output_size(size: int, pad: Pair, k: int, stride: int, dilation: int) -> int:
    """Length of a convolution's output along one axis, as torch computes it."""
    return (size + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def lax_conv2d(
    x: jax.Array,
    kernel: jax.Array,
    stride: Pair,
    padding: Sequence[Pair],
    dilation: Pair,
    groups: int = 1,
    precision=None,
) -> jax.Array:
    """The reference: `lax.conv_general_dilated` in NHWC/HWIO with explicit padding."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=stride,
        padding=list(padding),
        rhs_dilation=dilation,
        dimension_numbers=_DIMENSIONS,
        feature_group_count=groups,
        precision=precision,
    )


def drop_padding_taps(
    x: jax.Array, kernel: jax.Array, stride: Pair, padding: Sequence[Pair], dilation: Pair
) -> tuple[jax.Array, jax.Array, list[Pair]]:
    """Removes kernel taps that read only padding at every output position (exact).

    Atrous convolutions with rates near or beyond the feature map (ASPP at 12/24/36 on a 32x32
    map) mostly multiply zeros; the live taps form a contiguous range per axis, so the kernel
    and the padding shrink to it. Returns the cropped (x, kernel, padding).
    """
    new_padding, crops = [], []
    for axis in (0, 1):
        size, k = x.shape[1 + axis], kernel.shape[axis]
        lo, hi = padding[axis]
        s, d = stride[axis], dilation[axis]
        out = output_size(size, (lo, hi), k, s, d)
        if out <= 0:  # an empty output: nothing to drop, lax reports or returns it as is
            return x, kernel, list(padding)
        # Tap t reads padded rows o*s + t*d for o in [0, out); live if any lands in the image.
        live = [t for t in range(k) if t * d < lo + size and (out - 1) * s + t * d >= lo]
        first, last = live[0], live[-1]
        new_lo = lo - first * d
        new_hi = (out - 1) * s + (last - first) * d + 1 - new_lo - size
        crops.append((first, last + 1))
        new_padding.append((new_lo, new_hi))
    (t0, t1), (u0, u1) = crops
    if (t1 - t0, u1 - u0) == kernel.shape[:2]:
        return x, kernel, list(padding)
    kernel = kernel[t0:t1, u0:u1]
    # A negative pad means the first live tap starts inside the image: crop instead.
    crop = [(max(-lo, 0), max(-hi, 0)) for lo, hi in new_padding]
    if any(any(c) for c in crop):
        (a0, a1), (b0, b1) = crop
        x = x[:, a0 : x.shape[1] - a1, b0 : x.shape[2] - b1]
        new_padding = [(max(lo, 0), max(hi, 0)) for lo, hi in new_padding]
    return x, kernel, new_padding


def _padded(x: jax.Array, padding: Sequence[Pair]) -> jax.Array:
    if not any(lo or hi for lo, hi in padding):
        return x
    return jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))


def _taps(x: jax.Array, kernel_hw: Pair, stride: Pair, dilation: Pair, out_hw: Pair):
    """The shifted, strided views of padded `x` that each kernel tap reads, row-major taps."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel_hw, stride, dilation, out_hw
    n, c = x.shape[0], x.shape[-1]
    return [
        lax.slice(
            x,
            (0, i * dh, j * dw, 0),
            (n, i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1, c),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def _out_hw(x, kernel, stride, padding, dilation) -> Pair:
    return tuple(
        output_size(x.shape[1 + a], padding[a], kernel.shape[a], stride[a], dilation[a])
        for a in (0, 1)
    )


def pointwise_conv2d(x, kernel, stride, padding, precision=None) -> jax.Array:
    """1x1 convolution as a GEMM over channels (stride: subsample first)."""
    x = _padded(x, padding)
    if stride != (1, 1):
        x = x[:, :: stride[0], :: stride[1]]
    return _matmul_over_channels(x, kernel[0, 0], precision)


def _matmul_over_channels(x: jax.Array, weight: jax.Array, precision=None) -> jax.Array:
    """x @ weight over the last axis, as a 2-D GEMM: a 4-D contraction's weight gradient (over
    N, H and W) makes XLA copy an operand into a transposed layout, with its producers fused in,
    while the 2-D one is a single transposed-operand GEMM."""
    y = lax.dot_general(
        x.reshape(-1, x.shape[-1]), weight, (((1,), (0,)), ((), ())), precision=precision
    )
    return y.reshape(*x.shape[:-1], weight.shape[-1])


def depthwise_conv2d(x, kernel, stride, padding, dilation) -> jax.Array:
    """Depthwise k x k convolution as k*k shifted per-channel multiply-adds (one fusion); a
    channel multiplier m repeats each input channel m times (grouped outputs are contiguous)."""
    out_hw = _out_hw(x, kernel, stride, padding, dilation)
    if kernel.shape[-1] != x.shape[-1]:
        x = jnp.repeat(x, kernel.shape[-1] // x.shape[-1], axis=-1)
    taps = _taps(_padded(x, padding), kernel.shape[:2], stride, dilation, out_hw)
    weights = kernel.reshape(-1, kernel.shape[-1])
    return functools.reduce(jnp.add, [tap * weights[i] for i, tap in enumerate(taps)])


def _live_output_range(size: int, out: int, offset: int) -> Pair:
    """Output positions o in [lo, hi) whose input o + offset lies inside an axis of `size`."""
    return max(0, -offset), min(out, size - offset)


def live_fraction(x_hw: Pair, kernel_hw: Pair, padding: Sequence[Pair], dilation: Pair) -> float:
    """Share of a stride-1 convolution's multiply-adds that read the image, not padding (1 for
    an empty output, which is left to lax)."""
    out = [output_size(x_hw[a], padding[a], kernel_hw[a], 1, dilation[a]) for a in (0, 1)]
    if min(out) <= 0:
        return 1.0
    share = 1.0
    for a in (0, 1):
        ranges = [
            _live_output_range(x_hw[a], out[a], t * dilation[a] - padding[a][0])
            for t in range(kernel_hw[a])
        ]
        share *= sum(max(hi - lo, 0) for lo, hi in ranges) / (kernel_hw[a] * out[a])
    return share


def _sum_live_taps(x, kernel, padding, dilation, product):
    """Sum over the taps of stride-1 `kernel` on `x` of `product(tap, rows, cols)` (that tap's
    contribution from the input window it reads inside the image) padded into place; taps
    that read only padding are skipped."""
    (_, h, w, _), (kh, kw) = x.shape, kernel.shape[:2]
    oh, ow = _out_hw(x, kernel, (1, 1), padding, dilation)
    total = None
    for i in range(kh):
        r = i * dilation[0] - padding[0][0]
        o0, o1 = _live_output_range(h, oh, r)
        for j in range(kw):
            c = j * dilation[1] - padding[1][0]
            p0, p1 = _live_output_range(w, ow, c)
            if o1 <= o0 or p1 <= p0:
                continue
            part = product(i * kw + j, slice(o0 + r, o1 + r), slice(p0 + c, p1 + c))
            part = jnp.pad(part, ((0, 0), (o0, oh - o1), (p0, ow - p1), (0, 0)))
            total = part if total is None else total + part
    return total


def tapwise_conv2d(x, kernel, padding, dilation, precision=None) -> jax.Array:
    """Stride-1 convolution as one GEMM per tap over only the outputs whose input that tap
    finds inside the image, each padded into place and summed.

    An atrous rate near the feature map's size (ASPP's 12/24 on a 32x32 map) makes most of a
    dense convolution's multiply-adds read padding; here they are never computed.
    """
    kh, kw, cin, cout = kernel.shape
    # Split, not indexed: the kernel's gradient is then one concatenation of the per-tap
    # gradients, not a sum of kernel-sized zero-padded ones (FCN's 7x7 fc6 with both
    # gradients on CPU: 2.5 -> 0.96 s).
    weights = lax.split(kernel.reshape(kh * kw, cin, cout), [1] * (kh * kw))

    def product(tap, rows, cols):
        return _matmul_over_channels(x[:, rows, cols], weights[tap][0], precision)

    return _sum_live_taps(x, kernel, padding, dilation, product)


def output_taps_conv2d(x, kernel, padding, dilation, precision=None) -> jax.Array:
    """Stride-1 convolution as one GEMM of the input with every tap's kernel side by side,
    whose per-tap products are then shifted into place and summed: the wide input is read
    once, and both gradients are one GEMM each as well."""
    kh, kw, cin, cout = kernel.shape
    side_by_side = kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
    products = _matmul_over_channels(x, side_by_side, precision)
    # Split, not indexed, for the same reason as in `tapwise_conv2d`.
    per_tap = lax.split(products, [cout] * (kh * kw), axis=3)

    def product(tap, rows, cols):
        return per_tap[tap][:, rows, cols]

    return _sum_live_taps(x, kernel, padding, dilation, product)


def output_taps_pays(in_features: int, out_features: int, kernel_hw: Pair, live: float) -> bool:
    """Whether a stride-1 convolution is faster on CPU as one GEMM for all taps
    (`output_taps_conv2d`): 2048-wide inputs when dense or with a narrow output, and long
    one-dimensional kernels with a narrow output (GCN's)."""
    narrow = out_features <= OUTPUT_TAPS_NARROW
    wide_input = in_features >= OUTPUT_TAPS_MIN_CHANNELS and (live > TAPWISE_MAX_LIVE or narrow)
    long_line = min(kernel_hw) == 1 and max(kernel_hw) >= OUTPUT_TAPS_MIN_LINE and narrow
    return wide_input or long_line


def blocked_weight_grad_pays(out_hw: Pair) -> bool:
    """Whether a dense convolution's weight gradient is faster by blocks of output rows on CPU:
    on maps of 48 x 48 and more (SegNet, U-Net, VGG, GCN's refinements: 1.1-4x), not on
    ResNet's 32 x 32 deep layers, where XLA's is as fast."""
    return out_hw[0] * out_hw[1] >= BLOCKED_WEIGHT_GRAD_MIN_PIXELS


def grows_the_map(in_hw: Pair, out_hw: Pair) -> bool:
    """Whether a convolution's output is larger than its input along some axis (padding beyond
    the kernel's reach). XLA's CPU weight gradient of such a stride-1 convolution is 3-40x
    slower than `blocked_weight_grad`: with both gradients, the 2x2 phase convolution of GCN's
    4/2 upsampler at 128x128 (21 -> 84) takes 175 against 47 ms, FCN-32s's 64/32 upsampler (21
    -> 21504 on 9x9) 596 against 41 ms, a 2x2 256 -> 1024 one on 32x32 5.8 against 0.14 s."""
    return any(out > size for size, out in zip(in_hw, out_hw, strict=True))


def _map_growing_input_grad(kernel, padding, dilation, precision, dy) -> jax.Array:
    """Input gradient of a stride-1 convolution whose padding grows the map: the convolution of
    `dy` with the flipped, transposed kernel and the complementary padding (negative: a crop),
    tap by tap. With the forward pass, XLA's takes 38 against 27 ms on GCN's 4/2 upsampler and
    56 against 43 ms on FCN-32s's (`benchmarks/conv_layers.py --sets upsampling`)."""
    (kh, kw, _, _), (dh, dw) = kernel.shape, dilation
    flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)
    reach = (dh * (kh - 1), dw * (kw - 1))
    complement = [(r - lo, r - hi) for r, (lo, hi) in zip(reach, padding, strict=True)]
    return tapwise_conv2d(dy, flipped, complement, dilation, precision)


def blocked_weight_grad(x, dy, kernel_hw, stride, padding, dilation, precision=None):
    """A convolution's weight gradient as a sum over blocks of output rows (all images at once)
    of dy^T @ im2col, each block's im2col built right before its GEMM (a scan over blocks).

    XLA's CPU weight gradient is a convolution over the batch, which it packs innermost; a
    whole-map im2col is too large to stay in cache. Rows past the output (to fill the last
    block) have zero gradient, so they add nothing.
    """
    (kh, kw), sh, dh = kernel_hw, stride[0], dilation[0]
    n, oh, ow, cout = dy.shape
    cin = x.shape[-1]
    rows = min(oh, max(1, round(BLOCK_ELEMENTS / (n * ow * kh * kw * cin))))
    blocks = -(-oh // rows)
    dy = jnp.pad(dy, ((0, 0), (0, blocks * rows - oh), (0, 0), (0, 0)))
    span = (rows - 1) * sh + (kh - 1) * dh + 1  # padded input rows one block reads
    xp = _padded(x, padding)
    short = (blocks - 1) * rows * sh + span - xp.shape[1]
    xp = jnp.pad(xp, ((0, 0), (0, max(short, 0)), (0, 0), (0, 0)))
    contract = (((0,), (0,)), ((), ()))
    accumulate = jnp.promote_types(dy.dtype, jnp.float32)  # bf16 steps sum in float32

    def add_block(total, block):
        window = lax.dynamic_slice_in_dim(xp, block * rows * sh, span, axis=1)
        cols = jnp.concatenate(_taps(window, (kh, kw), stride, dilation, (rows, ow)), axis=-1)
        grad = lax.dynamic_slice_in_dim(dy, block * rows, rows, axis=1)
        product = lax.dot_general(
            grad.reshape(-1, cout),
            cols.reshape(-1, kh * kw * cin),
            contract,
            precision=precision,
            preferred_element_type=accumulate,
        )
        return total + product, None

    start = jnp.zeros((cout, kh * kw * cin), accumulate)
    total, _ = lax.scan(add_block, start, jnp.arange(blocks))
    return total.T.reshape(kh, kw, cin, cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _blocked_weight_grad_conv(x, kernel, stride, padding, dilation, precision):
    return lax_conv2d(x, kernel, stride, padding, dilation, precision=precision)


def _blocked_weight_grad_fwd(x, kernel, stride, padding, dilation, precision):
    y = lax_conv2d(x, kernel, stride, padding, dilation, precision=precision)
    return y, (x, kernel)


def _blocked_weight_grad_bwd(stride, padding, dilation, precision, residuals, dy):
    """The weight gradient by blocks of output rows; the input gradient XLA's, or tap by tap
    where the convolution grows the map (`_map_growing_input_grad`)."""
    x, kernel = residuals
    if tuple(stride) == (1, 1) and grows_the_map(x.shape[1:3], dy.shape[1:3]):
        dx = _map_growing_input_grad(kernel, padding, dilation, precision, dy)
    else:
        (dx,) = jax.linear_transpose(
            lambda v: lax_conv2d(v, kernel, stride, padding, dilation, precision=precision), x
        )(dy)
    dw = blocked_weight_grad(x, dy, kernel.shape[:2], stride, padding, dilation, precision)
    return dx, dw.astype(kernel.dtype)


_blocked_weight_grad_conv.defvjp(_blocked_weight_grad_fwd, _blocked_weight_grad_bwd)


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    stride: Pair = (1, 1),
    padding: Sequence[Pair] = ((0, 0), (0, 0)),
    dilation: Pair = (1, 1),
    groups: int = 1,
    precision=None,
) -> jax.Array:
    """NHWC convolution with HWIO `kernel`, lowered by the rules in this module's docstring."""
    padding = [tuple(p) for p in padding]
    if mode() == "lax":
        return lax_conv2d(x, kernel, stride, padding, dilation, groups, precision)
    x, kernel, padding = drop_padding_taps(x, kernel, stride, padding, dilation)
    kh, kw, k_in, cout = kernel.shape
    oh, ow = _out_hw(x, kernel, stride, padding, dilation)
    if groups == 1 and (kh, kw) == (1, 1):
        return pointwise_conv2d(x, kernel, stride, padding, precision)
    if groups > 1 and k_in == 1 and groups == x.shape[-1] and _on_cpu():
        return depthwise_conv2d(x, kernel, stride, padding, dilation)
    if groups == 1 and tuple(stride) == (1, 1) and min(oh, ow) > 0:  # empty: left to lax
        live = live_fraction(x.shape[1:3], (kh, kw), padding, dilation)
        if _on_cpu() and output_taps_pays(k_in, cout, (kh, kw), live):
            return output_taps_conv2d(x, kernel, padding, dilation, precision)
        if live <= TAPWISE_MAX_LIVE or (kh * kw >= TAPWISE_MIN_TAPS_ON_CPU and _on_cpu()):
            return tapwise_conv2d(x, kernel, padding, dilation, precision)
    batch = x.shape[0]  # symbolic when exported with a polymorphic batch: left to lax
    if (
        groups == 1
        and _on_cpu()
        and isinstance(batch, int)
        and (
            blocked_weight_grad_pays((oh, ow))
            or (tuple(stride) == (1, 1) and grows_the_map(x.shape[1:3], (oh, ow)))
        )
    ):
        return _blocked_weight_grad_conv(
            x, kernel, tuple(stride), tuple(map(tuple, padding)), tuple(dilation), precision
        )
    return lax_conv2d(x, kernel, stride, padding, dilation, groups, precision)


def lax_conv_transpose2d(x, kernel, stride, padding, output_padding, dilation) -> jax.Array:
    """The reference: torch.nn.ConvTranspose2d as `lax.conv_transpose` of a (kh, kw, out, in)
    kernel, padded by dilation * (k - 1) - padding (+ output_padding at the end)."""
    kh, kw = kernel.shape[:2]
    pads = [
        (d * (k - 1) - p, d * (k - 1) - p + extra)
        for k, p, d, extra in zip((kh, kw), padding, dilation, output_padding, strict=True)
    ]
    return lax.conv_transpose(
        x,
        kernel,
        stride,
        pads,
        rhs_dilation=dilation,
        dimension_numbers=_DIMENSIONS,
        transpose_kernel=True,
    )


def subpixel_conv_transpose2d(x, kernel, stride, padding, output_padding) -> jax.Array:
    """Transposed convolution as a convolution with stride**2 times the outputs followed by
    depth-to-space: output phase r of the s-strided result is an ordinary convolution of the
    input with the kernel's taps r, r + s, ... (flipped). No zeros are inserted into the input,
    so no multiply is wasted (XLA's lhs-dilated form and its gradients are slow on CPU and GPU).
    """
    (kh, kw, out, cin), (sh, sw) = kernel.shape, stride
    jh, jw = -(-kh // sh), -(-kw // sw)
    w = jnp.swapaxes(kernel, 2, 3)
    w = jnp.pad(w, ((0, jh * sh - kh), (0, jw * sw - kw), (0, 0), (0, 0)))
    w = w.reshape(jh, sh, jw, sw, cin, out)[::-1, :, ::-1]
    w = w.transpose(0, 2, 4, 1, 3, 5).reshape(jh, jw, cin, sh * sw * out)
    z = conv2d(x, w, padding=((jh - 1, jh - 1), (jw - 1, jw - 1)))
    n, mh, mw, _ = z.shape
    z = z.reshape(n, mh, mw, sh, sw, out).transpose(0, 1, 3, 2, 4, 5)
    z = z.reshape(n, mh * sh, mw * sw, out)
    sizes = [
        (size - 1) * s - 2 * p + k + extra
        for size, s, p, k, extra in zip(
            x.shape[1:3], stride, padding, (kh, kw), output_padding, strict=True
        )
    ]
    short = [
        max(p + size - full, 0) for p, size, full in zip(padding, sizes, z.shape[1:3], strict=True)
    ]
    z = jnp.pad(z, ((0, 0), (0, short[0]), (0, short[1]), (0, 0)))
    return z[:, padding[0] : padding[0] + sizes[0], padding[1] : padding[1] + sizes[1]]


def conv_transpose2d(
    x: jax.Array,
    kernel: jax.Array,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    output_padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
) -> jax.Array:
    """torch.nn.ConvTranspose2d on NHWC `x` with a (kh, kw, out, in) kernel; sub-pixel form
    unless dilated or the lowering is forced to `lax`."""
    if mode() == "lax" or dilation != (1, 1):
        return lax_conv_transpose2d(x, kernel, stride, padding, output_padding, dilation)
    return subpixel_conv_transpose2d(x, kernel, stride, padding, output_padding)
