"""RefineNet (arXiv 1611.06612) on VOC 2012 + SBD: 4-cascaded RefineNet on ResNet-101.

The authors' training code: crop 400, batch 1, random scaling 0.7-1.3 and flips, SGD with
momentum 0.9 and weight decay 5e-4 at lr 5e-4 for about 70 epochs of 1000-2000 crops, then
5e-5. Here the two constant stages become one poly decay from 5e-4 over 100K steps; not
reproduced: the backbone's 0.1x learning rate and its frozen BatchNorm.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """RefineNet-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "refinenet"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, features=256, pooling_stages=4)
    c.crop_size = 400
    c.batch_size = 1
    c.lr = 5e-4
    c.weight_decay = 5e-4
    c.num_steps = 100_000
    c.scale_range = (0.7, 1.3)
    return c
