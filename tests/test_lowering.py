"""Every convolution formulation in jaxseg.nn.lowering equals lax's in value and both gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn import lowering

# (height, width, in, out, kernel, stride, padding, dilation, groups): odd sizes, strides,
# atrous rates beyond the map (dropped taps) and near it (tap by tap, also with padding other
# than the rate), 2048-wide inputs (one GEMM for all taps on CPU: dense, or atrous with a
# narrow output; a wide one stays tap by tap), 7x7 stride 1 (tap by tap on CPU: VGG's fc6, plain
# and dilated), padding that grows the map (blocked weight gradient on CPU: 2x2 phase
# convolutions of the sub-pixel upsamplers), depthwise and grouped, the 7x7 stem, 1x1, and
# GCN's long k x 1 and 1 x k kernels (one GEMM for all taps on CPU; kernel and padding given
# as (height, width)), one taller than its map.
CONV_CASES = [
    (5, 6, 3, 4, 2, 1, 1, 1, 1),
    (9, 8, 4, 3, 4, 1, 2, 1, 1),
    (9, 11, 5, 7, 3, 1, 1, 1, 1),
    (11, 9, 5, 4, 3, 1, 6, 6, 1),
    (12, 10, 3, 4, 3, 1, 5, 7, 1),
    (7, 13, 4, 3, 5, 1, 4, 3, 1),
    (5, 6, 4096, 3, 3, 1, 1, 1, 1),
    (7, 6, 2048, 5, 3, 1, 1, 1, 1),
    (8, 8, 2048, 3, 3, 1, 6, 6, 1),
    (8, 8, 2048, 70, 3, 1, 6, 6, 1),
    (9, 11, 5, 7, 3, 2, 1, 1, 1),
    (10, 7, 4, 6, 3, 1, 6, 6, 1),
    (8, 8, 4, 6, 3, 1, 12, 12, 1),
    (5, 5, 3, 3, 3, 1, 9, 9, 1),
    (13, 11, 3, 4, 3, 1, 0, 4, 1),
    (13, 9, 3, 5, 7, 2, 3, 1, 1),
    (11, 9, 3, 5, 7, 1, 0, 1, 1),
    (12, 10, 3, 4, 7, 1, 6, 2, 1),
    (9, 9, 120, 6, 3, 1, 1, 1, 1),
    (9, 9, 4, 4, 3, 1, 2, 2, 4),
    (9, 10, 6, 6, 3, 2, 1, 1, 6),
    (9, 8, 3, 6, 3, 1, 2, 2, 3),
    (12, 12, 4, 4, 3, 1, 5, 5, 4),
    (9, 9, 4, 6, 3, 1, 1, 1, 2),
    (7, 9, 5, 3, 1, 2, 0, 1, 1),
    (7, 9, 5, 3, 1, 1, 1, 1, 1),
    (9, 8, 6, 3, (7, 1), 1, (3, 0), 1, 1),
    (6, 11, 3, 4, (1, 9), 1, (0, 4), 1, 1),
    (5, 6, 5, 3, (15, 1), 1, (7, 0), 1, 1),
]

# (height, width, in, out, kernel, stride, padding, output_padding): FCN's 4/2, 16/8 and 64/32
# upsamplers, U-Net's 2/2, kernels not a multiple of the stride, output padding.
TRANSPOSE_CASES = [
    (5, 6, 3, 4, 4, 2, 1, 0),
    (5, 6, 3, 4, 2, 2, 0, 0),
    (5, 4, 3, 4, 16, 8, 4, 0),
    (4, 5, 3, 2, 64, 32, 16, 0),
    (5, 5, 3, 4, 3, 2, 1, 1),
    (5, 5, 2, 3, 5, 3, 0, 2),
    (6, 6, 2, 3, 3, 1, 1, 0),
]


def max_abs_difference(fn, reference, x, kernel) -> float:
    """Largest |difference| of the outputs and of both vector-Jacobian products."""
    y, vjp = jax.vjp(fn, x, kernel)
    y_ref, vjp_ref = jax.vjp(reference, x, kernel)
    assert y.shape == y_ref.shape
    dy = jnp.asarray(np.random.default_rng(1).normal(size=y.shape))
    pairs = [(y, y_ref), *zip(vjp(dy), vjp_ref(dy), strict=True)]
    return max(float(jnp.abs(a - b).max()) for a, b in pairs)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_equals_lax(case):
    check_conv_case(case)


@pytest.mark.parametrize("block_elements", [1, 2000], ids=["row_blocks", "uneven_blocks"])
@pytest.mark.parametrize("case", [case for case in CONV_CASES if case[-1] == 1], ids=str)
def test_blocked_weight_grad_equals_lax(case, block_elements, monkeypatch):
    """With its threshold at 1, every dense convolution left to XLA takes the blocked weight
    gradient (on CPU, where the tests run): one output row per block, and blocks of several
    rows that do not divide the output."""
    monkeypatch.setattr(lowering, "BLOCKED_WEIGHT_GRAD_MIN_PIXELS", 1)
    monkeypatch.setattr(lowering, "BLOCK_ELEMENTS", block_elements)
    check_conv_case(case)


def test_blocked_weight_grad_only_on_large_maps():
    assert lowering.blocked_weight_grad_pays((256, 256))  # SegNet's and U-Net's first layers
    assert lowering.blocked_weight_grad_pays((227, 227))  # conv2_1 on FCN's padded map
    assert lowering.blocked_weight_grad_pays((64, 64))  # SegNet's conv3
    assert not lowering.blocked_weight_grad_pays((32, 32))  # ResNet's layer4 at OS 8
    assert not lowering.blocked_weight_grad_pays((15, 15))  # FCN's pool5


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU rule")
def test_wide_inputs_and_long_lines_take_one_gemm_for_all_taps(monkeypatch):
    """2048-wide inputs: dense or narrow-output convolutions multiply the input once by all
    taps; a wide output at an atrous rate near the map stays one GEMM per live tap. Long 1-D
    kernels into few outputs (GCN's) take one GEMM for all taps at any input width."""
    chosen = []
    for name in ("output_taps_conv2d", "tapwise_conv2d"):
        monkeypatch.setattr(lowering, name, lambda *a, name=name, **k: chosen.append(name))

    def route(cin, cout, rate, kernel_hw=(3, 3)):
        chosen.clear()
        x, kernel = jnp.ones((1, 8, 8, cin)), jnp.ones((*kernel_hw, cin, cout))
        padding = [(rate * (k - 1) // 2,) * 2 for k in kernel_hw]
        lowering.conv2d(x, kernel, padding=padding, dilation=(rate, rate))
        return chosen[0] if chosen else "lax"

    assert route(2048, 512, 1) == "output_taps_conv2d"  # PSPNet's fusion
    assert route(2048, 21, 6) == "output_taps_conv2d"  # DeepLab v2's ASPP branches
    assert route(2048, 256, 6) == "tapwise_conv2d"  # DeepLab v3's ASPP at a high rate
    assert route(1024, 512, 1) == "lax"
    assert route(256, 21, 1, (15, 1)) == "output_taps_conv2d"  # GCN's k x 1 branch
    assert route(21, 21, 1, (1, 15)) == "output_taps_conv2d"  # and its 1 x k
    assert route(256, 256, 1, (1, 15)) != "output_taps_conv2d"  # a wide output
    assert route(16, 16, 1, (3, 3)) == "lax"  # U-Net's last block: a square kernel


def test_blocked_weight_grad_where_padding_grows_the_map():
    """A 2x2 kernel padded by 1 (a sub-pixel phase convolution) outgrows its input: its CPU
    weight gradient is by blocks; padding within the kernel's reach keeps XLA's convolution."""

    def grows(kernel_hw, padding, dilation) -> bool:
        out_hw = tuple(
            lowering.output_size(9, pad, k, 1, d)
            for pad, k, d in zip(padding, kernel_hw, dilation, strict=True)
        )
        return lowering.grows_the_map((9, 9), out_hw)

    assert grows((2, 2), [(1, 1)] * 2, (1, 1))
    assert grows((1, 15), [(0, 0), (8, 7)], (1, 1))
    assert not grows((3, 3), [(1, 1)] * 2, (1, 1))
    assert not grows((3, 3), [(2, 2)] * 2, (2, 2))
    x, kernel = jnp.ones((1, 9, 9, 2)), jnp.ones((2, 2, 2, 3))
    jaxpr = jax.make_jaxpr(lambda x, k: lowering.conv2d(x, k, padding=[(1, 1)] * 2))(x, kernel)
    expected = "custom_vjp_call" if jax.default_backend() == "cpu" else "conv_general_dilated"
    assert [eqn.primitive.name for eqn in jaxpr.eqns] == [expected]


@pytest.mark.parametrize(
    "h, w, kernel_hw, padding, dilation",
    [
        (12, 9, (3, 3), [(3, 2), (1, 1)], (2, 2)),  # dilated, grows one axis only
        (10, 11, (3, 1), [(5, 0), (0, 0)], (1, 1)),  # the complement crops (-3) at the top
        (7, 8, (2, 2), [(1, 1), (1, 1)], (1, 1)),  # a sub-pixel phase convolution
    ],
)
def test_map_growing_convolution_gradients_equal_lax(h, w, kernel_hw, padding, dilation):
    """The per-tap input gradient of convolutions that grow the map, at asymmetric padding,
    dilation and a complement that crops, against lax in float64."""
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, h, w, 3)))
        kernel = jnp.asarray(rng.normal(size=(*kernel_hw, 3, 4)))

        def auto(x, kernel):
            return lowering.conv2d(x, kernel, padding=padding, dilation=dilation)

        def reference(x, kernel):
            return lowering.lax_conv2d(x, kernel, (1, 1), padding, dilation)

        if jax.default_backend() == "cpu":
            names = [eqn.primitive.name for eqn in jax.make_jaxpr(auto)(x, kernel).eqns]
            assert names == ["custom_vjp_call"], names
        assert max_abs_difference(jax.jit(auto), reference, x, kernel) < 1e-11


def check_conv_case(case) -> None:
    h, w, cin, cout, k, s, p, d, groups = case
    kh, kw = k if isinstance(k, tuple) else (k, k)
    ph, pw = p if isinstance(p, tuple) else (p, p)
    padding = [(ph, ph), (pw, pw)]
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, h, w, cin)))
        kernel = jnp.asarray(rng.normal(size=(kh, kw, cin // groups, cout)))
        options = {"stride": (s, s), "padding": padding, "dilation": (d, d)}

        def auto(x, kernel):
            return lowering.conv2d(x, kernel, groups=groups, **options)

        def reference(x, kernel):
            return lowering.lax_conv2d(x, kernel, (s, s), padding, (d, d), groups)

        assert max_abs_difference(jax.jit(auto), reference, x, kernel) < 1e-11


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_equals_lax(case):
    h, w, cin, cout, k, s, p, extra = case
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, h, w, cin)))
        kernel = jnp.asarray(rng.normal(size=(k, k, cout, cin)))

        def auto(x, kernel):
            return lowering.conv_transpose2d(
                x, kernel, stride=(s, s), padding=(p, p), output_padding=(extra, extra)
            )

        def reference(x, kernel):
            return lowering.lax_conv_transpose2d(x, kernel, (s, s), (p, p), (extra, extra), (1, 1))

        assert max_abs_difference(jax.jit(auto), reference, x, kernel) < 1e-10


def test_drop_padding_taps_reduces_far_atrous_conv_to_its_centre():
    """Rate 36 on an 8x8 map: every off-centre tap reads padding, so one 1x1 tap is left."""
    x, kernel = jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 2))
    _, cropped, padding = lowering.drop_padding_taps(x, kernel, (1, 1), [(36, 36)] * 2, (36, 36))
    assert cropped.shape == (1, 1, 2, 2) and padding == [(0, 0), (0, 0)]


def test_atrous_conv_reading_mostly_padding_is_computed_tap_by_tap():
    """ASPP's rate 24 on a 32x32 map reads padding in 75% of its multiply-adds: no convolution
    is left, only per-tap GEMMs (the exactness cases above cover their value)."""
    x, kernel = jnp.ones((1, 32, 32, 2)), jnp.ones((3, 3, 2, 2))
    assert lowering.live_fraction((32, 32), (3, 3), [(24, 24)] * 2, (24, 24)) == 0.25
    jaxpr = jax.make_jaxpr(
        lambda x, k: lowering.conv2d(x, k, padding=[(24, 24)] * 2, dilation=(24, 24))
    )(x, kernel)
    primitives = [eqn.primitive.name for eqn in jaxpr.eqns]
    assert "conv_general_dilated" not in primitives and primitives.count("dot_general") == 9


def test_seven_by_seven_stride_one_conv_is_computed_tap_by_tap_on_cpu():
    """VGG's fc6 shape (7x7, no padding): one GEMM per tap on CPU, XLA's convolution elsewhere."""
    x, kernel = jnp.ones((1, 9, 9, 2)), jnp.ones((7, 7, 2, 3))
    jaxpr = jax.make_jaxpr(lambda x, k: lowering.conv2d(x, k))(x, kernel)
    primitives = [eqn.primitive.name for eqn in jaxpr.eqns]
    if jax.default_backend() == "cpu":
        assert "conv_general_dilated" not in primitives and primitives.count("dot_general") == 49
    else:
        assert "conv_general_dilated" in primitives


def primitives_of_conv(x, kernel) -> set[str]:
    """Primitives of a freshly traced 1x1 convolution (a new function, so nothing is cached)."""
    jaxpr = jax.make_jaxpr(lambda x, kernel: lowering.conv2d(x, kernel))(x, kernel)
    return {eqn.primitive.name for eqn in jaxpr.eqns}


def test_lax_mode_forces_plain_convolutions(monkeypatch):
    """The environment variable, `configure` and the context manager all select `lax`."""
    x, kernel = jnp.ones((1, 4, 4, 3)), jnp.ones((1, 1, 3, 5))

    assert "dot_general" in primitives_of_conv(x, kernel)
    with lowering.lowering("lax"):
        assert primitives_of_conv(x, kernel) == {"conv_general_dilated"}
    monkeypatch.setenv(lowering.ENV_VAR, "lax")
    assert primitives_of_conv(x, kernel) == {"conv_general_dilated"}
    lowering.configure("auto")
    try:
        assert "dot_general" in primitives_of_conv(x, kernel)
    finally:
        lowering.configure(None)
    monkeypatch.setenv(lowering.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="JAXSEG_CONV_LOWERING='fast'"):
        lowering.mode()
