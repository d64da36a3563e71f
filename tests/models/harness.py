"""One harness for every model: forward shapes at odd sizes under jit, finite gradients in
train mode, parameter counts, and a short real training run on `shapes`.

A family's test module subclasses `ModelChecks` as `Test<Family>` with its own narrow-width
overrides, so every model gets the same checks without repeating them.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import quickstart
from jaxseg import data, losses, models, sharding
from jaxseg.data import pipeline
from jaxseg.evaluate import Evaluator
from jaxseg.train import create_train_state, make_train_step

NUM_CLASSES = 5
ODD_SIZES = ((97, 131), (64, 48))


def init_variables(model, size: tuple[int, int] = (64, 64), batch: int = 1) -> dict:
    """Variables of `model` initialised on a zero batch of `size`."""
    images = jnp.zeros((batch, *size, 3), jnp.float32)
    return jax.jit(lambda rng: model.init({"params": rng, "dropout": rng}, images))(
        jax.random.PRNGKey(0)
    )


def check_forward(name: str, overrides: dict, sizes: Sequence[tuple[int, int]] = ODD_SIZES):
    """Eval-mode logits under jit are (B, H, W, classes) at the input size, and finite."""
    model = models.create(name, num_classes=NUM_CLASSES, **overrides)
    variables = init_variables(model)
    apply = jax.jit(lambda v, x: model.apply(v, x))
    rng = np.random.default_rng(0)
    for height, width in sizes:
        images = rng.normal(size=(2, height, width, 3)).astype(np.float32)
        logits = apply(variables, images)
        assert logits.shape == (2, height, width, NUM_CLASSES), (name, logits.shape)
        assert bool(jnp.all(jnp.isfinite(logits))), name


def check_gradients(name: str, overrides: dict, size: tuple[int, int] = (65, 57)):
    """Train mode returns logits (and aux heads) at input size; every gradient is finite and
    the loss reaches every parameter."""
    model = models.create(name, num_classes=NUM_CLASSES, **overrides)
    variables = init_variables(model)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, *size, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=(2, *size)).astype(np.int32)

    def loss_fn(params):
        outputs, _ = model.apply(
            {**variables, "params": params}, images, train=True, mutable=["batch_stats"],
            rngs={"dropout": jax.random.PRNGKey(2)},
        )
        for output in losses.split_outputs(outputs)[1] + (losses.split_outputs(outputs)[0],):
            assert output.shape == (2, *size, NUM_CLASSES), (name, output.shape)
        return losses.segmentation_loss(outputs, labels)[0]

    grads = jax.jit(jax.grad(loss_fn))(variables["params"])
    leaves = jax.tree_util.tree_leaves_with_path(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for _, g in leaves), name
    dead = [jax.tree_util.keystr(p) for p, g in leaves if not bool(jnp.any(g != 0))]
    assert not dead, f"{name}: parameters the loss never reaches: {dead[:5]}"


def parameter_count(name: str, size: tuple[int, int] = (64, 64), **overrides) -> int:
    """Number of parameters of the full-size model, from shapes alone (nothing allocated)."""
    model = models.create(name, **overrides)
    images = jax.ShapeDtypeStruct((1, *size, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), images)
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def check_learns(name: str, overrides: dict, *, steps: int = 60, lr: float = 0.02,
                 crop_size: int = 64) -> tuple[float, float]:
    """Train `steps` SGD steps on `shapes/tiny`; val mIoU must rise above its initial value.

    Returns (initial, final) mIoU.
    """
    config = quickstart.get_config()
    config.unlock()
    config.model, config.model_kwargs = name, overrides
    config.dataset, config.crop_size = "shapes/tiny", crop_size
    config.num_steps, config.lr = steps, lr
    config.batch_size, config.eval.batch_size = 4, 4
    config.lock()
    num_classes, class_names = data.dataset_info(config.dataset)
    model = models.create(name, num_classes=num_classes, **overrides)
    mesh = sharding.make_mesh(1)
    schedule = optax.polynomial_schedule(lr, 0.0, 0.9, steps)
    tx = optax.sgd(schedule, momentum=0.9)
    state, shardings = create_train_state(model, tx, config, mesh)
    step_fn = make_train_step(model, tx, schedule, config, shardings, mesh)
    train_source = data.load_source(config.dataset, "train")
    evaluator = Evaluator(model, config, mesh, data.load_source(config.dataset, "val"),
                          class_names)
    initial = evaluator.run(state.variables)["mean_iou"]
    batches = iter(pipeline.train_dataset(train_source, global_batch_size=4, crop_size=crop_size,
                                          scale_range=(0.5, 0.75)))
    for _ in range(steps):
        state, metrics = step_fn(state, sharding.to_global(next(batches), mesh))
    assert np.isfinite(metrics["loss"]), name
    final = evaluator.run(state.variables)["mean_iou"]
    assert final > initial, f"{name}: val mIoU {initial:.3f} -> {final:.3f} did not improve"
    return initial, final


class ModelChecks:
    """The checks every registered model passes; `NARROW` maps model names to the overrides
    that make them small enough for CI. `tests/models/conftest.py` parametrizes
    `model_name` over its keys."""

    NARROW: dict[str, dict] = {}

    def test_forward_at_odd_sizes(self, model_name):
        check_forward(model_name, self.NARROW[model_name])

    def test_gradients_reach_every_parameter(self, model_name):
        check_gradients(model_name, self.NARROW[model_name])

    def test_learns_on_shapes(self, model_name):
        check_learns(model_name, self.NARROW[model_name])
