"""U-Net (arXiv 1505.04597) on VOC 2012 + SBD: the paper's encoder-decoder (64 to 1024
channels, skip connections), trained from scratch.

The paper trains with SGD at momentum 0.99 on large tiles with a batch of one image; VOC has no
published U-Net recipe, so the schedule here is the project's poly decay with the paper's
momentum, crop 512 and a batch of 8.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """U-Net VOC preset."""
    c = base.get_config()
    c.model = "unet"
    c.model_kwargs = base.model_kwargs(c.model)
    c.crop_size = 512
    c.batch_size = 8
    c.momentum = 0.99
    c.lr = 0.01
    c.aux_weight = 0.0
    return c
