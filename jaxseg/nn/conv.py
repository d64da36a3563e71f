"""Convolutions with PyTorch's explicit padding arithmetic, and conv-norm-activation blocks."""

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn import lowering
from jaxseg.nn.norm import BatchNorm

ModuleDef = Any
IntPair = int | Sequence[int]

# torchvision's ResNet initialisation: He normal over fan_out, untruncated.
kaiming_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# N(0, 0.01): how Caffe/MatConvNet-era models initialised their new, unnormalised layers.
small_normal = nn.initializers.normal(0.01)


def as_pair(value: IntPair) -> tuple[int, int]:
    """Turns an int or a pair into a pair of ints, as torch accepts for sizes."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def default_padding(kernel_size: IntPair, dilation: IntPair) -> tuple[int, int]:
    """The 'same' padding of PyTorch code for odd kernels: dilation * (k - 1) // 2 per axis."""
    (kh, kw), (dh, dw) = as_pair(kernel_size), as_pair(dilation)
    return dh * (kh - 1) // 2, dw * (kw - 1) // 2


def conv_parameters(
    module: nn.Module, x: jnp.ndarray, kernel_shape: tuple[int, ...]
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray | None]:
    """Declares `module`'s `kernel` and optional `bias` and promotes them with `x` to its dtype:
    the parameters Conv2d and ConvTranspose2d share."""
    kernel = module.param("kernel", module.kernel_init, kernel_shape, module.param_dtype)
    bias = (
        module.param("bias", module.bias_init, (module.features,), module.param_dtype)
        if module.use_bias
        else None
    )
    return nn.dtypes.promote_dtype(x, kernel, bias, dtype=module.dtype)


class Conv2d(nn.Module):
    """NHWC 2-D convolution with torch.nn.Conv2d's options and symmetric explicit padding.

    Kernels are HWIO (a torch OIHW weight transposed by (2, 3, 1, 0)). `padding=None` pads
    dilation * (k - 1) // 2 on each side, so strided convs match PyTorch, never 'SAME'.
    """

    features: int
    kernel_size: IntPair = 3
    stride: IntPair = 1
    padding: IntPair | None = None
    dilation: IntPair = 1
    groups: int = 1
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable = kaiming_normal_fan_out
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        in_features = x.shape[-1]
        if in_features % self.groups or self.features % self.groups:
            raise ValueError(
                f"Conv2d: channels in={in_features} and out={self.features} must both be "
                f"divisible by groups={self.groups}"
            )
        kh, kw = as_pair(self.kernel_size)
        x, kernel, bias = conv_parameters(
            self, x, (kh, kw, in_features // self.groups, self.features)
        )
        y = lowering.conv2d(
            x,
            kernel,
            stride=as_pair(self.stride),
            padding=self.explicit_padding(),
            dilation=as_pair(self.dilation),
            groups=self.groups,
            precision=self.precision,
        )
        if bias is not None:
            y = y + bias
        return y

    def explicit_padding(self) -> list[tuple[int, int]]:
        """(before, after) per spatial axis: `padding`, or the default for odd kernels."""
        pad = self.padding
        ph, pw = default_padding(self.kernel_size, self.dilation) if pad is None else as_pair(pad)
        return [(ph, ph), (pw, pw)]


class SeparableConv2d(nn.Module):
    """Depthwise k x k conv then pointwise 1 x 1 conv (DeepLab v3+'s separable convolution)."""

    features: int
    kernel_size: IntPair = 3
    stride: IntPair = 1
    padding: IntPair | None = None
    dilation: IntPair = 1
    use_bias: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        in_features = x.shape[-1]
        x = Conv2d(
            in_features,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            groups=in_features,
            use_bias=False,
            dtype=self.dtype,
            name="depthwise",
        )(x)
        return Conv2d(self.features, 1, use_bias=self.use_bias, dtype=self.dtype, name="pointwise")(
            x
        )


class ConvBNAct(nn.Module):
    """Convolution, optional normalisation, optional activation: the ubiquitous conv-BN-ReLU.

    `norm=None` drops the normalisation; the conv then has a bias unless `use_bias` says
    otherwise. `conv` may be any Conv2d-like module (e.g. SeparableConv2d).
    """

    features: int
    kernel_size: IntPair = 3
    stride: IntPair = 1
    padding: IntPair | None = None
    dilation: IntPair = 1
    groups: int = 1
    use_bias: bool | None = None
    conv: ModuleDef = Conv2d
    norm: ModuleDef | None = BatchNorm
    act: Callable | None = nn.relu
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        use_bias = self.norm is None if self.use_bias is None else self.use_bias
        grouping = {"groups": self.groups} if self.groups != 1 else {}
        x = self.conv(
            self.features,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            use_bias=use_bias,
            dtype=self.dtype,
            name="conv",
            **grouping,
        )(x)
        if self.norm is not None:
            x = self.norm(dtype=self.dtype, name="bn")(x, use_running_average=not train)
        if self.act is not None:
            x = self.act(x)
        return x
