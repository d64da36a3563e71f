"""Frozen BatchNorm, frozen parameters and gradient accumulation (with mid-cycle resume)."""

import jax
import numpy as np
import optax
import pytest
from flax import linen as nn

from configs import base, quickstart
from jaxseg import checkpoint, data, losses, optim, sharding
from jaxseg.build import build_model
from jaxseg.data import pipeline
from jaxseg.nn import norm
from jaxseg.train import create_train_state, make_train_step
from tests.test_train import TINY_MODEL

torch = pytest.importorskip("torch")


def test_frozen_batch_norm_normalises_with_running_statistics_as_torch_eval():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 6, 3)).astype(np.float32) * 2 + 1
    stats = {"mean": rng.normal(size=3).astype(np.float32), "var": rng.uniform(0.5, 2, 3)}
    params = {"scale": rng.normal(size=3).astype(np.float32), "bias": rng.normal(size=3)}
    variables = {"params": params, "batch_stats": jax.tree.map(np.float32, stats)}
    with norm.frozen_statistics():
        y, updates = norm.BatchNorm().apply(
            variables, x, use_running_average=False, mutable=["batch_stats"]
        )
    reference = torch.nn.BatchNorm2d(3).eval()
    with torch.no_grad():
        reference.running_mean.copy_(torch.from_numpy(stats["mean"]))
        reference.running_var.copy_(torch.from_numpy(np.float32(stats["var"])))
        reference.weight.copy_(torch.from_numpy(params["scale"]))
        reference.bias.copy_(torch.from_numpy(np.float32(params["bias"])))
        expected = reference(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(y), expected.numpy(), rtol=1e-5, atol=1e-5)
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], variables["batch_stats"])


def test_train_step_with_frozen_batch_norm_keeps_statistics():
    config = quickstart.get_config()
    config.model_kwargs.update(TINY_MODEL)
    config.dataset, config.crop_size, config.batch_size = "shapes/tiny", 48, 2
    config.train_batch_norm = False
    num_classes, _ = data.dataset_info(config.dataset)
    model, mesh = build_model(config, num_classes), sharding.make_mesh(1)
    tx, schedule = optim.make_optimizer(config)
    state, shardings = create_train_state(model, tx, config, mesh)
    before = jax.device_get((state.params, state.batch_stats))
    step = make_train_step(model, tx, schedule, config, shardings, mesh)
    source = data.load_source(config.dataset, "train")
    batch = next(iter(pipeline.train_dataset(source, global_batch_size=2, crop_size=48)))
    state, _ = step(state, sharding.to_global(batch, mesh))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.batch_stats), before[1])
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), jax.device_get(state.params),
                         before[0])  # fmt: skip
    assert all(jax.tree.leaves(moved))


class _TinyNet(nn.Module):
    """Two convolutions, no BatchNorm: its gradient is a plain mean over pixels."""

    @nn.compact
    def __call__(self, x):
        return nn.Conv(3, (3, 3))(nn.relu(nn.Conv(4, (3, 3))(x)))


def _accumulation_setup():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 10, 12, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(8, 10, 12))  # no ignored pixels: equal weight per batch
    model = _TinyNet()
    params = model.init(jax.random.PRNGKey(0), images[:1])["params"]

    def grad_fn(params, x, y):
        return jax.grad(lambda p: losses.cross_entropy(model.apply({"params": p}, x), y))(params)

    return jax.jit(grad_fn), params, images, labels


def _config(accum: int):
    config = base.get_config()
    config.update(dict(lr=0.1, num_steps=40 * accum, grad_accum_steps=accum, weight_decay=1e-3))
    return config


def _micro_steps(tx, grad_fn, params, opt_state, images, labels, indices):
    for i in indices:
        x, y = images[2 * i : 2 * i + 2], labels[2 * i : 2 * i + 2]
        updates, opt_state = tx.update(grad_fn(params, x, y), opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, opt_state


def test_four_micro_batches_equal_one_batch_of_four_times_the_size(tmp_path):
    grad_fn, params, images, labels = _accumulation_setup()
    big_tx, _ = optim.make_optimizer(_config(1))
    updates, _ = big_tx.update(grad_fn(params, images, labels), big_tx.init(params), params)
    expected = optax.apply_updates(params, updates)

    tx, _ = optim.make_optimizer(_config(4))
    state = tx.init(params)
    mid_params, mid_state = _micro_steps(tx, grad_fn, params, state, images, labels, [0, 1])
    jax.tree.map(np.testing.assert_array_equal, mid_params, params)  # no update mid-cycle
    # Resume from a checkpoint taken after two of the four micro-batches.
    manager = checkpoint.make_manager(tmp_path, async_save=False)
    checkpoint.save(manager, 2, {"params": mid_params, "opt_state": mid_state})
    restored = checkpoint.restore(
        manager, checkpoint.abstract_like({"params": mid_params, "opt_state": mid_state})
    )
    manager.close()
    resumed, _ = _micro_steps(
        tx, grad_fn, restored["params"], restored["opt_state"], images, labels, [2, 3]
    )
    straight, _ = _micro_steps(tx, grad_fn, params, state, images, labels, [0, 1, 2, 3])
    jax.tree.map(np.testing.assert_array_equal, resumed, straight)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 straight, expected)  # fmt: skip
    assert not np.allclose(straight["Conv_0"]["kernel"], params["Conv_0"]["kernel"])


def test_frozen_parameters_do_not_move():
    grad_fn, params, images, labels = _accumulation_setup()
    config = _config(1)
    config.frozen_params = (r"^Conv_0/",)
    tx, _ = optim.make_optimizer(config)
    updated, _ = _micro_steps(tx, grad_fn, params, tx.init(params), images, labels, [0])
    jax.tree.map(np.testing.assert_array_equal, updated["Conv_0"], params["Conv_0"])
    assert not np.allclose(updated["Conv_1"]["kernel"], params["Conv_1"]["kernel"])


def test_ema_follows_its_formula_and_is_what_evaluation_loads(tmp_path):
    config = quickstart.get_config()
    config.model_kwargs.update(TINY_MODEL)
    config.dataset, config.crop_size, config.batch_size = "shapes/tiny", 48, 2
    config.ema_decay = 0.6
    num_classes, _ = data.dataset_info(config.dataset)
    model, mesh = build_model(config, num_classes), sharding.make_mesh(1)
    tx, schedule = optim.make_optimizer(config)
    state, shardings = create_train_state(model, tx, config, mesh)
    step = make_train_step(model, tx, schedule, config, shardings, mesh)
    source = data.load_source(config.dataset, "train")
    batches = iter(pipeline.train_dataset(source, global_batch_size=2, crop_size=48))
    expected = jax.device_get(state.params)
    for _ in range(3):
        state, _ = step(state, sharding.to_global(next(batches), mesh))
        params = jax.device_get(state.params)
        expected = jax.tree.map(lambda e, p: 0.6 * e + 0.4 * p, expected, params)
    ema = jax.device_get(state.ema_params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), ema, expected)
    assert not np.allclose(jax.tree.leaves(ema)[0], jax.tree.leaves(params)[0])

    manager = checkpoint.make_manager(tmp_path / "checkpoints", async_save=False)
    checkpoint.save(manager, 3, state)
    manager.close()
    for use_ema, wanted in ((True, ema), (False, params)):
        loaded = checkpoint.load_variables(tmp_path, use_ema=use_ema)["params"]
        jax.tree.map(np.testing.assert_array_equal, jax.device_get(loaded), wanted)
