"""DeepLab v1, DeepLab-LargeFOV (arXiv 1412.7062), on VOC 2012 + SBD: atrous VGG16, output
stride 8, fc6 3x3 at rate 12 with 1024 channels.

The paper's recipe: batch 20, lr 1e-3, momentum 0.9, weight decay 5e-4, 6,000 iterations;
crop 321 as the authors' released model. Deviations: poly decay (power 0.9) instead of the
paper's x0.1 every 2,000 iterations, one learning rate for all layers (the paper gives the
classifier 10x), random scaling 0.5-2.0 and flips from the base recipe.
`--config.eval.crf=True` adds the paper's dense CRF at evaluation.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab-LargeFOV VGG16 VOC preset."""
    c = base.get_config()
    c.model = "deeplab_v1"
    c.model_kwargs = base.model_kwargs()
    c.crop_size = 321
    c.batch_size = 20
    c.lr = 1e-3
    c.weight_decay = 5e-4
    c.num_steps = 6_000
    return c
