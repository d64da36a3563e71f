"""RefineNet, "Multi-Path Refinement Networks for High-Resolution Semantic Segmentation" (Lin et
al., arXiv 1611.06612): the 4-cascaded RefineNet on a ResNet at output stride 32.

Each ResNet stage (1/32, 1/16, 1/8, 1/4) is adapted by a 3x3 conv to 512 channels (`layer4`)
or 256 (the others) and refined, coarse to fine, by a RefineNet block that also takes the
previous block's output: two residual conv units (RCUs) per path, multi-resolution fusion,
chained residual pooling, one output RCU. Two more RCUs precede the classifier; its 1/4
scores are upsampled bilinearly to the input size.

Details the paper leaves open follow the authors' released VOC model (as ported in
DrSleep/refinenet-pytorch): dropout 0.5 on `layer3`/`layer4` and before the classifier, a 3x3
classifier with bias, four chained-pooling stages (`pooling_stages`; the authors' training
code defaults to two), align_corners upsampling and N(0, 0.01) initialisation of every
decoder conv. The RCUs the paper puts on a block's incoming path sit in the released graph
after the previous block; the computation is the same.

Deviations: the backbone is torchvision's ResNet (stride on the 3x3 conv; MatConvNet's puts it
on the 1x1) with trainable BatchNorm (the authors freeze it), and inputs are not enlarged
1.2x as the authors' training code does.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.models.common import SHORT_SCHEDULE_CAVEAT, as_dtype, finalize_logits, resnet_backbone
from jaxseg.models.registry import register
from jaxseg.nn import Conv2d, RefineNetBlock, ResidualConvUnit
from jaxseg.nn.conv import small_normal

# Backbone stages from coarse to fine, and the dropout the released model puts on the deep ones.
STAGES = ("layer4", "layer3", "layer2", "layer1")
DROPPED_STAGES = ("layer4", "layer3")


class RefineNet(nn.Module):
    """Backbone, per-stage adaptation convs `adapt{i}`, cascaded blocks `refine4..refine1`,
    `final_rcu{j}`, `classifier`; logits at the input resolution."""

    backbone: nn.Module
    num_classes: int
    features: int = 256
    pooling_stages: int = 4
    final_units: int = 2
    dropout: float = 0.5
    align_corners: bool = True
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = self.backbone(images, train)
        x = None
        for i, stage in enumerate(STAGES):
            y = features[stage]
            if stage in DROPPED_STAGES:
                y = nn.Dropout(self.dropout, deterministic=not train)(y)
            width = 2 * self.features if stage == "layer4" else self.features
            y = Conv2d(
                width,
                3,
                use_bias=False,
                kernel_init=small_normal,
                dtype=self.dtype,
                name=f"adapt{i}",
            )(y)
            x = RefineNetBlock(
                pooling_stages=self.pooling_stages,
                align_corners=self.align_corners,
                dtype=self.dtype,
                name=f"refine{len(STAGES) - i}",
            )([y] if x is None else [x, y])
        for j in range(self.final_units):
            x = ResidualConvUnit(self.dtype, name=f"final_rcu{j}")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = Conv2d(
            self.num_classes, 3, kernel_init=small_normal, dtype=self.dtype, name="classifier"
        )(x)
        return finalize_logits(x, images, self.align_corners)


@register(
    "refinenet",
    small=dict(depth=18, width=8, stage_sizes=(1, 1, 1, 1), features=8),
    scratch_caveat=SHORT_SCHEDULE_CAVEAT,
)
def refinenet(
    num_classes: int,
    depth: int = 101,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    features: int = 256,
    pooling_stages: int = 4,
    dtype: Any = None,
) -> RefineNet:
    """4-cascaded RefineNet on ResNet-`depth`; `width`/`features`/`stage_sizes` shrink it."""
    backbone = resnet_backbone(depth, 32, width=width, stage_sizes=stage_sizes, dtype=dtype)
    return RefineNet(
        backbone,
        num_classes,
        features=features,
        pooling_stages=pooling_stages,
        dtype=as_dtype(dtype),
    )
