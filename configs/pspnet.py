"""PSPNet (arXiv 1612.01105) on VOC 2012 + SBD: dilated ResNet-101 at output stride 8, crop 473.

The paper's VOC recipe: batch 16, base lr 0.01 with poly decay (power 0.9), momentum 0.9,
weight decay 1e-4, auxiliary loss weight 0.4, random scale 0.5-2.0 and flips.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """PSPNet-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "pspnet"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, output_stride=8, aux=True)
    c.crop_size = 473
    c.num_steps = 30_000
    c.aux_weight = 0.4
    return c
