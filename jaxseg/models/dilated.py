"""Dilated convolution networks of "Multi-Scale Context Aggregation by Dilated Convolutions"
(Yu and Koltun, arXiv 1511.07122).

`dilated_frontend`: VGG16 with pool4 and pool5 removed, conv5 at dilation 2 and fc6 (7x7) at
dilation 4, then a 1x1 classifier `final`: output stride 8. `dilated_context` appends the
context module (`jaxseg.nn.context`, basic or large, identity-initialised) to the front end's
class scores. Scores are upsampled bilinearly (align_corners=False) to the input size.

Deviations: the authors pad the input image by reflection and use unpadded convolutions
(their output covers the image because of that padding); here every convolution zero-pads to
keep its size, so any input size works. Their final 8x upsampling is a fixed bilinear
deconvolution; bilinear resizing is used instead.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.vgg import VGG, vgg16
from jaxseg.models.common import VGG_SCRATCH_CAVEAT, as_dtype, finalize_logits
from jaxseg.models.registry import register
from jaxseg.nn.context import ContextModule
from jaxseg.nn.conv import Conv2d


class DilatedNet(nn.Module):
    """Dilated VGG16 front end, 1x1 classifier, optional context module (`context` is None,
    "basic" or "large"); logits at the input resolution."""

    backbone: VGG
    num_classes: int
    context: str | None = None
    context_noise: float | None = None
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = self.backbone(images, train)["fc7"]
        x = Conv2d(self.num_classes, 1, dtype=self.dtype, name="final")(x)
        if self.context is not None:
            x = ContextModule(self.context, self.context_noise, dtype=self.dtype, name="context")(x)
        return finalize_logits(x, images, align_corners=False)


def _frontend(width: int, fc_features: int, dtype: Any) -> VGG:
    return vgg16(
        "dilated", width=width, fc_features=fc_features, dtype=as_dtype(dtype), name="backbone"
    )


@register(
    "dilated_frontend", small=dict(width=8, fc_features=32), scratch_caveat=VGG_SCRATCH_CAVEAT
)
def dilated_frontend(
    num_classes: int, width: int = 64, fc_features: int = 4096, dtype: Any = None
) -> DilatedNet:
    """The dilated VGG16 front end; `width` and `fc_features` shrink it for tests."""
    return DilatedNet(_frontend(width, fc_features, dtype), num_classes, dtype=as_dtype(dtype))


@register("dilated_context", small=dict(width=8, fc_features=32), scratch_caveat=VGG_SCRATCH_CAVEAT)
def dilated_context(
    num_classes: int,
    context: str = "large",
    context_noise: float | None = None,
    width: int = 64,
    fc_features: int = 4096,
    dtype: Any = None,
) -> DilatedNet:
    """Front end plus context module (`context` "basic" or "large", the paper's best on VOC);
    `context_noise` overrides the std of the identity initialisation's perturbation."""
    return DilatedNet(
        _frontend(width, fc_features, dtype),
        num_classes,
        context=context,
        context_noise=context_noise,
        dtype=as_dtype(dtype),
    )
