"""DeepLab v3 on Cityscapes (19 classes): mmsegmentation's recipe, ResNet-101, output stride 8.

mmsegmentation's `deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024`, trained and evaluated as
`pspnet_cityscapes` describes (crops 512x1024, batch 8, 80K iterations, lr 0.01 poly 0.9), with
ASPP rates (12, 24, 36), no multi-grid and an auxiliary FCN head (weight 0.4). Its model zoo
(configs/deeplabv3/README.md) publishes 80.20 val mIoU single scale (81.21 multi-scale + flip);
with ResNet-50 (`--config=deeplab_v3_cityscapes:50`) 79.32 (80.57). Deviations as in
`pspnet_cityscapes`.
"""

from ml_collections import ConfigDict

from configs import base
from configs.pspnet_cityscapes import cityscapes_config


def get_config(depth: str = "101") -> ConfigDict:
    """DeepLab v3-ResNet101 (or :50) Cityscapes preset."""
    c = cityscapes_config(depth)
    c.model = "deeplab_v3"
    c.model_kwargs = base.model_kwargs(
        c.model, depth=int(depth), output_stride=8, multi_grid=None, aux=True
    )
    return c
