"""DeepLab v3 (arXiv 1706.05587) on VOC 2012 + SBD: ResNet-101, ASPP with image pooling, OS 8.

The paper's VOC recipe: crop 513, batch 16, lr 0.007 poly (power 0.9), multi-grid (1, 2, 4),
30K iterations; output stride 16 trains faster and 8 evaluates best (`model_kwargs.output_stride`).
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab v3-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "deeplab_v3"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, output_stride=8, multi_grid=(1, 2, 4))
    c.crop_size = 513
    c.lr = 0.007
    c.num_steps = 30_000
    return c
