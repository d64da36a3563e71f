"""PyramidFusionConv2d equals Conv2d on the pyramid's concatenation in value and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn import Conv2d
from jaxseg.nn.ppm import Pyramid, PyramidFusionConv2d, PyramidPooling


@pytest.mark.parametrize(
    ("kernel", "dilation", "padding", "align_corners", "input_first"),
    [
        (3, 1, None, True, True),
        (3, 2, 1, False, False),
        (1, 1, None, True, False),
        (5, 1, 3, False, True),
    ],
    ids=str,
)
def test_fusion_equals_conv_of_concatenation(kernel, dilation, padding, align_corners, input_first):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, 9, 11, 5)))
        ppm = PyramidPooling(
            (1, 2, 3, 6),
            features=3,
            align_corners=align_corners,
            input_first=input_first,
            concatenate=False,
            norm=None,
        )
        ppm_vars = ppm.init(jax.random.PRNGKey(0), x)
        options = dict(features=4, kernel_size=kernel, dilation=dilation, padding=padding)
        fusion, conv = PyramidFusionConv2d(**options), Conv2d(**options)
        pyramid = ppm.apply(ppm_vars, x)
        variables = fusion.init(jax.random.PRNGKey(1), pyramid)
        assert jax.tree.map(jnp.shape, variables) == jax.tree.map(
            jnp.shape, conv.init(jax.random.PRNGKey(1), pyramid.concatenated())
        )

        def fused(v, x):
            return fusion.apply(v, ppm.apply(ppm_vars, x))

        def reference(v, x):
            return conv.apply(v, ppm.apply(ppm_vars, x).concatenated())

        y, vjp = jax.vjp(fused, variables, x)
        y_ref, vjp_ref = jax.vjp(reference, variables, x)
        assert y.shape == y_ref.shape
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12)
        dy = jnp.asarray(rng.normal(size=y.shape))
        for got, want in zip(jax.tree.leaves(vjp(dy)), jax.tree.leaves(vjp_ref(dy)), strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-11)


def test_fusion_refuses_strides():
    x = jnp.ones((1, 4, 4, 2))
    pyramid = Pyramid((x, jnp.ones((1, 1, 1, 2))), (4, 4), True)
    with pytest.raises(ValueError, match="stride 1"):
        PyramidFusionConv2d(features=2, stride=2).init(jax.random.PRNGKey(0), pyramid)
