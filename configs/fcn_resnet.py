"""torchvision's FCN (`fcn_resnet101`; arXiv 1411.4038's head on a dilated ResNet) on VOC 2012 +
SBD: ResNet-101 at output stride 8, FCNHead, auxiliary FCNHead on layer3.

torchvision's reference recipe (references/segmentation/train.py and its README): batch 32
(4 per GPU on 8 GPUs), lr 0.02 with poly decay (power 0.9), momentum 0.9, weight decay 1e-4,
auxiliary loss weight 0.5, the auxiliary head at 10x the learning rate, 30 epochs (about 10K
steps on the 10,582 train_aug images), random scaling 0.5-2.0, flips and 480 crops. Their
published weights are trained on COCO (the 20 VOC classes); here the dataset is the base VOC
one. `depth=50` gives fcn_resnet50.
"""

from ml_collections import ConfigDict

from configs import base


def get_config() -> ConfigDict:
    """torchvision FCN-ResNet101 VOC preset."""
    c = base.get_config()
    c.model = "fcn_resnet"
    c.model_kwargs = base.model_kwargs(c.model, depth=101, aux=True)
    c.crop_size = 480
    c.batch_size = 32
    c.lr = 0.02
    c.aux_weight = 0.5
    c.param_groups = ((r"^aux_head/", 10.0, 1.0),)
    c.num_steps = 10_000
    return c
