"""DeepLab v2 (arXiv 1606.00915) on VOC 2012 + SBD: ResNet-101 at output stride 8, ASPP-L,
multi-scale inputs (1, 0.75, 0.5) fused by max.

The authors' VOC recipe: crop 321, batch 10, lr 2.5e-4 with poly decay (power 0.9), momentum
0.9, weight decay 5e-4, 20K iterations, random scaling 0.5-1.5 and flips; the loss sums every
scale's cross-entropy and the fused one's (`aux_weight=1`); the ASPP classifier learns at 10x
(weights) and 20x (biases, without weight decay). `--config.eval.crf=True` adds the paper's
dense CRF at evaluation.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab v2-ResNet101 (ASPP-L, MSC) VOC preset."""
    c = base.get_config()
    c.model = "deeplab_v2"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, scales=(1.0, 0.75, 0.5))
    c.crop_size = 321
    c.scale_range = (0.5, 1.5)
    c.batch_size = 10
    c.lr = 2.5e-4
    c.param_groups = ((r"^aspp/.*/kernel$", 10.0, 1.0), (r"^aspp/.*/bias$", 20.0, 0.0))
    c.weight_decay = 5e-4
    c.num_steps = 20_000
    c.aux_weight = 1.0
    return c
