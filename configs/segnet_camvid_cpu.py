"""A narrow SegNet trained on CamVid in about 15-20 minutes on 2 CPU cores (no accelerator).

`segnet_camvid` scaled down: a quarter of the channels (width 16), frames at half size
(180x240) with random 176x176 crops and flips, batch 8, 500 steps (about 11 epochs) from
scratch. Kept: the architecture, SGD with momentum 0.9 and weight decay 5e-4, the ignored
unlabelled class, evaluation on `val` against the full-resolution labels (the logits of the
half-size frame are resized back to 360x480). Changed for the short budget: lr 0.05 with poly
decay instead of a fixed rate, and no class weights: in 500 steps SegNet-Tutorial's
median-frequency weights make the net paint buildings and trees as signs and pedestrians
(benchmarks/RESULTS.md, SegNet on CamVid). `--config=segnet_camvid_cpu:weighted` keeps those
weights.
"""

from ml_collections import ConfigDict

from configs import segnet_camvid

WEIGHTINGS = ("none", "weighted")


def get_config(weighting: str = "none") -> ConfigDict:
    """Narrow SegNet on half-size CamVid, sized for a laptop CPU; `weighting` is "none" or
    "weighted" (SegNet-Tutorial's class weights)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(
            f"segnet_camvid_cpu: preset argument {weighting!r}; expected one of {WEIGHTINGS}"
        )
    c = segnet_camvid.get_config()
    c.model_kwargs.width = 16
    if weighting == "none":
        c.class_weights = None
    c.scale_range = (0.5, 0.5)
    c.crop_size = 176
    c.flip = True
    c.batch_size = 8
    c.lr = 0.05
    c.lr_power = 0.9
    c.num_steps = 500
    c.log_every = 20
    c.checkpoint_every = 200
    c.eval_every = 0  # eval.py scores the final checkpoint
    c.eval.batch_size = 8
    c.eval.scales = (0.5,)
    return c
