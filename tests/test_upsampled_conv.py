"""A convolution of a nearest-upsampled map and its skip, by phases, equals the plain one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn import Conv2d, lowering
from jaxseg.nn.upsampled_conv import UpsampledSkip, UpsampledSkipConv2d

# (low size, output size, low channels, skip channels (0: none), kernel): smp U-Net's 2x
# blocks with and without a skip, other integer factors per axis, a 5x5 kernel; a skip as
# wide as the upsampled input and a size that is no integer multiple (both the plain
# convolution of the concatenation).
CASES = [
    ((4, 5), (8, 10), 3, 2, 3),
    ((4, 5), (8, 10), 3, 0, 3),
    ((3, 4), (9, 8), 4, 3, 3),
    ((3, 3), (6, 6), 3, 2, 5),
    ((4, 5), (8, 10), 3, 3, 3),
    ((4, 5), (9, 11), 3, 2, 3),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_of_upsampled_skip_equals_conv_of_concatenation(case):
    low_hw, size, low_c, skip_c, k = case
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        low = jnp.asarray(rng.normal(size=(2, *low_hw, low_c)))
        skip = jnp.asarray(rng.normal(size=(2, *size, skip_c))) if skip_c else None
        ours = UpsampledSkipConv2d(4, k, param_dtype=jnp.float64)
        plain = Conv2d(4, k, param_dtype=jnp.float64)
        params = ours.init(jax.random.PRNGKey(0), UpsampledSkip(low, size, skip))

        def by_phases(params, low, skip):
            return ours.apply(params, UpsampledSkip(low, size, skip))

        def reference(params, low, skip):
            return plain.apply(params, UpsampledSkip(low, size, skip).concatenated())

        y, pullback = jax.vjp(by_phases, params, low, skip)
        y_ref, pullback_ref = jax.vjp(reference, params, low, skip)
        cotangent = jnp.asarray(rng.normal(size=y.shape))
        pairs = [(y, y_ref), *zip(pullback(cotangent), pullback_ref(cotangent), strict=True)]
        for a, b in pairs:
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-11), a, b)


def conv_inputs(fn, *args) -> list[tuple[int, ...]]:
    """Input shapes of the convolutions in `fn`'s jaxpr."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    return [e.invars[0].aval.shape for e in convs]


def test_integer_factor_convolves_only_the_small_map():
    """Four 2x2 phase convolutions of the 4x5 map, never one of the 8x10 upsampled map
    (which `lax` mode convolves, for debugging)."""
    low = jnp.ones((1, 4, 5, 3))
    conv = UpsampledSkipConv2d(4, 3, use_bias=False)
    params = conv.init(jax.random.PRNGKey(0), UpsampledSkip(low, (8, 10)))

    def traced(params):  # a new function per call, so no trace is reused across modes
        return conv_inputs(lambda p: conv.apply(p, UpsampledSkip(low, (8, 10))), params)

    assert traced(params) == [(1, 4, 5, 3)] * 4
    with lowering.lowering("lax"):
        assert traced(params) == [(1, 8, 10, 3)]
