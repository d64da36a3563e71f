"""SegNet (arXiv 1511.00561) on VOC 2012 + SBD: VGG16-BN encoder, decoder unpooling with the
encoder's max-pool indices.

SegNet's recipe (SegNet-Tutorial's segnet_solver.prototxt): SGD, fixed lr 1e-3, momentum 0.9,
weight decay 5e-4, batch 4, 40K iterations (the paper states lr 0.1 and batch 12). VOC images
are cropped to 480 (padded with the ignore label); base random scaling and flips. The CamVid
benchmark preset is `segnet_camvid`.
"""

from ml_collections import ConfigDict

from configs import base


def segnet_config() -> ConfigDict:
    """SegNet-Tutorial's solver settings on the base dataset."""
    c = base.get_config()
    c.model = "segnet"
    c.model_kwargs = base.model_kwargs(c.model)
    c.crop_size = 480
    c.batch_size = 4
    c.lr = 1e-3
    c.lr_power = 0.0  # fixed learning rate
    c.weight_decay = 5e-4
    c.num_steps = 40_000
    return c


def get_config() -> ConfigDict:
    """SegNet VGG16-BN VOC preset."""
    return segnet_config()
