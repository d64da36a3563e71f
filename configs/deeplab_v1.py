"""DeepLab v1, DeepLab-LargeFOV (arXiv 1412.7062), on VOC 2012 + SBD: atrous VGG16, output
stride 8, fc6 3x3 at rate 12 with 1024 channels.

The paper's recipe: batch 20, lr 1e-3 times 0.1 every 2,000 iterations, momentum 0.9, weight
decay 5e-4, 6,000 iterations; crop 321 as the authors' released model. As the released Caffe
model: the classifier (fc8) learns at 10x (weights) and 20x (biases), other biases at 2x, and
biases have no weight decay. Deviation: random scaling 0.5-2.0 and flips from the base recipe.
`--config.eval.crf=True` adds the paper's dense CRF at evaluation.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab-LargeFOV VGG16 VOC preset."""
    c = base.get_config()
    c.model = "deeplab_v1"
    c.model_kwargs = base.model_kwargs(c.model)
    c.crop_size = 321
    c.batch_size = 20
    c.lr = 1e-3
    c.lr_schedule = "step"
    c.lr_step_every = 2_000
    c.param_groups = (
        (r"^fc8/kernel$", 10.0, 1.0),
        (r"^fc8/bias$", 20.0, 0.0),
        (r"/bias$", 2.0, 0.0),
    )
    c.weight_decay = 5e-4
    c.num_steps = 6_000
    return c
