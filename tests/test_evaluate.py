"""`EvalOptions`: every `config.eval` setting reaches the evaluator, read once."""

import dataclasses

import pytest

from configs import base, pspnet_cityscapes
from jaxseg.evaluate import EvalOptions

# config.eval fields that are not EvalOptions fields of the same name: folded into `window`,
# or read by the caller that loads the weights.
FOLDED = {"sliding_window", "window_size", "use_ema"}


def test_every_eval_setting_has_an_option():
    config_fields = set(base.get_config().eval) - FOLDED
    option_fields = {f.name for f in dataclasses.fields(EvalOptions)} - {"window", "dataset"}
    assert config_fields == option_fields


def test_options_copy_the_config():
    config = pspnet_cityscapes.get_config()
    config.eval.scales, config.eval.flip, config.eval.max_examples = [0.75, 1.25], True, 7
    options = EvalOptions.from_config(config)
    assert options.dataset == "cityscapes"
    assert options.window == (512, 1024) and options.window_stride == (341, 683)
    assert options.scales == (0.75, 1.25) and options.flip and options.max_examples == 7
    assert options.pad_size == tuple(config.eval.pad_size)
    config.eval.sliding_window, config.eval.window_stride, config.eval.max_examples = False, 300, 0
    options = EvalOptions.from_config(config)
    assert options.window is None and options.window_stride == (300, 300)
    assert options.max_examples is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.flip = False
