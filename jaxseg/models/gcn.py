"""Global Convolutional Network, "Large Kernel Matters -- Improve Semantic Segmentation by Global
Convolutional Network" (Peng et al., arXiv 1703.02719).

A ResNet at output stride 32; every stage (res-2..res-5 = `layer1`..`layer4`) goes through a
global convolution (k x 1 + 1 x k, both orders, k = 15) straight to class scores and a
boundary refinement (BR) block. From the coarsest map down, scores are upsampled 2x by a
deconvolution, added to the next finer map and refined by another BR; two final
deconvolution + BR steps bring the 1/4 map to the input resolution (9 BRs, 5 deconvs).

Deconvolutions are 4x4 stride-2 transposed convs without bias, initialised to bilinear
upsampling (the paper does not give their size or initialisation); their 2n-pixel output is
cropped to the next map's size, which the ResNet's ceil-rounded strides keep at most 2n, so
any input size works.

Deviation: the paper's best VOC model uses ResNet-152 and 512x512 training after COCO
pre-training; the default here is ResNet-101 (`depth` selects).
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.models.common import as_dtype, finalize_logits, resnet_backbone
from jaxseg.models.registry import register
from jaxseg.nn import BoundaryRefine, ConvTranspose2d, GlobalConv, bilinear_kernel_init

STAGES = ("layer4", "layer3", "layer2", "layer1")


class GCN(nn.Module):
    """Backbone, `gcn{i}` + `br{i}` per stage (coarse first), `deconv{j}` and `fuse_br{j}` on the
    way up; logits at the input resolution."""

    backbone: nn.Module
    num_classes: int
    kernel_size: int = 15
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        features = self.backbone(images, train)
        stage_scores = [
            BoundaryRefine(self.dtype, name=f"br{i}")(
                GlobalConv(self.num_classes, self.kernel_size, self.dtype, name=f"gcn{i}")(
                    features[stage]
                )
            )
            for i, stage in enumerate(STAGES)
        ]
        score = stage_scores[0]
        targets = [*stage_scores[1:], features["stem"], images]
        for j, target in enumerate(targets):
            score = self._upsample(score, target.shape[1:3], name=f"deconv{j}")
            if j < len(stage_scores) - 1:
                score = score + target
            score = BoundaryRefine(self.dtype, name=f"fuse_br{j}")(score)
        return finalize_logits(score)

    def _upsample(self, x: jnp.ndarray, size: tuple[int, int], name: str) -> jnp.ndarray:
        """2x learned upsampling, cropped to `size`."""
        y = ConvTranspose2d(
            self.num_classes,
            4,
            stride=2,
            padding=1,
            use_bias=False,
            kernel_init=bilinear_kernel_init,
            dtype=self.dtype,
            name=name,
        )(x)
        return y[:, : size[0], : size[1]]


@register("gcn", small=dict(depth=18, width=8, stage_sizes=(1, 1, 1, 1), kernel_size=7))
def gcn(
    num_classes: int,
    depth: int = 101,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    kernel_size: int = 15,
    dtype: Any = None,
) -> GCN:
    """GCN on ResNet-`depth` with k = `kernel_size`; `width`/`stage_sizes` shrink it for tests."""
    backbone = resnet_backbone(depth, 32, width=width, stage_sizes=stage_sizes, dtype=dtype)
    return GCN(backbone, num_classes, kernel_size=kernel_size, dtype=as_dtype(dtype))
