"""Fully convolutional networks, "Fully Convolutional Networks for Semantic Segmentation"
(Long, Shelhamer and Darrell, arXiv 1411.4038), and torchvision's ResNet FCN.

`fcn32s`, `fcn16s`, `fcn8s`: VGG16 with fc6/fc7 as convolutions (conv1_1 padded by 100,
ceil-mode pools), a 1x1 class scorer on fc7 and learned upsampling initialised to bilinear.
FCN-16s adds scores from pool4 after a 2x upsampling, FCN-8s also from pool3; the last
upsampling is 32x, 16x or 8x. Every map is cropped where the paper's Caffe nets crop it; the
crop offsets are derived from the layer geometry (`Grid`, Caffe's `coord_map`), so the output
aligns with the input at any size. Layer names are the reference nets': `score_fr`,
`upscore2`, `score_pool4`, `upscore_pool4`, `score_pool3`, `upscore` / `upscore16` /
`upscore8`. Class scorers start at zero, as in the paper (`zero_init_scores=False` draws them
at random: at zero no gradient reaches the layers below on the first step).

Deviations: the paper trains in stages (FCN-32s, then 16s and 8s initialised from the coarser
net, `config.init_from`); any stage also trains from scratch or at once. The reference keeps
the bilinear upsampling fixed in its later nets; here, as the paper describes, it is learned.

`fcn_resnet`: torchvision's `fcn_resnet50/101`: ResNet dilated to output stride 8 (layer3 and
layer4), FCNHead (3x3 conv 2048 -> 512, BN, ReLU, dropout 0.1, 1x1 classifier) named `head`,
an optional auxiliary FCNHead on layer3 (1024 -> 256) named `aux_head`, and bilinear
upsampling without align_corners.
"""

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.vgg import VGG, Grid, vgg16
from jaxseg.models.common import (
    VGG_SCRATCH_CAVEAT,
    as_dtype,
    auxiliary_logits,
    finalize_logits,
    resnet_backbone,
)
from jaxseg.models.registry import register
from jaxseg.nn import FCNHead
from jaxseg.nn.conv import Conv2d
from jaxseg.nn.upsample import ConvTranspose2d, bilinear_kernel_init

SKIPS = (("pool4", "upscore2"), ("pool3", "upscore_pool4"))
"""(pool scored by the skip, the 2x upsampling before it) of FCN-16s and FCN-8s."""
FINAL_UPSAMPLING = {0: "upscore", 1: "upscore16", 2: "upscore8"}


def final_factor(skips: int) -> int:
    """The last upsampling factor: 32, 16 or 8 for 0, 1 or 2 skips."""
    if skips not in range(len(SKIPS) + 1):
        raise ValueError(f"FCN: skips must be 0, 1 or 2, got {skips}")
    return 32 >> skips


def crop_offsets(grids: dict[str, Grid], skips: int) -> tuple[int, ...]:
    """Where FCN crops, from the trunk's `grids`: for each skip, the offset of its pool scores
    onto the upsampled map; last, the offset of the final upsampled map onto the input."""
    grid, offsets = grids["fc7"], []
    for pool, _ in SKIPS[:skips]:
        grid = grid.deconv(4, 2)
        offsets.append(grids[pool].crop_offset(grid))
    factor = final_factor(skips)
    offsets.append(grid.deconv(2 * factor, factor).crop_offset(Grid()))
    return tuple(offsets)


def _crop(x: jnp.ndarray, offset: int, size: tuple[int, int]) -> jnp.ndarray:
    """The `size` window of NHWC `x` starting `offset` pixels in along both axes."""
    height, width = size
    if x.shape[1] < offset + height or x.shape[2] < offset + width:
        raise ValueError(f"FCN: cannot crop {size} at offset {offset} from a map of {x.shape}")
    return x[:, offset : offset + height, offset : offset + width]


class FCN(nn.Module):
    """FCN-32s/16s/8s on a VGG16 `fcn` trunk: `skips` is 0, 1 (pool4) or 2 (pool4, pool3)."""

    backbone: VGG
    num_classes: int
    skips: int = 2
    zero_init_scores: bool = True
    dtype: Any = None

    def _score(self, x: jnp.ndarray, name: str) -> jnp.ndarray:
        init = {"kernel_init": nn.initializers.zeros_init()} if self.zero_init_scores else {}
        return Conv2d(self.num_classes, 1, dtype=self.dtype, name=name, **init)(x)

    def _upsample(self, x: jnp.ndarray, factor: int, name: str) -> jnp.ndarray:
        """Learned `factor`x upsampling: kernel 2 * factor, no padding, bilinear at first."""
        return ConvTranspose2d(
            self.num_classes,
            2 * factor,
            factor,
            use_bias=False,
            kernel_init=bilinear_kernel_init,
            dtype=self.dtype,
            name=name,
        )(x)

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        offsets = crop_offsets(self.backbone.grids(), self.skips)
        features = self.backbone(images, train)
        x = self._score(features["fc7"], "score_fr")
        for (pool, name), offset in zip(SKIPS[: self.skips], offsets, strict=False):
            x = self._upsample(x, 2, name)
            skip = self._score(features[pool], f"score_{pool}")
            x = x + _crop(skip, offset, x.shape[1:3])
        x = self._upsample(x, final_factor(self.skips), FINAL_UPSAMPLING[self.skips])
        return finalize_logits(_crop(x, offsets[-1], images.shape[1:3]))


def _vgg16_fcn_factory(
    name: str, skips: int, description: str, small: dict, scratch_caveat: str = ""
) -> Callable[..., FCN]:
    """Registers `name`, the FCN with `skips` on VGG16, and returns its factory."""

    def factory(
        num_classes: int,
        width: int = 64,
        fc_features: int = 4096,
        zero_init_scores: bool = True,
        dtype: Any = None,
    ) -> FCN:
        backbone = vgg16(
            "fcn", width=width, fc_features=fc_features, dtype=as_dtype(dtype), name="backbone"
        )
        return FCN(
            backbone,
            num_classes,
            skips=skips,
            zero_init_scores=zero_init_scores,
            dtype=as_dtype(dtype),
        )

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{description} on VGG16; `width` (conv1 channels) and `fc_features` shrink it for tests."
    )
    return register(name, small=small, scratch_caveat=scratch_caveat)(factory)


# Small FCNs draw their scorers at random, so an untrained one's logits carry signal for the
# registry's bf16 and batch checks (zero scorers give zeros everywhere).
SMALL_FCN = dict(zero_init_scores=False)
fcn32s = _vgg16_fcn_factory(
    "fcn32s",
    0,
    "FCN-32s",
    small=SMALL_FCN | dict(width=4, fc_features=16),
    scratch_caveat=VGG_SCRATCH_CAVEAT,
)
fcn16s = _vgg16_fcn_factory(
    "fcn16s",
    1,
    "FCN-16s (pool4 skip)",
    small=SMALL_FCN | dict(width=4, fc_features=16),
    scratch_caveat=VGG_SCRATCH_CAVEAT,
)
fcn8s = _vgg16_fcn_factory(
    "fcn8s",
    2,
    "FCN-8s (pool4 and pool3 skips)",
    small=SMALL_FCN | dict(width=8, fc_features=32),
    scratch_caveat=VGG_SCRATCH_CAVEAT,
)


class FCNResNet(nn.Module):
    """torchvision's FCN: FCNHead on layer4, optional auxiliary FCNHead on layer3; returns
    (logits, aux) in training with `aux`, else logits, at the input resolution."""

    backbone: nn.Module
    num_classes: int
    aux: bool = False
    dropout: float = 0.1
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False):
        features = self.backbone(images, train)
        x = FCNHead(self.num_classes, dropout=self.dropout, dtype=self.dtype, name="head")(
            features["layer4"], train
        )
        logits = finalize_logits(x, images, align_corners=False)
        if not self.aux:
            return logits
        return auxiliary_logits(
            self, logits, features["layer3"], images, train, align_corners=False
        )


@register("fcn_resnet", small=dict(depth=18, width=8, aux=True))
def fcn_resnet(
    num_classes: int,
    depth: int = 101,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    aux: bool = False,
    dtype: Any = None,
) -> FCNResNet:
    """torchvision's fcn_resnet50/101 (`depth`) at output stride 8; `width`/`stage_sizes`
    shrink it for tests."""
    backbone = resnet_backbone(depth, 8, width=width, stage_sizes=stage_sizes, dtype=dtype)
    return FCNResNet(backbone, num_classes, aux=aux, dtype=as_dtype(dtype))
