"""Every preset in configs/ is locked, names a registered model with options it accepts, and a
known dataset; `--config=NAME` resolves to it."""

import importlib
from pathlib import Path

import pytest

from jaxseg import cli, data, models

PRESETS = sorted(p.stem for p in cli.CONFIGS_DIR.glob("*.py") if p.stem not in ("__init__", "base"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_consistent(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    assert config.is_locked
    assert config.model in models.names()
    assert set(config.model_kwargs) <= set(models.options(config.model))
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
    resolved = cli.resolve_config_argv(["train.py", "--config=pspnet:x", "--other=1"])
    assert resolved[1] == f"--config={Path(cli.CONFIGS_DIR) / 'pspnet.py'}:x"
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
