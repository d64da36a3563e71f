"""VGG16 (Simonyan and Zisserman, arXiv 1409.1556) as a segmentation trunk, in the variants
the VGG-based segmentation papers use:

- `plain`: torchvision's `vgg16` / `vgg16_bn` features (2x2 max pools, floor rounding);
- `fcn`: FCN (arXiv 1411.4038): conv1_1 padded by 100, ceil-mode pools, fc6/fc7 as 7x7 and
  1x1 convolutions with 4096 channels and dropout;
- `largefov`: DeepLab-LargeFOV (arXiv 1412.7062): 3x3 pools (stride 1 for pool4/pool5),
  conv5 at dilation 2, fc6 a 3x3 conv at dilation 12 with 1024 channels, fc7 1x1;
- `dilated`: the front end of Yu and Koltun (arXiv 1511.07122): pool4 and pool5 removed,
  conv5 at dilation 2, fc6 a 7x7 conv at dilation 4.

Layers carry the Caffe names of those papers: `conv{stage}_{i}` (a ConvBNAct: `conv`, and `bn`
when normalised), `fc6`, `fc7` (ConvBNAct without norm). Mapping torchvision weights: the
convolutions of `vgg16().features` (or `vgg16_bn().features`), in order, are
`VGG16_CONV_NAMES`; each conv weight (O, I, 3, 3) goes to `<name>/conv/kernel` transposed by
(2, 3, 1, 0), its bias to `<name>/conv/bias`; a following BatchNorm2d goes to `<name>/bn`
(weight -> scale, bias -> bias, running_mean/var -> batch_stats mean/var). `classifier.0`
(4096, 25088) reshaped to (4096, 512, 7, 7) is `fc6/conv/kernel` of the `fcn` and `dilated`
variants, and `classifier.3` (4096, 4096) reshaped to (4096, 4096, 1, 1) is `fc7/conv/kernel`,
both transposed by (2, 3, 1, 0); `classifier.6` (the ImageNet classifier) has no counterpart.
DeepLab-LargeFOV's 1024-channel fc6/fc7 are subsampled from these by its authors, not copied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.nn.conv import ConvBNAct
from jaxseg.nn.pooling import max_pool, max_pool_with_argmax

ModuleDef = Any

VGG16_STAGES = (2, 2, 3, 3, 3)
"""Convolutions per stage; stage s has width * 2**(s-1) channels, capped at 8 * width."""

VGG16_CONV_NAMES = tuple(
    f"conv{stage}_{i}"
    for stage, count in enumerate(VGG16_STAGES, start=1)
    for i in range(1, count + 1)
)


def stage_channels(width: int = 64) -> tuple[int, ...]:
    """Output channels of each VGG16 stage for base width `width` (64: 64 ... 512)."""
    return tuple(width * min(2**i, 8) for i in range(len(VGG16_STAGES)))


class Pool(NamedTuple):
    """A max pool's kernel, stride and padding."""

    kernel: int = 2
    stride: int = 2
    padding: int = 0


class FullyConv(NamedTuple):
    """fc6 (kernel x kernel at `dilation`, `padding`) and fc7 (1x1), each ReLU and dropout."""

    features: int = 4096
    kernel: int = 7
    dilation: int = 1
    padding: int = 0
    dropout: float = 0.5


@dataclasses.dataclass(frozen=True)
class Grid:
    """Where the pixels of a feature map lie in the input: pixel i is centred on input
    coordinate `stride * i + offset` (Caffe's `coord_map`, which places FCN's crops)."""

    stride: float = 1.0
    offset: float = 0.0

    def conv(self, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Grid:
        """The grid after a convolution or pooling window with these settings."""
        centre = dilation * (kernel - 1) / 2 - padding
        return Grid(self.stride * stride, self.offset + self.stride * centre)

    def deconv(self, kernel: int, stride: int, padding: int = 0) -> Grid:
        """The grid after a transposed convolution with these settings."""
        shift = self.stride * (padding - (kernel - 1) / 2) / stride
        return Grid(self.stride / stride, self.offset + shift)

    def crop_offset(self, target: Grid) -> int:
        """How many leading pixels of a map on this grid to drop so that it aligns with a map
        on `target` (same stride). An error when the grids cannot align that way."""
        shift = (target.offset - self.offset) / self.stride
        if self.stride != target.stride or shift != int(shift) or shift < 0:
            raise ValueError(f"cannot crop a map on {self} to align with {target}")
        return int(shift)


class VGG(nn.Module):
    """VGG16 trunk returning a dict of features (NHWC).

    Keys: `conv{s}` (stage s before pooling), `pool{s}` (after its pool; the same map when the
    pool is removed), `indices{s}` (argmax of the pool, with `return_indices`), and `fc7` when
    `fully_conv` is set. `pools[s]` None removes stage s's pool; `dilations[s]` dilates its
    convs; `first_padding` pads conv1_1 (FCN: 100). `norm=BatchNorm` gives vgg16_bn (convs keep
    their bias, as torchvision's).
    """

    width: int = 64
    norm: ModuleDef | None = None
    pools: Sequence[Pool | None] = (Pool(),) * 5
    dilations: Sequence[int] = (1,) * 5
    ceil_mode: bool = False
    first_padding: int = 1
    return_indices: bool = False
    fully_conv: FullyConv | None = None
    dtype: Any = None

    def grids(self) -> dict[str, Grid]:
        """The input-coordinate grid of every `pool{s}` and `fc7` map this trunk returns."""
        grid, grids = Grid(), {}
        for stage, (count, pool, dilation) in enumerate(
            zip(VGG16_STAGES, self.pools, self.dilations, strict=True), start=1
        ):
            for i in range(1, count + 1):
                padding = self.first_padding if (stage, i) == (1, 1) else dilation
                grid = grid.conv(3, 1, padding, dilation)
            if pool is not None:
                grid = grid.conv(*pool)
            grids[f"pool{stage}"] = grid
        if self.fully_conv is not None:
            fc = self.fully_conv
            grids["fc7"] = grid.conv(fc.kernel, 1, fc.padding, fc.dilation)
        return grids

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        features = {}
        for stage, (count, channels, pool, dilation) in enumerate(
            zip(VGG16_STAGES, stage_channels(self.width), self.pools, self.dilations, strict=True),
            start=1,
        ):
            for i in range(1, count + 1):
                x = ConvBNAct(
                    channels,
                    3,
                    padding=self.first_padding if (stage, i) == (1, 1) else dilation,
                    dilation=dilation,
                    use_bias=True,
                    norm=self.norm,
                    dtype=self.dtype,
                    name=f"conv{stage}_{i}",
                )(x, train)
            features[f"conv{stage}"] = x
            if pool is not None and self.return_indices:
                x, features[f"indices{stage}"] = max_pool_with_argmax(x, *pool, self.ceil_mode)
            elif pool is not None:
                x = max_pool(x, *pool, self.ceil_mode)
            features[f"pool{stage}"] = x
        if self.fully_conv is not None:
            fc = self.fully_conv
            x = ConvBNAct(
                fc.features,
                fc.kernel,
                padding=fc.padding,
                dilation=fc.dilation,
                norm=None,
                dtype=self.dtype,
                name="fc6",
            )(x, train)
            x = nn.Dropout(fc.dropout, deterministic=not train)(x)
            x = ConvBNAct(fc.features, 1, norm=None, dtype=self.dtype, name="fc7")(x, train)
            features["fc7"] = nn.Dropout(fc.dropout, deterministic=not train)(x)
        return features


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "fcn": dict(first_padding=100, ceil_mode=True, fully_conv=FullyConv(4096, 7)),
    "largefov": dict(
        pools=(Pool(3, 2, 1),) * 3 + (Pool(3, 1, 1),) * 2,
        dilations=(1, 1, 1, 1, 2),
        ceil_mode=True,
        fully_conv=FullyConv(1024, 3, dilation=12, padding=12),
    ),
    "dilated": dict(
        pools=(Pool(),) * 3 + (None, None),
        dilations=(1, 1, 1, 1, 2),
        ceil_mode=True,
        fully_conv=FullyConv(4096, 7, dilation=4, padding=12),
    ),
}


def vgg16(variant: str = "plain", *, fc_features: int | None = None, **options: Any) -> VGG:
    """VGG16 trunk of `variant` (see `VARIANTS`); `fc_features` narrows fc6/fc7 and `options`
    are VGG fields (width, norm, return_indices, dtype, name, ...)."""
    if variant not in VARIANTS:
        raise ValueError(f"VGG16 variant {variant!r}: expected one of {sorted(VARIANTS)}")
    fields = {**VARIANTS[variant], **options}
    if fc_features is not None:
        if "fully_conv" not in fields:
            raise ValueError(f"VGG16 variant {variant!r} has no fc6/fc7 to set fc_features on")
        fields["fully_conv"] = fields["fully_conv"]._replace(features=fc_features)
    return VGG(**fields)
