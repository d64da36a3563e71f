"""ResNet v1.5 backbones (stride on the 3x3, as torchvision) for dense prediction.

Output stride 8/16/32 by trading strides for dilation, multi-grid rates in the last stage
(DeepLab v3), an optional deep stem of three 3x3 convs (PSPNet) and a width multiplier.
The forward returns every stage's features instead of class scores.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import Conv2d
from jaxseg.nn.norm import BatchNorm
from jaxseg.nn.pooling import max_pool

ModuleDef = Any

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual (ResNet-18/34). Both convs use `dilation`."""

    features: int
    stride: int = 1
    dilation: int = 1
    norm: ModuleDef = BatchNorm
    dtype: Any = None
    expansion: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        conv = partial(Conv2d, use_bias=False, dtype=self.dtype)
        norm = partial(self.norm, dtype=self.dtype, use_running_average=not train)
        y = conv(self.features, 3, self.stride, dilation=self.dilation, name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y))
        y = conv(self.features, 3, dilation=self.dilation, name="conv2")(y)
        y = norm(name="bn2")(y)
        return nn.relu(y + _shortcut(x, y.shape[-1], self.stride, conv, norm))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying stride and dilation), 1x1 expand x4, residual (ResNet-50+)."""

    features: int
    stride: int = 1
    dilation: int = 1
    norm: ModuleDef = BatchNorm
    dtype: Any = None
    expansion: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        conv = partial(Conv2d, use_bias=False, dtype=self.dtype)
        norm = partial(self.norm, dtype=self.dtype, use_running_average=not train)
        y = nn.relu(norm(name="bn1")(conv(self.features, 1, name="conv1")(x)))
        y = conv(self.features, 3, self.stride, dilation=self.dilation, name="conv2")(y)
        y = nn.relu(norm(name="bn2")(y))
        y = conv(self.features * self.expansion, 1, name="conv3")(y)
        y = norm(name="bn3")(y)
        return nn.relu(y + _shortcut(x, y.shape[-1], self.stride, conv, norm))


def _shortcut(
    x: jnp.ndarray, features: int, stride: int, conv: ModuleDef, norm: ModuleDef
) -> jnp.ndarray:
    """Identity, or strided 1x1 conv-BN when the shape changes (torchvision's downsample)."""
    if stride == 1 and x.shape[-1] == features:
        return x
    return norm(name="downsample_bn")(conv(features, 1, stride, name="downsample_conv")(x))


def stage_plan(
    stage_sizes: Sequence[int],
    output_stride: int = 32,
    dilate_first_block: bool = False,
    multi_grid: Sequence[int] | None = None,
) -> list[tuple[int, tuple[int, ...]]]:
    """(stride, per-block dilations) of each stage for a target output stride.

    Stages past the target stride swap their stride-2 for doubled dilation. As torchvision's
    `replace_stride_with_dilation`, the first block of such a stage keeps the previous
    dilation unless `dilate_first_block` (smp's `make_dilated`). `multi_grid` multiplies the
    last stage's dilation per block, first block included (DeepLab v3), cycling if shorter.
    """
    dilated = {32: 0, 16: 1, 8: 2}.get(output_stride)
    if dilated is None:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    plan, dilation = [], 1
    for i, blocks in enumerate(stage_sizes):
        stride, first = (1 if i == 0 else 2), dilation
        if i > 0 and i >= len(stage_sizes) - dilated:
            dilation *= stride
            stride = 1
            first = dilation if dilate_first_block else first
        rates = (first,) + (dilation,) * (blocks - 1)
        if multi_grid and i == len(stage_sizes) - 1:
            rates = tuple(dilation * multi_grid[j % len(multi_grid)] for j in range(blocks))
        plan.append((stride, rates))
    return plan


class ResNet(nn.Module):
    """ResNet trunk returning {"stem", "layer1", ..., "layer4"} features (NHWC).

    "stem" is the stride-2 map after the first ReLU(s), before max pooling. `width` is the
    base channel count (64 in the paper); `deep_stem` uses 3x3 convs of width, width and
    2 * width (conv1..3/bn1..3). `num_stages` < 4 stops early (smp's `encoder_depth` - 1), so
    the deeper stages have no parameters. Padding follows PyTorch, so any input size works.
    """

    stage_sizes: Sequence[int]
    block: ModuleDef = Bottleneck
    width: int = 64
    output_stride: int = 32
    dilate_first_block: bool = False
    multi_grid: Sequence[int] | None = None
    deep_stem: bool = False
    num_stages: int = 4
    norm: ModuleDef = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        if len(self.stage_sizes) != len(STAGE_NAMES):
            raise ValueError(f"ResNet needs 4 stage sizes, got {tuple(self.stage_sizes)}")
        if not 1 <= self.num_stages <= len(STAGE_NAMES):
            raise ValueError(f"ResNet num_stages must be 1 to 4, got {self.num_stages}")
        conv = partial(Conv2d, use_bias=False, dtype=self.dtype)
        norm = partial(self.norm, dtype=self.dtype, use_running_average=not train)
        if self.deep_stem:
            stem = ((self.width, 2), (self.width, 1), (2 * self.width, 1))
            for i, (features, stride) in enumerate(stem, start=1):
                x = conv(features, 3, stride, name=f"conv{i}")(x)
                x = nn.relu(norm(name=f"bn{i}")(x))
        else:
            x = nn.relu(norm(name="bn1")(conv(self.width, 7, 2, name="conv1")(x)))
        features = {"stem": x}
        x = max_pool(x, 3, 2, 1)
        plan = stage_plan(
            self.stage_sizes, self.output_stride, self.dilate_first_block, self.multi_grid
        )
        stages = list(zip(STAGE_NAMES, plan, strict=True))[: self.num_stages]
        for i, (stage, (stride, rates)) in enumerate(stages):
            for j, rate in enumerate(rates):
                x = self.block(
                    self.width * 2**i,
                    stride=stride if j == 0 else 1,
                    dilation=rate,
                    norm=self.norm,
                    dtype=self.dtype,
                    name=f"{stage}_{j}",
                )(x, train)
            features[stage] = x
        return features


RESNET_DEPTHS: dict[int, tuple[tuple[int, ...], ModuleDef]] = {
    18: ((2, 2, 2, 2), BasicBlock),
    34: ((3, 4, 6, 3), BasicBlock),
    50: ((3, 4, 6, 3), Bottleneck),
    101: ((3, 4, 23, 3), Bottleneck),
    152: ((3, 8, 36, 3), Bottleneck),
}


def resnet(depth: int, *, stage_sizes: Sequence[int] | None = None, **options: Any) -> ResNet:
    """ResNet-`depth` (18/34/50/101/152); `stage_sizes` overrides the blocks per stage and
    `options` are ResNet fields (width, output_stride, multi_grid, deep_stem, ...)."""
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_DEPTHS)}, got {depth}")
    default_sizes, block = RESNET_DEPTHS[depth]
    sizes = tuple(default_sizes if stage_sizes is None else stage_sizes)
    return ResNet(stage_sizes=sizes, block=block, **options)
