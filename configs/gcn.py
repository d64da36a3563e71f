"""GCN, "Large Kernel Matters" (arXiv 1703.02719) on VOC 2012 + SBD: ResNet-101, k = 15.

The paper's recipe: inputs padded to 512 x 512, batch 1, SGD with momentum 0.99 and weight
decay 5e-4, flips as the only augmentation. The paper gives no learning rate or schedule:
1e-3 at momentum 0.99 takes the same effective step, lr / (1 - momentum), as the base
config's 0.01 at 0.9, decayed by poly over the base's 30K steps. Not reproduced: the
paper's COCO pre-training stage.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """GCN-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "gcn"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, kernel_size=15)
    c.crop_size = 512
    c.scale_range = (1.0, 1.0)
    c.batch_size = 1
    c.lr = 1e-3
    c.momentum = 0.99
    c.weight_decay = 5e-4
    return c
