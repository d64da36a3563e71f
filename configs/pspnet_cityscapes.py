"""PSPNet on Cityscapes (19 classes): mmsegmentation's recipe, ResNet-101 at output stride 8.

mmsegmentation's `pspnet_r101-d8_4xb2-80k_cityscapes-512x1024`: crops 512x1024, batch 8, 80K
iterations, SGD lr 0.01 with poly decay (power 0.9), momentum 0.9, weight decay 5e-4,
auxiliary loss 0.4, random scale 0.5-2.0, flips, photometric distortion, class-balanced crops
(cat_max_ratio 0.75). Its model zoo (configs/pspnet/README.md) publishes 79.76 val mIoU single
scale (81.01 multi-scale + flip); with ResNet-50 (`--config=pspnet_cityscapes:50`) 78.55
(79.79). Evaluation is on full 1024x2048 frames by 512x1024 sliding windows (stride 341x683);
mmsegmentation's figures for these configs come from whole-frame inference
(`--config.eval.sliding_window=False`).

Deviations: torchvision's ResNet instead of mmsegmentation's ResNet-V1c (three-conv stem).
"""

from ml_collections import ConfigDict

from configs import base


def cityscapes_config(depth: str = "101") -> ConfigDict:
    """The Cityscapes recipe shared by the PSPNet and DeepLab v3 presets; `depth` "50"/"101"."""
    c = base.mmseg_config("cityscapes", depth)
    c.crop_size = (512, 1024)
    c.batch_size = 8
    c.num_steps = 80_000
    c.eval.batch_size = 2
    c.eval.pad_size = (1024, 2048)
    c.eval.sliding_window = True
    c.eval.window_size = (512, 1024)
    c.eval.window_stride = (341, 683)
    return c


def get_config(depth: str = "101") -> ConfigDict:
    """PSPNet-ResNet101 (or :50) Cityscapes preset."""
    c = cityscapes_config(depth)
    c.model = "pspnet"
    c.model_kwargs = base.model_kwargs(c.model, depth=int(depth), output_stride=8, aux=True)
    return c
