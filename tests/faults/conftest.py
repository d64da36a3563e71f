"""Shared set-up of the fault-injection tests: a tiny quick-start run and its final weights."""

import os

import jax
import pytest

from jaxseg.train import train_and_evaluate
from tests.test_train import _flat_params, _tiny_config

STEPS = 6
_CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")


def tiny_config(**fields):
    """The quick-start recipe shrunk to seconds: 6 steps, narrow model, 48 px crops."""
    config = _tiny_config()
    config.num_steps, config.log_every, config.checkpoint_every, config.eval_every = STEPS, 1, 3, 0
    config.eval.batch_size, config.eval.pad_size, config.eval.max_examples = 2, (144, 144), 2
    for name, value in fields.items():
        config[name] = value
    return config


def assert_same_params(workdir, expected: dict) -> None:
    """The newest checkpoint in `workdir` holds exactly `expected`."""
    actual = _flat_params(workdir)
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert (actual[name] == value).all(), name


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """Runs of one config compile identical programs; compile them once per test session, in
    this process and in the training processes the tests start."""
    cache = str(tmp_path_factory.mktemp("xla_cache"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    saved = {name: os.environ.get(name) for name in _CACHE_ENV}
    os.environ.update(dict(zip(_CACHE_ENV, (cache, "0"), strict=True)))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def reference_params(tmp_path_factory) -> dict:
    """Final parameters of an uninterrupted in-process run of `tiny_config()`."""
    workdir = tmp_path_factory.mktemp("straight")
    train_and_evaluate(tiny_config(), workdir)
    return _flat_params(workdir)
