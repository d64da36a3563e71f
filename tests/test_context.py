"""The dilated context module: identity initialisation and the receptive field of Table 1 in
Yu and Koltun (arXiv 1511.07122)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn.context import ContextModule

NUM_CLASSES = 3


@pytest.mark.parametrize("variant", ["basic", "large"])
def test_identity_initialisation_passes_rectified_scores_through(variant):
    scores = np.random.default_rng(0).normal(size=(2, 23, 19, NUM_CLASSES)).astype(np.float32)
    module = ContextModule(variant, noise=0.0)
    variables = module.init(jax.random.PRNGKey(0), scores)
    out = jax.jit(module.apply)(variables, scores)
    np.testing.assert_allclose(np.asarray(out), np.maximum(scores, 0), rtol=1e-6, atol=1e-6)


def test_large_module_widens_as_table_1():
    scores = jnp.zeros((1, 8, 8, NUM_CLASSES))
    params = jax.eval_shape(ContextModule("large").init, jax.random.PRNGKey(0), scores)["params"]
    widths = [params[f"layer{i}"]["kernel"].shape[-1] // NUM_CLASSES for i in range(1, 8)]
    assert widths == [2, 2, 4, 8, 16, 32, 32]
    assert params["final"]["kernel"].shape == (1, 1, 32 * NUM_CLASSES, NUM_CLASSES)


def test_receptive_field_is_67_pixels_as_table_1():
    """With positive weights and inputs nothing is rectified away, so the input pixels that
    reach one output pixel are exactly its receptive field."""
    size = 81
    scores = jnp.ones((1, size, size, NUM_CLASSES))
    module = ContextModule("basic", noise=1.0)
    variables = jax.tree.map(jnp.abs, module.init(jax.random.PRNGKey(0), scores))
    centre = size // 2

    def centre_score(x):
        return module.apply(variables, x)[0, centre, centre].sum()

    reached = np.flatnonzero(np.abs(np.asarray(jax.grad(centre_score)(scores))[0, :, centre, 0]))
    assert (reached.min(), reached.max()) == (centre - 33, centre + 33)
    assert reached.size == 67


def test_unknown_variant_is_an_error():
    with pytest.raises(ValueError, match="variant 'huge'"):
        ContextModule("huge").init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 2)))
