"""torchvision's FCN-ResNet101 (dilated ResNet at output stride 8, FCN head, auxiliary head on
layer3) on VOC 2012 + SBD.

torchvision's reference recipe: crop 480, lr 0.02 with poly decay (power 0.9), momentum 0.9,
weight decay 1e-4, auxiliary loss weight 0.5, random scaling 0.5-2.0 and flips.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """FCN-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "fcn_resnet"
    c.model_kwargs = base.model_kwargs(depth=101, aux=True)
    c.crop_size = 480
    c.lr = 0.02
    c.aux_weight = 0.5
    return c
