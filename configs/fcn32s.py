"""FCN-32s (arXiv 1411.4038) on VOC 2012 + SBD: VGG16 with fc6/fc7 as convolutions, 32x learned
upsampling.

The paper's recipe (Sec. 4.3): whole images (crop 500 = VOC's largest side, padded with the
ignore label; no scaling or mirroring: "no noticeable improvement"), batch 20, fixed lr 1e-4,
momentum 0.9, weight decay 5e-4, class scorer zero-initialised. The paper gives no iteration
count; the reference implementation (fcn.berkeleyvision.org) trains each net for 100,000
single-image iterations, 5,000 steps at batch 20. Initialise the trunk from ImageNet VGG16
with `--config.backbone_init=...`. As the reference solver: biases learn at 2x without weight
decay.
"""

from ml_collections import ConfigDict

from configs import base


def fcn_config(model: str, lr: float) -> ConfigDict:
    """The paper's FCN-VGG16 VOC recipe for `model` at learning rate `lr`."""
    c = base.get_config()
    c.model = model
    c.model_kwargs = base.model_kwargs(c.model)
    c.crop_size = 500
    c.scale_range = (1.0, 1.0)
    c.flip = False
    c.batch_size = 20
    c.lr = lr
    c.lr_schedule = "constant"
    c.param_groups = ((r"/bias$", 2.0, 0.0),)
    c.weight_decay = 5e-4
    c.num_steps = 5_000
    return c


def get_config() -> ConfigDict:
    """FCN-32s VGG16 VOC preset."""
    return fcn_config("fcn32s", lr=1e-4)
