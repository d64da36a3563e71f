"""Building blocks against their PyTorch counterparts at odd sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import nn as jnn
from jaxseg.nn import lowering
from jaxseg.nn.resize import resize_nearest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tests.torch_reference import from_torch, to_torch  # noqa: E402


@pytest.fixture
def features():
    return np.random.default_rng(0).normal(size=(2, 13, 17, 3)).astype(np.float32)


@pytest.mark.parametrize("size", [(29, 35), (7, 5), (13, 40), (1, 1), (13, 9)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_bilinear_matches_interpolate(features, size, align_corners):
    ours = jnn.resize_bilinear(jnp.asarray(features), size, align_corners)
    ref = F.interpolate(to_torch(features), size=size, mode="bilinear", align_corners=align_corners)
    np.testing.assert_allclose(ours, from_torch(ref), atol=1e-5)


@pytest.mark.parametrize("size", [(26, 34), (39, 51), (13, 34), (29, 35), (7, 5)])
def test_resize_nearest_and_its_gradient_match_interpolate(features, size):
    """Integer factors (a repeat), mixed and fractional ones (a gather), down and up."""
    cotangent = np.random.default_rng(1).normal(size=(2, *size, 3)).astype(np.float32)
    ours, pullback = jax.vjp(lambda x: resize_nearest(x, size), jnp.asarray(features))
    inputs = to_torch(features).requires_grad_()
    ref = F.interpolate(inputs, size=size, mode="nearest")
    ref.backward(to_torch(cotangent))
    np.testing.assert_array_equal(ours, from_torch(ref.detach()))
    np.testing.assert_allclose(pullback(jnp.asarray(cotangent))[0], from_torch(inputs.grad),
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("bins", [1, 2, 3, 6, (4, 7)])
def test_adaptive_avg_pool_and_its_gradient_match_torch(features, bins):
    """Shrinking on both axes: each axis a batched GEMM (`resize.apply_separable`)."""
    ours, pullback = jax.vjp(lambda x: jnn.adaptive_avg_pool(x, bins), jnp.asarray(features))
    cotangent = np.random.default_rng(1).normal(size=ours.shape).astype(np.float32)
    inputs = to_torch(features).requires_grad_()
    ref = F.adaptive_avg_pool2d(inputs, bins)
    ref.backward(to_torch(cotangent))
    np.testing.assert_allclose(ours, from_torch(ref.detach()), atol=1e-6)
    np.testing.assert_allclose(pullback(jnp.asarray(cotangent))[0], from_torch(inputs.grad),
                               atol=1e-6)  # fmt: skip


@pytest.mark.parametrize(
    "kernel,stride,padding,ceil_mode",
    [(3, 2, 1, False), (2, 2, 0, True), (3, 2, 0, True), (3, 1, 1, False), (5, 3, 2, True)],
)
def test_max_pool_matches_torch(features, kernel, stride, padding, ceil_mode):
    ours = jnn.max_pool(jnp.asarray(features), kernel, stride, padding, ceil_mode)
    ref = F.max_pool2d(to_torch(features), kernel, stride, padding, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(ours, from_torch(ref))


@pytest.mark.parametrize("conv_lowering", ["auto", "lax"])
@pytest.mark.parametrize(
    "kernel,stride,padding,ceil_mode",
    [
        (3, 2, 1, False),
        (2, 2, 0, True),
        (3, 1, 1, False),
        (5, 1, 2, False),
        ((2, 3), (1, 2), (1, 0), True),
    ],
)
def test_max_pool_gradient_picks_torchs_element_among_ties(
    conv_lowering, kernel, stride, padding, ceil_mode
):
    # Rectified small integers: most windows hold several equal maxima (zeros above all).
    rng = np.random.default_rng(3)
    x = np.maximum(rng.integers(-3, 3, size=(2, 9, 11, 3)), 0).astype(np.float32)
    with lowering.lowering(conv_lowering):
        y, vjp = jax.vjp(lambda v: jnn.max_pool(v, kernel, stride, padding, ceil_mode), x)
    dy = rng.normal(size=y.shape).astype(np.float32)
    torch_x = to_torch(x).requires_grad_()
    torch_y = F.max_pool2d(torch_x, kernel, stride, padding, ceil_mode=ceil_mode)
    torch_y.backward(to_torch(dy))
    np.testing.assert_array_equal(y, from_torch(torch_y.detach()))
    np.testing.assert_allclose(vjp(jnp.asarray(dy))[0], from_torch(torch_x.grad), atol=1e-6)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_matches_torch(features, ceil_mode, count_include_pad):
    ours = jnn.avg_pool(jnp.asarray(features), 3, 2, 1, ceil_mode, count_include_pad)
    ref = F.avg_pool2d(
        to_torch(features), 3, 2, 1, ceil_mode=ceil_mode, count_include_pad=count_include_pad
    )
    np.testing.assert_allclose(ours, from_torch(ref), atol=1e-6)


@pytest.mark.parametrize(
    "kernel,stride,dilation,groups",
    [(7, 2, 1, 1), (3, 2, 1, 1), (3, 1, 4, 1), (1, 2, 1, 1), (3, 1, 2, 3), ((1, 5), 1, 1, 1)],
)
def test_conv_padding_matches_torch(features, kernel, stride, dilation, groups):
    conv = jnn.Conv2d(6, kernel, stride, dilation=dilation, groups=groups)
    variables = conv.init(jax.random.PRNGKey(0), features)
    ours = conv.apply(variables, features)
    kernel_oihw = np.asarray(variables["params"]["kernel"]).transpose(3, 2, 0, 1)
    kh, kw = kernel_oihw.shape[2:]
    ref = F.conv2d(
        to_torch(features),
        torch.from_numpy(kernel_oihw),
        torch.from_numpy(np.asarray(variables["params"]["bias"])),
        stride=stride,
        padding=(dilation * (kh - 1) // 2, dilation * (kw - 1) // 2),
        dilation=dilation,
        groups=groups,
    )
    np.testing.assert_allclose(ours, from_torch(ref), atol=1e-5)


def test_batchnorm_matches_torch_in_train_and_eval(features):
    rng = np.random.default_rng(1)
    scale, bias = rng.uniform(0.5, 2, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    mean, var = rng.normal(size=3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    variables = {
        "params": {"scale": scale, "bias": bias},
        "batch_stats": {"mean": mean, "var": var},
    }
    reference = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(scale))
        reference.bias.copy_(torch.from_numpy(bias))
        reference.running_mean.copy_(torch.from_numpy(mean))
        reference.running_var.copy_(torch.from_numpy(var))
    bn = jnn.BatchNorm()

    reference.eval()
    ours = bn.apply(variables, features, use_running_average=True)
    np.testing.assert_allclose(ours, from_torch(reference(to_torch(features))), atol=1e-5)

    reference.train()
    ours, updates = bn.apply(
        variables, features, use_running_average=False, mutable=["batch_stats"]
    )
    np.testing.assert_allclose(ours, from_torch(reference(to_torch(features))), atol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["mean"], reference.running_mean, rtol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["var"], reference.running_var, rtol=1e-5)


def test_batchnorm_train_gradients_match_torch(features):
    """The closed-form gradient of train-mode BatchNorm, input and affine parameters."""
    rng = np.random.default_rng(2)
    scale, bias = rng.uniform(0.5, 2, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    cotangent = rng.normal(size=features.shape).astype(np.float32)
    variables = {
        "params": {"scale": scale, "bias": bias},
        "batch_stats": {"mean": np.zeros(3, np.float32), "var": np.ones(3, np.float32)},
    }

    def loss(params, x):
        out, _ = jnn.BatchNorm().apply(
            {**variables, "params": params}, x, use_running_average=False, mutable=["batch_stats"]
        )
        return jnp.sum(out * cotangent)

    grads, dx = jax.grad(loss, argnums=(0, 1))(variables["params"], jnp.asarray(features))
    reference = torch.nn.BatchNorm2d(3).train()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(scale))
        reference.bias.copy_(torch.from_numpy(bias))
    inputs = to_torch(features).requires_grad_()
    reference(inputs).backward(to_torch(cotangent))
    np.testing.assert_allclose(dx, from_torch(inputs.grad), atol=1e-5)
    np.testing.assert_allclose(grads["scale"], reference.weight.grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["bias"], reference.bias.grad, rtol=1e-5, atol=1e-5)


def test_aspp_and_pyramid_pooling_keep_spatial_size(features):
    x = jnp.asarray(np.repeat(features, 4, axis=-1))
    aspp = jnn.ASPP(rates=(2, 4), features=8)
    y = aspp.apply(aspp.init(jax.random.PRNGKey(0), x), x)
    assert y.shape == (2, 13, 17, 8)
    ppm = jnn.PyramidPooling(features=4)
    z = ppm.apply(ppm.init(jax.random.PRNGKey(0), x), x)
    assert z.shape == (2, 13, 17, 12 + 4 * 4)
    np.testing.assert_array_equal(z[..., :12], x)
