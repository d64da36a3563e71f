"""Transposed convolution against torch.nn.ConvTranspose2d, and its bilinear initialisation
against torch's bilinear interpolation."""

import jax
import numpy as np
import pytest

from jaxseg.nn.upsample import ConvTranspose2d, bilinear_kernel_init

torch = pytest.importorskip("torch")

from tests.torch_reference import from_torch, to_torch  # noqa: E402


def _torch_layer(
    in_channels, out_channels, kernel, stride, padding, output_padding, dilation, bias
):
    torch.manual_seed(0)
    return torch.nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
        output_padding,
        bias=bias,
        dilation=dilation,
    )


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "output_padding", "dilation", "bias"),
    [
        (4, 2, 0, 0, 1, False),  # FCN's 2x upsampling
        (16, 8, 0, 0, 1, False),  # FCN-8s's final 8x
        (3, 2, 1, 1, 1, True),  # the usual "same" 2x decoder layer
        ((3, 5), (2, 3), (1, 2), (0, 1), 1, True),
        (3, 1, 2, 0, 2, True),
    ],
)
def test_matches_torch_conv_transpose(kernel, stride, padding, output_padding, dilation, bias):
    layer = _torch_layer(3, 5, kernel, stride, padding, output_padding, dilation, bias)
    x = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype(np.float32)
    expected = from_torch(layer(to_torch(x)))
    params = {"kernel": layer.weight.detach().numpy().transpose(2, 3, 1, 0)}
    if bias:
        params["bias"] = layer.bias.detach().numpy()
    module = ConvTranspose2d(5, kernel, stride, padding, output_padding, dilation, use_bias=bias)
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)["params"]
    assert {k: v.shape for k, v in shapes.items()} == {k: v.shape for k, v in params.items()}
    out = jax.jit(module.apply)({"params": params}, x)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


@pytest.mark.parametrize(("factor", "size"), [(2, (7, 10)), (8, (5, 6)), (32, (3, 4))])
def test_bilinear_init_upsamples_like_torch_interpolate(factor, size):
    """Away from the border, the initialised layer shifted by factor / 2 is exactly
    F.interpolate(scale_factor=factor, mode="bilinear", align_corners=False)."""
    x = np.random.default_rng(1).normal(size=(1, *size, 4)).astype(np.float32)
    module = ConvTranspose2d(
        4, 2 * factor, factor, use_bias=False, kernel_init=bilinear_kernel_init
    )
    variables = module.init(jax.random.PRNGKey(0), x)
    out = np.asarray(jax.jit(module.apply)(variables, x))
    assert out.shape == (1, (size[0] + 1) * factor, (size[1] + 1) * factor, 4)
    expected = from_torch(
        torch.nn.functional.interpolate(
            to_torch(x), scale_factor=factor, mode="bilinear", align_corners=False
        )
    )
    shift, inner = factor // 2, np.s_[factor:-factor]
    height, width = expected.shape[1:3]
    cropped = out[:, shift : shift + height, shift : shift + width]
    np.testing.assert_allclose(cropped[:, inner, inner], expected[:, inner, inner], atol=1e-5)


def test_bilinear_init_rejects_channel_mixing():
    with pytest.raises(ValueError, match="as many outputs as inputs"):
        bilinear_kernel_init(jax.random.PRNGKey(0), (4, 4, 3, 5))
