"""Dilated front end (arXiv 1511.07122) on VOC 2012 + SBD: VGG16 without pool4/pool5, conv5 at
dilation 2, fc6 at dilation 4; output stride 8.

The paper's recipe (Sec. 4): SGD, batch 14, lr 1e-3, momentum 0.9, 60K iterations. Chosen
here, as the paper does not state them: crop 500 (VOC's largest side), weight decay 5e-4, the
base recipe's poly decay (power 0.9), random scaling and flips.
"""

from ml_collections import ConfigDict

from configs import base


def frontend_config(model: str, num_steps: int, **model_kwargs) -> ConfigDict:
    """The paper's front-end training recipe for `model`."""
    c = base.get_config()
    c.model = model
    c.model_kwargs = base.model_kwargs(c.model, **model_kwargs)
    c.crop_size = 500
    c.batch_size = 14
    c.lr = 1e-3
    c.weight_decay = 5e-4
    c.num_steps = num_steps
    return c


def get_config() -> ConfigDict:
    """Dilated VGG16 front-end VOC preset."""
    return frontend_config("dilated_frontend", num_steps=60_000)
