"""DeepLab v3-ResNet-50 at output stride 16 for a folder of your own images and masks.

    python train.py --config=folder --config.dataset=folder:DIR --workdir=runs/mine

DIR holds images/<split>/, masks/<split>/ and classes.txt (see `jaxseg.data.folder`); the
number of classes comes from classes.txt. Crop 512, batch 8, 20K iterations, SGD lr 0.01 with
poly decay, random scale 0.5-2.0, flips, class-balanced crops (cat_max_ratio 0.75); images
larger than 1024x1024 are evaluated shrunk to fit. Start from ImageNet weights with
`--config.backbone_init=...` (see README, "Pretrained weights from PyTorch").
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """DeepLab v3-ResNet50 OS16 preset for `folder:DIR` datasets."""
    c = base.get_config()
    c.model = "deeplab_v3"
    c.model_kwargs = base.model_kwargs(
        c.model, depth=50, output_stride=16, multi_grid=(1, 2, 4), width=64, aspp_features=256
    )
    c.dataset = "folder:"  # set with --config.dataset=folder:DIR
    c.crop_size = 512
    c.cat_max_ratio = 0.75
    c.batch_size = 8
    c.num_steps = 20_000
    c.lr = 0.01
    c.checkpoint_every = 2000
    c.eval.pad_size = (1024, 1024)
    return c
