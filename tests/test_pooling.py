"""Max pooling with argmax indices and max unpooling against PyTorch's own operators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn.pooling import max_pool_with_argmax, max_unpool

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tests.torch_reference import from_torch, to_torch  # noqa: E402

# (height, width, kernel, stride, padding, ceil_mode): SegNet's 2x2/2 at odd sizes in both
# rounding modes, DeepLab's overlapping 3x3/2 pad 1, and a stride-1 window.
CASES = [
    (45, 60, 2, 2, 0, True),
    (23, 30, 2, 2, 0, False),
    (17, 11, 2, 2, 0, True),
    (16, 16, 2, 2, 0, False),
    (21, 19, 3, 2, 1, True),
    (20, 13, 3, 2, 1, False),
    (9, 7, 3, 1, 1, False),
]


@pytest.mark.parametrize(("height", "width", "kernel", "stride", "padding", "ceil_mode"), CASES)
def test_pool_and_unpool_match_torch(height, width, kernel, stride, padding, ceil_mode):
    rng = np.random.default_rng(height * width)
    x = rng.normal(size=(2, height, width, 3)).astype(np.float32)
    ref_values, ref_indices = F.max_pool2d(
        to_torch(x), kernel, stride, padding, ceil_mode=ceil_mode, return_indices=True
    )
    pool = jax.jit(lambda a: max_pool_with_argmax(a, kernel, stride, padding, ceil_mode))
    values, indices = pool(x)
    np.testing.assert_array_equal(np.asarray(values), from_torch(ref_values))
    np.testing.assert_array_equal(np.asarray(indices), from_torch(ref_indices))

    if stride == kernel:  # unpooling is defined for non-overlapping windows
        ref_unpooled = F.max_unpool2d(
            ref_values, ref_indices, kernel, stride, padding, output_size=(height, width)
        )
        unpooled = jax.jit(lambda v, i: max_unpool(v, i, kernel, (height, width)))(values, indices)
        np.testing.assert_array_equal(np.asarray(unpooled), from_torch(ref_unpooled))


def test_ties_pick_the_first_maximum_as_torch():
    x = np.zeros((1, 6, 7, 2), np.float32)
    x[0, 2:4, 2:4, 1] = 5.0
    _, ref_indices = F.max_pool2d(to_torch(x), 2, 2, ceil_mode=True, return_indices=True)
    _, indices = max_pool_with_argmax(x, 2, 2, ceil_mode=True)
    np.testing.assert_array_equal(np.asarray(indices), from_torch(ref_indices))


def test_gradients_match_torch():
    """Pool, unpool, weight and sum: the gradient reaches the maxima only, as in torch."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 13, 9, 4)).astype(np.float32)
    weights = rng.normal(size=(2, 13, 9, 4)).astype(np.float32)
    overlap_weights = rng.normal(size=(2, 7, 5, 4)).astype(np.float32)

    def loss(a):
        values, indices = max_pool_with_argmax(a, 2, 2, ceil_mode=True)
        overlapping, _ = max_pool_with_argmax(a, 3, 2, 1, ceil_mode=True)
        unpooled = max_unpool(values, indices, 2, a.shape[1:3])
        return jnp.sum(unpooled * weights) + jnp.sum(overlapping * overlap_weights)

    grad = jax.jit(jax.grad(loss))(x)

    tx = to_torch(x).requires_grad_(True)
    ref_values, ref_indices = F.max_pool2d(tx, 2, 2, ceil_mode=True, return_indices=True)
    ref_unpooled = F.max_unpool2d(ref_values, ref_indices, 2, 2, output_size=(13, 9))
    ref_overlapping = F.max_pool2d(tx, 3, 2, 1, ceil_mode=True)
    ref_loss = (ref_unpooled * to_torch(weights)).sum() + (
        ref_overlapping * to_torch(overlap_weights)
    ).sum()
    ref_loss.backward()
    np.testing.assert_allclose(np.asarray(grad), from_torch(tx.grad), rtol=1e-6, atol=1e-6)


def test_unpool_rejects_mismatched_indices():
    values, indices = max_pool_with_argmax(jnp.ones((1, 4, 4, 2)), 2)
    with pytest.raises(ValueError, match="indices"):
        max_unpool(values, indices[..., :1], 2, (4, 4))
