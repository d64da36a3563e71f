"""DeepLab v3+ (arXiv 1802.02611) on VOC 2012 + SBD: ResNet-101, ASPP with depthwise-separable
atrous convs, decoder fusing stride-4 features; output stride 16.

The paper's VOC recipe: crop 513, lr 0.007 with poly decay (power 0.9), batch 16, 30K
iterations, random scaling 0.5-2.0 and flips; evaluate at output stride 8 with
`--config.model_kwargs.output_stride=8` for the paper's best single-scale figure.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab v3+-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "deeplab_v3plus"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, output_stride=16)
    c.crop_size = 513
    c.lr = 0.007
    c.num_steps = 30_000
    return c
