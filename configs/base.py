"""Defaults shared by every preset: PASCAL VOC 2012 + SBD, SGD with poly decay, orbax checkpoints.

A preset imports this, overrides a few fields and returns the config. The config is locked,
so a mistyped field on the command line or in a preset is an error.
"""

from ml_collections import ConfigDict, config_dict

from jaxseg import models


def model_kwargs(model: str, **overrides) -> ConfigDict:
    """Every option of registered model `model` at its default unless overridden, typed and
    locked: any option can be set on the command line and a mistyped one fails."""
    models.check_options(model, overrides)
    fields = models.option_fields(model)
    kwargs = ConfigDict()
    for option, (field_type, default) in fields.items():
        value = overrides.get(option, default)
        kwargs[option] = config_dict.FieldReference(value, field_type=field_type)
    kwargs.lock()
    return kwargs


MMSEG_DEPTHS = ("50", "101")


def mmseg_config(dataset: str, depth: str) -> ConfigDict:
    """The base config on `dataset` with the recipe mmsegmentation's ResNet-D8 configs share
    (ADE20K and Cityscapes presets); `depth`, the preset argument, must be "50" or "101"."""
    if depth not in MMSEG_DEPTHS:
        raise ValueError(f"{dataset} preset argument {depth!r}; expected one of {MMSEG_DEPTHS}")
    c = get_config()
    c.dataset = dataset
    c.scale_range = (0.5, 2.0)
    c.photometric = True
    c.cat_max_ratio = 0.75
    c.lr = 0.01
    c.lr_power = 0.9
    c.weight_decay = 5e-4
    c.aux_weight = 0.4
    c.checkpoint_every = 8000
    return c


def get_config() -> ConfigDict:
    """Return the base config; presets override fields of it."""
    c = ConfigDict()
    c.model = "pspnet"
    c.model_kwargs = model_kwargs(c.model)

    c.dataset = "voc_segmentation/2012_aug"
    c.data_dir = config_dict.placeholder(str)
    c.train_split = "train"
    c.eval_split = "val"
    c.crop_size = config_dict.FieldReference(513, field_type=object)  # int, or (height, width)
    c.scale_range = (0.5, 2.0)
    c.flip = True
    c.photometric = False
    c.cat_max_ratio = 1.0  # < 1: redraw crops one class fills more of (mmsegmentation's)
    c.num_workers = 0

    c.batch_size = 16
    c.num_steps = 30_000
    c.optimizer = "sgd"
    c.lr = 0.01
    c.lr_schedule = "poly"  # poly, cosine, step or constant (jaxseg.optim.make_schedule)
    c.lr_power = 0.9  # exponent of the poly schedule
    c.lr_step_every = 0  # the step schedule multiplies the lr by lr_step_factor this often
    c.lr_step_factor = 0.1
    c.momentum = 0.9
    c.weight_decay = 1e-4
    c.warmup_steps = 0  # linear warm-up from 0 before the schedule
    # (regex, lr multiplier, weight-decay multiplier) by parameter path ("head/classifier/bias");
    # the first match wins, unmatched parameters get (1, 1): Caffe's lr_mult and decay_mult.
    c.param_groups = ()
    c.decay_norm_and_bias = True  # False: no weight decay on 1-D parameters (biases, BN)
    c.frozen_params = ()  # regexes of parameter paths never updated, e.g. (r"^backbone/layer1",)
    c.train_batch_norm = True  # False: BatchNorm uses and keeps its running statistics
    # Average the gradients of this many steps per update (optax.MultiSteps): num_steps and
    # batch_size count micro-batches; BatchNorm statistics are per micro-batch.
    c.grad_accum_steps = 1
    # Keep ema = decay * ema + (1 - decay) * params after every step, in the checkpoint (0: off).
    c.ema_decay = 0.0
    c.grad_clip_norm = 0.0
    c.aux_weight = 0.4
    c.class_weights = config_dict.placeholder(tuple)  # one weight >= 0 per class, or None
    # (name, weight) pairs summed on every head; names: jaxseg.losses.LOSSES (cross_entropy,
    # dice_loss, lovasz_softmax_loss, focal_loss, ohem_cross_entropy, top_k_cross_entropy).
    c.losses = (("cross_entropy", 1.0),)
    c.loss_options = ConfigDict()
    c.loss_options.dice_smooth = 0.0  # added to Dice's numerator and denominator
    c.loss_options.focal_gamma = 2.0  # focusing exponent of the focal loss
    c.loss_options.ohem_thresh = 0.7  # OHEM keeps pixels whose target probability is below this
    c.loss_options.ohem_min_kept = 100_000  # ... and at least this many per image
    c.loss_options.top_k_percent = 0.25  # fraction of hardest pixels top_k_cross_entropy keeps
    # Compute dtype: "float32", or "bfloat16" (mixed precision: float32 parameters, optimizer
    # state, BatchNorm statistics, softmax and loss; bf16 activations and convolutions).
    c.dtype = "float32"
    # How convolutions are lowered (jaxseg.nn.lowering): "auto" picks exact fast formulations
    # per backend and shape, "lax" forces plain lax.conv_general_dilated; unset: the
    # JAXSEG_CONV_LOWERING environment variable, else "auto".
    c.conv_lowering = config_dict.placeholder(str)
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
    c.eval.pad_size = (512, 512)  # larger images are shrunk to fit, keeping the aspect ratio
    c.eval.resize_short_side = 0  # > 0: resize each image's short side to it first (ADE20K)
    c.eval.scales = (1.0,)  # each above 0
    c.eval.flip = False
    c.eval.sliding_window = False
    c.eval.window_size = config_dict.FieldReference(513, field_type=object)  # or (h, w)
    c.eval.window_stride = config_dict.FieldReference(342, field_type=object)  # or (h, w)
    c.eval.crf = False
    c.eval.crf_iterations = 10
    c.eval.max_examples = 0
    c.eval.num_images_to_log = 4
    c.eval.use_ema = True  # evaluate the parameters' moving average when one is kept
    c.lock()
    return c
