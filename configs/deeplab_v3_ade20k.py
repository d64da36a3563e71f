"""DeepLab v3 on ADE20K (150 classes): mmsegmentation's recipe, ResNet-101 at output stride 8.

mmsegmentation's `deeplabv3_r101-d8_4xb4-160k_ade20k-512x512`, trained and evaluated as
`pspnet_ade20k` describes (crop 512, batch 16, 160K iterations, lr 0.01 poly 0.9, short side
512 at evaluation), with ASPP rates (12, 24, 36), no multi-grid and an auxiliary FCN head
(weight 0.4). Its model zoo (configs/deeplabv3/README.md) publishes 45.00 val mIoU single
scale (46.66 multi-scale + flip); with ResNet-50 (`--config=deeplab_v3_ade20k:50`) 42.66
(44.09). Deviations as in `pspnet_ade20k`.
"""

from ml_collections import ConfigDict

from configs import base
from configs.pspnet_ade20k import ade20k_config


def get_config(depth: str = "101") -> ConfigDict:
    """DeepLab v3-ResNet101 (or :50) ADE20K preset."""
    c = ade20k_config(depth)
    c.model = "deeplab_v3"
    c.model_kwargs = base.model_kwargs(
        c.model, depth=int(depth), output_stride=8, multi_grid=None, aux=True
    )
    return c
