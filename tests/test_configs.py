"""Every preset in configs/ is locked, names a registered model with options it accepts, and a
known dataset; `--config=NAME` resolves to it."""

import importlib
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

import configs
from jaxseg import build, data, models

REPO = Path(__file__).resolve().parents[1]

PRESETS = configs.preset_names()


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_consistent(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    assert config.is_locked
    assert config.model in models.names()
    assert set(config.model_kwargs) == set(models.option_fields(config.model))
    if config.dataset == f"{data.FOLDER}:":  # the folder is given on the command line
        with pytest.raises(ValueError, match="--config.dataset=folder:DIR"):
            data.dataset_info(config.dataset)
    else:
        assert data.dataset_info(config.dataset)[0] > 1
    with pytest.raises(AttributeError):
        config.learning_rate = 0.1


def test_every_model_has_a_preset():
    configured = {importlib.import_module(f"configs.{n}").get_config().model for n in PRESETS}
    assert set(models.names()) <= configured


def test_config_names_resolve_to_files():
    resolved = configs.resolve_argv(["train.py", "--config=pspnet:x", "--other=1"])
    assert resolved[1] == f"--config={configs.DIR / 'pspnet.py'}:x"
    assert resolved[2] == "--other=1"


@pytest.mark.parametrize(
    "name", ["pspnet_ade20k", "deeplab_v3_ade20k", "pspnet_cityscapes", "deeplab_v3_cityscapes"]
)
def test_benchmark_presets_take_the_resnet_depth(name):
    module = importlib.import_module(f"configs.{name}")
    assert module.get_config().model_kwargs.depth == 101
    assert module.get_config("50").model_kwargs.depth == 50
    with pytest.raises(ValueError, match="expected one of"):
        module.get_config("34")


def _parsed_preset(name: str, *overrides: str):
    """Preset `name` with `--config.FIELD=VALUE` overrides parsed as train.py parses them."""
    argv = ["train.py", f"--config={configs.DIR / name}.py", *overrides]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, flag_values=values, sys_argv=argv)
    values(argv)
    return values.config


def _another_value(field_type: type, default: object) -> tuple[str, object]:
    """A command-line literal of `field_type`, and its value, that differs from `default`."""
    examples = {int: 3, float: 0.25, bool: not default, str: "other", tuple: (1, 2)}
    return str(examples[field_type]), examples[field_type]


@pytest.mark.parametrize("name", PRESETS)
def test_every_model_option_is_overridable_from_the_preset(name):
    model = importlib.import_module(f"configs.{name}").get_config().model
    fields = models.option_fields(model)
    overrides = {o: _another_value(t, d) for o, (t, d) in fields.items() if t is not object}
    config = _parsed_preset(
        name, *(f"--config.model_kwargs.{o}={literal}" for o, (literal, _) in overrides.items())
    )
    for option, (_, value) in overrides.items():
        assert config.model_kwargs[option] == value, option


def test_an_override_on_a_preset_reaches_the_model():
    config = _parsed_preset("fcn8s", "--config.model_kwargs.width=4",
                            "--config.model_kwargs.fc_features=8")  # fmt: skip
    model = build.build_model(config, num_classes=3)
    variables = jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 32, 32, 3)))
    widths = {leaf.shape[-1] for leaf in jax.tree.leaves(variables["params"]) if leaf.ndim == 4}
    assert widths == {3, 8} | {4 * 2**stage for stage in range(4)}  # classes, fc, VGG stages


def test_misspelt_model_option_is_one_line_naming_the_options(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "--config=segnet", f"--workdir={tmp_path}",
         "--config.model_kwargs.widht=8"], cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "config.model_kwargs has no field 'widht'" in lines[0] and "'width'" in lines[0]
