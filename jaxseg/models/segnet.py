"""SegNet, "SegNet: A Deep Convolutional Encoder-Decoder Architecture for Image Segmentation"
(Badrinarayanan, Kendall and Cipolla, arXiv 1511.00561).

Encoder: the 13 convolutions of VGG16 with BatchNorm (torchvision's `vgg16_bn` features, named
`backbone/conv{s}_{i}`), each stage ending in a 2x2 max pool that keeps its argmax indices.
Decoder: mirror image of the encoder; each stage unpools with the indices of its encoder stage
to that stage's size, then applies 3x3 conv-BN-ReLU layers `conv{s}_{i}_D` (SegNet-Tutorial's
names) that mirror the encoder's channels; the last one, `conv1_1_D`, is a plain 3x3
convolution to class scores. Pools round up (Caffe), so every input size comes back exactly.

Deviation: none in the architecture. SegNet-Tutorial's Caffe BN layer is a BatchNorm with
learned scale and shift, as here; its shift starts at 0.001 where ours starts at 0.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.vgg import VGG, VGG16_STAGES, stage_channels, vgg16
from jaxseg.models.common import SHORT_SCHEDULE_CAVEAT, as_dtype, finalize_logits
from jaxseg.models.registry import register
from jaxseg.nn import BatchNorm, ConvBNAct
from jaxseg.nn.conv import Conv2d
from jaxseg.nn.pooling import max_unpool


class SegNet(nn.Module):
    """VGG16-BN encoder with pooling indices and its mirrored decoder; logits at input size."""

    backbone: VGG
    num_classes: int
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = self.backbone(images, train)
        channels = (images.shape[-1], *stage_channels(self.backbone.width))
        x = features[f"pool{len(VGG16_STAGES)}"]
        for stage in range(len(VGG16_STAGES), 0, -1):
            x = max_unpool(x, features[f"indices{stage}"], 2, features[f"conv{stage}"].shape[1:3])
            last = 2 if stage == 1 else 1  # conv1_1_D is the classifier
            for i in range(VGG16_STAGES[stage - 1], last - 1, -1):
                features_out = channels[stage - 1] if i == 1 else channels[stage]
                x = ConvBNAct(
                    features_out,
                    3,
                    use_bias=True,
                    norm=BatchNorm,
                    dtype=self.dtype,
                    name=f"conv{stage}_{i}_D",
                )(x, train)
        x = Conv2d(self.num_classes, 3, dtype=self.dtype, name="conv1_1_D")(x)
        return finalize_logits(x)


@register("segnet", small=dict(width=16), scratch_caveat=SHORT_SCHEDULE_CAVEAT)
def segnet(num_classes: int, width: int = 64, dtype: Any = None) -> SegNet:
    """SegNet (VGG16-BN encoder-decoder); `width` (conv1 channels, 64 in the paper) shrinks it."""
    backbone = vgg16(
        "plain",
        width=width,
        norm=BatchNorm,
        ceil_mode=True,
        return_indices=True,
        dtype=as_dtype(dtype),
        name="backbone",
    )
    return SegNet(backbone, num_classes, dtype=as_dtype(dtype))
