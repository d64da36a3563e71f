"""U-Net, "U-Net: Convolutional Networks for Biomedical Image Segmentation" (Ronneberger et al.,
arXiv 1505.04597), and segmentation_models_pytorch's U-Net on a ResNet encoder.

Both decoders are chains of the same block: upsample to the skip connection's size,
concatenate it, two 3x3 conv(-BN)-ReLU. The paper's block upsamples with a 2x2 stride-2
up-convolution that halves the channels; smp's with nearest-neighbour interpolation.

Deviations from the paper, so that logits come back at the input resolution for any size:
3x3 convs are padded (the paper's are unpadded and crop the skip connections), max pooling
rounds up (ceil mode) and the up-convolution's output is cropped to the skip's size.
BatchNorm after each conv is optional (`batch_norm`; the paper has none).

Both are registered as `unet`; `resnet_depth` selects smp's variant:
`create("unet", n, resnet_depth=34)` is `smp.Unet("resnet34", classes=n)`.
"""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.resnet import STAGE_NAMES
from jaxseg.models.common import SHORT_SCHEDULE_CAVEAT, as_dtype, finalize_logits, resnet_backbone
from jaxseg.models.registry import register
from jaxseg.nn import BatchNorm, Conv2d, ConvBNAct, max_pool
from jaxseg.nn.upsample import ConvTranspose2d
from jaxseg.nn.upsampled_conv import UpsampledSkip, UpsampledSkipConv2d

ModuleDef = Any

PAPER_FEATURES = (64, 128, 256, 512, 1024)
SMP_DECODER_FEATURES = (256, 128, 64, 32, 16)


class DoubleConv(nn.Module):
    """Two 3x3 conv(-norm)-ReLU layers, `conv1` and `conv2`: a U-Net level's convolutions."""

    features: int
    norm: ModuleDef | None = BatchNorm
    dtype: Any = None
    first_conv: ModuleDef = Conv2d

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> jnp.ndarray:
        for name, conv in (("conv1", self.first_conv), ("conv2", Conv2d)):
            x = ConvBNAct(self.features, 3, conv=conv, norm=self.norm, dtype=self.dtype, name=name)(
                x, train
            )
        return x


class UNetDecoderBlock(nn.Module):
    """Upsample `x` to `size`, concatenate `skip` if given, then DoubleConv (`convs`).

    `upsample="transpose"`: the paper's 2x2 stride-2 up-convolution (`up`) to `features`
    channels, cropped to `size`; `"nearest"`: smp's nearest-neighbour interpolation, which
    `conv1` convolves without building it (`UpsampledSkipConv2d`).
    """

    features: int
    upsample: str = "nearest"
    norm: ModuleDef | None = BatchNorm
    dtype: Any = None

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        size: Sequence[int],
        skip: jnp.ndarray | None = None,
        train: bool = False,
    ) -> jnp.ndarray:
        height, width = size
        if self.upsample == "nearest":  # conv1 never builds the upsampled concatenation
            inputs = UpsampledSkip(x, (height, width), skip)
            convs = DoubleConv(
                self.features, self.norm, self.dtype, first_conv=UpsampledSkipConv2d, name="convs"
            )
            return convs(inputs, train)
        if self.upsample != "transpose":
            raise ValueError(f"upsample must be 'transpose' or 'nearest', got {self.upsample!r}")
        x = ConvTranspose2d(self.features, 2, stride=2, dtype=self.dtype, name="up")(x)
        x = x[:, :height, :width]
        if skip is not None:
            x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
        return DoubleConv(self.features, self.norm, self.dtype, name="convs")(x, train)


class UNet(nn.Module):
    """The paper's U-Net: `encoder{i}` DoubleConvs with 2x2 max pooling between them, then
    `decoder{i}` up-convolution blocks back to full resolution and a 1x1 `classifier`."""

    num_classes: int
    features: Sequence[int] = PAPER_FEATURES
    batch_norm: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        norm = BatchNorm if self.batch_norm else None
        x, skips = images, []
        for i, features in enumerate(self.features):
            if i:
                x = max_pool(x, 2, 2, ceil_mode=True)
            x = DoubleConv(features, norm, self.dtype, name=f"encoder{i}")(x, train)
            skips.append(x)
        levels = list(zip(self.features[-2::-1], skips[-2::-1], strict=True))
        for i, (features, skip) in enumerate(levels):
            x = UNetDecoderBlock(features, "transpose", norm, self.dtype, name=f"decoder{i}")(
                x, skip.shape[1:3], skip, train
            )
        logits = Conv2d(self.num_classes, 1, dtype=self.dtype, name="classifier")(x)
        return finalize_logits(logits)


class ResNetUNet(nn.Module):
    """smp's U-Net: a ResNet `backbone`, `block{i}` nearest-upsampling decoder blocks fed
    `layer3`, `layer2`, `layer1` and `stem`, a last block at input size without a skip,
    and a 3x3 `classifier`."""

    backbone: nn.Module
    num_classes: int
    decoder_features: Sequence[int] = SMP_DECODER_FEATURES
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = self.backbone(images, train)
        skips = [features[name] for name in ("stem", *STAGE_NAMES[:-1])][::-1] + [None]
        if len(self.decoder_features) != len(skips):
            raise ValueError(
                f"ResNetUNet needs {len(skips)} decoder_features, got {self.decoder_features}"
            )
        x = features[STAGE_NAMES[-1]]
        for i, (out, skip) in enumerate(zip(self.decoder_features, skips, strict=True)):
            size = images.shape[1:3] if skip is None else skip.shape[1:3]
            x = UNetDecoderBlock(out, "nearest", dtype=self.dtype, name=f"block{i}")(
                x, size, skip, train
            )
        logits = Conv2d(self.num_classes, 3, dtype=self.dtype, name="classifier")(x)
        return finalize_logits(logits)


@register("unet", small=dict(features=(8, 16, 16, 32, 32)), scratch_caveat=SHORT_SCHEDULE_CAVEAT)
def unet(
    num_classes: int,
    features: tuple[int, ...] = PAPER_FEATURES,
    batch_norm: bool = False,
    resnet_depth: int | None = None,
    decoder_features: tuple[int, ...] = SMP_DECODER_FEATURES,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    dtype: Any = None,
) -> UNet | ResNetUNet:
    """The paper's U-Net (`features`: one width per level, `batch_norm`), or with
    `resnet_depth` smp's U-Net on an undilated ResNet encoder (`decoder_features`, `width`,
    `stage_sizes`). Options of the other variant must keep their defaults."""
    if resnet_depth is None:
        if (tuple(decoder_features), width, stage_sizes) != (SMP_DECODER_FEATURES, 64, None):
            raise ValueError(
                "unet: decoder_features, width and stage_sizes need resnet_depth (smp's U-Net)"
            )
        return UNet(num_classes, features=features, batch_norm=batch_norm, dtype=as_dtype(dtype))
    if (tuple(features), batch_norm) != (PAPER_FEATURES, False):
        raise ValueError(
            "unet: features and batch_norm are the paper's U-Net's, without resnet_depth"
        )
    backbone = resnet_backbone(resnet_depth, 32, width=width, stage_sizes=stage_sizes, dtype=dtype)
    return ResNetUNet(
        backbone, num_classes, decoder_features=decoder_features, dtype=as_dtype(dtype)
    )
