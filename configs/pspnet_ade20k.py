"""PSPNet on ADE20K (150 classes): mmsegmentation's recipe, ResNet-101 at output stride 8.

mmsegmentation's `pspnet_r101-d8_4xb4-160k_ade20k-512x512`: crop 512, batch 16, 160K iterations,
SGD lr 0.01 with poly decay (power 0.9), momentum 0.9, weight decay 5e-4, auxiliary loss 0.4,
random scale 0.5-2.0, flips, photometric distortion, class-balanced crops (cat_max_ratio 0.75);
evaluation with the short side resized to 512. Its model zoo (configs/pspnet/README.md)
publishes 44.39 val mIoU single scale (45.35 multi-scale + flip); with ResNet-50
(`--config=pspnet_ade20k:50`) 42.48 (43.44).

Deviations: mmsegmentation's ResNet-V1c (three-conv stem) is replaced by torchvision's ResNet;
training scales each image by 0.5-2.0 of its own size where mmsegmentation first rescales it
to fit 2048x512; and mIoU is counted at the evaluated size (label resized nearest) rather
than at the original one. Images whose resized size exceeds 1024x1024 are shrunk to fit.
"""

from ml_collections import ConfigDict

from configs import base


def ade20k_config(depth: str = "101") -> ConfigDict:
    """The ADE20K recipe shared by the PSPNet and DeepLab v3 presets; `depth` "50" or "101"."""
    c = base.mmseg_config("ade20k", depth)
    c.crop_size = 512
    c.batch_size = 16
    c.num_steps = 160_000
    c.eval.resize_short_side = 512
    c.eval.pad_size = (1024, 1024)
    return c


def get_config(depth: str = "101") -> ConfigDict:
    """PSPNet-ResNet101 (or :50) ADE20K preset."""
    c = ade20k_config(depth)
    c.model = "pspnet"
    c.model_kwargs = base.model_kwargs(c.model, depth=int(depth), output_stride=8, aux=True)
    return c
