"""Schedules against PyTorch's LR schedulers; parameter groups move each parameter by its
preset's learning-rate and weight-decay multipliers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base, deeplab_v1, deeplab_v2, fcn32s, fcn_resnet
from jaxseg import optim
from jaxseg.build import build_model

torch = pytest.importorskip("torch")


def _torch_lrs(make_scheduler, steps: int, lr: float) -> np.ndarray:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize(
    ("fields", "make_scheduler"),
    [
        (dict(lr_schedule="poly", lr_power=0.9),
         lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=50, power=0.9)),
        (dict(lr_schedule="cosine"),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50)),
        (dict(lr_schedule="step", lr_step_every=7, lr_step_factor=0.1),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.1)),
        (dict(lr_schedule="constant"),
         lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    ],
)  # fmt: skip
def test_schedules_match_torch(fields, make_scheduler):
    config = base.get_config()
    config.update(dict(lr=0.02, num_steps=50, **fields))
    schedule = optim.make_schedule(config)
    ours = np.array([float(schedule(step)) for step in range(50)])
    np.testing.assert_allclose(ours, _torch_lrs(make_scheduler, 50, 0.02), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("total", [10, 30_000])
def test_poly_schedule_ends_at_zero_under_jit(total):
    """At and past its last step the jitted schedule is 0, not NaN: XLA computes the
    remaining fraction as 1 - step * (1 / total), which can fall just below 0."""
    config = base.get_config()
    config.update(dict(lr=0.02, num_steps=total, lr_schedule="poly"))
    schedule = jax.jit(optim.make_schedule(config))
    lrs = np.array([float(schedule(jnp.int32(step))) for step in (total - 1, total, total + 5)])
    assert np.isfinite(lrs).all() and lrs[0] > 0 and not lrs[1:].any(), lrs


def test_warmup_rises_linearly_then_follows_the_schedule():
    config = base.get_config()
    config.update(dict(lr=0.1, num_steps=40, warmup_steps=10, lr_schedule="cosine"))
    schedule = optim.make_schedule(config)
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 5, 10)], [0.0, 0.05, 0.1])
    assert float(schedule(39)) < 0.01


def _params(config, num_classes: int = 21) -> dict:
    """Random arrays shaped like the preset model's parameters (no initialisation compiled)."""
    model = build_model(config, num_classes)
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)), train=False)
    )["params"]
    leaves, treedef = jax.tree.flatten(shapes)
    rng = np.random.default_rng(0)
    return jax.tree.unflatten(
        treedef, [rng.normal(size=x.shape).astype(np.float32) for x in leaves]
    )


def _update_ratio(config, params, grads) -> dict[str, float]:
    """Per parameter path, the preset's first update over the single-group optimizer's."""
    plain = config.copy_and_resolve_references()
    plain.param_groups, plain.decay_norm_and_bias = (), True
    updates = [
        tx.update(grads, tx.init(params), params)[0]
        for tx in (optim.make_optimizer(config)[0], optim.make_optimizer(plain)[0])
    ]
    ratios = {}
    flat_ours = jax.tree_util.tree_flatten_with_path(updates[0])[0]
    for (path, ours), theirs in zip(flat_ours, jax.tree.leaves(updates[1]), strict=True):
        ratio = np.asarray(ours) / np.asarray(theirs)
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)  # one factor per array
        ratios[optim.parameter_path(path)] = float(ratio.flat[0])
    return ratios


@pytest.mark.parametrize(
    ("preset", "kwargs", "expected"),
    [
        # path: (lr multiplier, lr multiplier x decay multiplier)
        (deeplab_v1, {}, {"fc8/kernel": (10, 10), "fc8/bias": (20, 0),
                          "backbone/conv1_1/conv/bias": (2, 0),
                          "backbone/conv1_1/conv/kernel": (1, 1)}),
        (deeplab_v2, dict(depth=50, scales=(1.0,)),
         {"aspp/branch0/kernel": (10, 10), "aspp/branch3/bias": (20, 0),
          "backbone/conv1/kernel": (1, 1)}),
        (fcn_resnet, dict(depth=50, aux=True),
         {"aux_head/classifier/kernel": (10, 10), "aux_head/block/bn/scale": (10, 10),
          "head/classifier/kernel": (1, 1)}),
    ],
)  # fmt: skip
def test_preset_groups_move_by_their_multipliers(preset, kwargs, expected):
    config = preset.get_config()
    config.model_kwargs.update(kwargs)
    params = _params(config)
    grads = jax.tree.map(lambda p: np.random.default_rng(1).normal(size=p.shape), params)
    config.weight_decay = 0.0
    lr_ratios = _update_ratio(config, params, grads)
    config.weight_decay = 5e-4
    # With a zero gradient only the weight decay moves a parameter.
    decay_ratios = _update_ratio(config, params, jax.tree.map(np.zeros_like, params))
    for path, (lr_mult, decay_ratio) in expected.items():
        assert lr_ratios[path] == pytest.approx(lr_mult, rel=1e-5), path
        assert decay_ratios[path] == pytest.approx(decay_ratio, rel=1e-5, abs=1e-7), path


def test_fcn_biases_form_their_group():
    """FCN-VGG16 has 134M parameters; its labels are checked on shapes alone."""
    config = fcn32s.get_config()
    model = build_model(config, 21)
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)), train=False)
    )["params"]
    labels = optim.group_labels(shapes, config.param_groups)
    assert labels["score_fr"] == {"bias": "/bias$", "kernel": "default"}
    assert labels["backbone"]["conv1_1"]["conv"]["bias"] == "/bias$"


def test_no_decay_on_norm_and_bias():
    config = fcn_resnet.get_config()
    config.model_kwargs.update(depth=50)
    config.decay_norm_and_bias = False
    params = _params(config)
    ratios = _update_ratio(config, params, jax.tree.map(np.zeros_like, params))
    assert ratios["head/block/bn/scale"] == 0 and ratios["head/classifier/bias"] == 0
    assert ratios["head/classifier/kernel"] == pytest.approx(1.0)


def test_pattern_matching_nothing_is_an_error():
    config = fcn32s.get_config()
    config.param_groups = ((r"^classifier/", 10.0, 1.0),)
    tx, _ = optim.make_optimizer(config)
    with pytest.raises(ValueError, match="'\\^classifier/' matches no parameter"):
        tx.init(_params(config))
