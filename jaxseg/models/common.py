"""Pieces every model family shares: dtype names, backbone construction, final logits."""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.resnet import ResNet, resnet
from jaxseg.nn.heads import FCNHead
from jaxseg.nn.resize import resize_bilinear


def as_dtype(dtype: Any) -> Any:
    """Config dtype names ('float32', 'bfloat16') or None as a jnp dtype (None: inputs' own)."""
    return None if dtype is None else jnp.dtype(dtype)


def resnet_backbone(
    depth: int,
    output_stride: int,
    *,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    dtype: Any = None,
    **options: Any,
) -> ResNet:
    """A dilated ResNet trunk named `backbone`, as the segmentation models embed it."""
    return resnet(
        depth,
        stage_sizes=stage_sizes,
        width=width,
        output_stride=output_stride,
        dtype=as_dtype(dtype),
        name="backbone",
        **options,
    )


def finalize_logits(
    logits: jnp.ndarray, images: jnp.ndarray | None = None, align_corners: bool = False
) -> jnp.ndarray:
    """Logits as every model returns them: float32 after float32 or bfloat16 compute, float64
    kept (exact parity tests); bilinearly upsampled to `images`' spatial size when given."""
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    if images is None:
        return logits
    return resize_bilinear(logits, images.shape[1:3], align_corners)


def auxiliary_logits(
    module: nn.Module,
    logits: jnp.ndarray,
    features: jnp.ndarray,
    images: jnp.ndarray,
    train: bool,
    *,
    align_corners: bool,
    head_features: int | None = None,
):
    """`logits`, or `(logits, aux)` in training: an FCNHead named `aux_head` of `module` on
    `features`, upsampled to the input. Call it from `module`'s compact method; the head is
    also built at init in eval mode, so train and eval share one parameter tree."""
    if not (train or module.is_initializing()):
        return logits
    aux = FCNHead(module.num_classes, features=head_features, dtype=module.dtype,
                  name="aux_head")(features, train)
    if not train:
        return logits
    return logits, finalize_logits(aux, images, align_corners)


# Why the small VGG16 nets without BatchNorm or skips are registered as not learning from
# scratch (see `registry.register`): measured on `shapes` with the registry's learning check.
VGG_SCRATCH_CAVEAT = (
    "the unnormalised VGG16 trunk stays at the all-background prediction for 80 SGD steps from "
    "random weights (also with warm-up or AdamW); the paper starts from ImageNet weights"
)
SHORT_SCHEDULE_CAVEAT = (
    "80 SGD steps from random weights (lr 0.02 or 0.05) leave it predicting background "
    "everywhere; it needs a longer schedule than the check's"
)
