"""PSPNet, "Pyramid Scene Parsing Network" (Zhao et al., arXiv 1612.01105).

Dilated ResNet (output stride 8), pyramid pooling over 1x1, 2x2, 3x3 and 6x6 bins, a 3x3
conv-BN-ReLU fusing the pyramid with the features, dropout 0.1 and a 1x1 classifier;
logits are upsampled bilinearly (align_corners, as the authors' code) to the input size.
Training adds the paper's auxiliary FCN head on stage 4 (`layer3`), weighted 0.4 in the loss.

Deviation: the paper's ResNet uses a deep stem of three 3x3 convs; the default here is
torchvision's 7x7 stem so ImageNet weights from torchvision load, `deep_stem=True` restores it.

segmentation_models_pytorch's variant is the same model with options: a ResNet cut after
`layer2` (`num_stages=2`, stride 8 without dilation), pyramid branches before the input and an
unnormalised 1x1 bin, a 1x1 fusion conv, channel dropout 0.2 and a 3x3 classifier.
"""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from jaxseg.backbones.resnet import STAGE_NAMES
from jaxseg.models.common import as_dtype, auxiliary_logits, finalize_logits, resnet_backbone
from jaxseg.models.registry import register
from jaxseg.nn import ConvBNAct, PyramidPooling
from jaxseg.nn.conv import Conv2d
from jaxseg.nn.ppm import PyramidFusionConv2d


class PSPNet(nn.Module):
    """Backbone, pyramid pooling, fusion conv and classifier; returns (logits, aux) in training
    when `aux` is set, else logits, both at the input resolution."""

    backbone: nn.Module
    num_classes: int
    bins: Sequence[int] = (1, 2, 3, 6)
    head_features: int = 512
    dropout: float = 0.1
    aux: bool = True
    align_corners: bool = True
    feature_stage: str = "layer4"
    ppm_input_first: bool = True
    norm_global_bin: bool = True
    fuse_kernel: int = 3
    spatial_dropout: bool = False
    classifier_kernel: int = 1
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False):
        features = self.backbone(images, train)
        pyramid = PyramidPooling(self.bins, align_corners=self.align_corners,
                                 input_first=self.ppm_input_first, concatenate=False,
                                 norm_global_bin=self.norm_global_bin, dtype=self.dtype,
                                 name="ppm")(features[self.feature_stage], train)
        x = ConvBNAct(self.head_features, self.fuse_kernel, conv=PyramidFusionConv2d,
                      dtype=self.dtype, name="fuse")(pyramid, train)
        broadcast = (1, 2) if self.spatial_dropout else ()
        x = nn.Dropout(self.dropout, broadcast_dims=broadcast, deterministic=not train)(x)
        x = Conv2d(self.num_classes, self.classifier_kernel, dtype=self.dtype,
                   name="classifier")(x)
        logits = finalize_logits(x, images, self.align_corners)
        if not self.aux:
            return logits
        return auxiliary_logits(self, logits, features["layer3"], images, train,
                                align_corners=self.align_corners,
                                head_features=self.head_features // 2)


@register("pspnet", small=dict(depth=18, width=8, head_features=16))
def pspnet(
    num_classes: int,
    depth: int = 101,
    output_stride: int = 8,
    width: int = 64,
    stage_sizes: tuple[int, ...] | None = None,
    deep_stem: bool = False,
    bins: tuple[int, ...] = (1, 2, 3, 6),
    head_features: int = 512,
    aux: bool = True,
    num_stages: int = 4,
    ppm_input_first: bool = True,
    norm_global_bin: bool = True,
    fuse_kernel: int = 3,
    dropout: float = 0.1,
    spatial_dropout: bool = False,
    classifier_kernel: int = 1,
    dtype: Any = None,
) -> PSPNet:
    """PSPNet on ResNet-`depth`; `width`/`head_features`/`stage_sizes` shrink it for tests.

    The remaining options select smp's variant (see the module docstring); `num_stages=2`
    pools `layer2` and leaves no stage for the auxiliary head, so it needs `aux=False`.
    """
    if aux and num_stages < 3:
        raise ValueError(f"pspnet: aux=True needs layer3, but num_stages={num_stages}")
    backbone = resnet_backbone(depth, output_stride, width=width, stage_sizes=stage_sizes,
                               deep_stem=deep_stem, num_stages=num_stages, dtype=dtype)
    return PSPNet(backbone, num_classes, bins=bins, head_features=head_features, aux=aux,
                  feature_stage=STAGE_NAMES[num_stages - 1], ppm_input_first=ppm_input_first,
                  norm_global_bin=norm_global_bin, fuse_kernel=fuse_kernel, dropout=dropout,
                  spatial_dropout=spatial_dropout, classifier_kernel=classifier_kernel,
                  dtype=as_dtype(dtype))
