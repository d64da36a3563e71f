"""Defaults shared by every preset: PASCAL VOC 2012 + SBD, SGD with poly decay, orbax checkpoints.

A preset imports this, overrides a few fields and returns the config. The config is locked,
so a mistyped field on the command line or in a preset is an error.
"""

from ml_collections import ConfigDict, config_dict


def model_kwargs(**kwargs) -> ConfigDict:
    """Locked keyword arguments for `jaxseg.models.create`, so a mistyped override fails."""
    kwargs = ConfigDict(kwargs)
    kwargs.lock()
    return kwargs


def get_config() -> ConfigDict:
    """Return the base config; presets override fields of it."""
    c = ConfigDict()
    c.model = "pspnet"
    c.model_kwargs = model_kwargs()

    c.dataset = "voc_segmentation/2012_aug"
    c.data_dir = config_dict.placeholder(str)
    c.train_split = "train"
    c.eval_split = "val"
    c.crop_size = 513
    c.scale_range = (0.5, 2.0)
    c.flip = True
    c.photometric = False
    c.num_workers = 0

    c.batch_size = 16
    c.num_steps = 30_000
    c.optimizer = "sgd"
    c.lr = 0.01
    c.lr_power = 0.9
    c.momentum = 0.9
    c.weight_decay = 1e-4
    c.warmup_steps = 0
    c.grad_clip_norm = 0.0
    c.aux_weight = 0.4
    c.class_weights = config_dict.placeholder(tuple)  # one weight >= 0 per class, or None
    c.dtype = "float32"
    c.seed = 0
    c.num_devices = config_dict.placeholder(int)

    c.init_from = config_dict.placeholder(str)
    c.backbone_init = config_dict.placeholder(str)

    c.log_every = 20  # also how often processes agree on a stop signal
    c.checkpoint_every = 1000
    c.keep_checkpoints = 3
    c.eval_every = 0

    c.eval = ConfigDict()
    c.eval.batch_size = 4  # global: a multiple of the device and process counts
    c.eval.pad_size = (512, 512)
    c.eval.scales = (1.0,)  # each above 0
    c.eval.flip = False
    c.eval.sliding_window = False
    c.eval.window_size = 513
    c.eval.window_stride = 342
    c.eval.crf = False
    c.eval.crf_iterations = 10
    c.eval.max_examples = 0
    c.eval.save_predictions = False
    c.eval.num_images_to_log = 4
    c.lock()
    return c
