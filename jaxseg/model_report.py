"""What a model costs: parameters per top-level module, forward FLOPs and train-step memory.

Everything comes from shapes and from XLA's analyses of the lowered or compiled programs, so
nothing is initialised or run and full-size models are reported in seconds on a CPU.
`python -m jaxseg.models summary NAME` prints `format_report(report(NAME))`.
"""

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from ml_collections import ConfigDict

from jaxseg import models, optim, sharding
from jaxseg.train import create_train_state, make_train_step


@dataclasses.dataclass(frozen=True)
class TrainMemory:
    """Device memory of one compiled train step, from XLA's buffer assignment."""

    activations: int  # temporaries: activations kept for the backward pass and workspace
    peak: int  # arguments + outputs + temporaries, donated (aliased) buffers counted once
    backend: str  # what it was compiled for ("cpu", "gpu", "tpu")


@dataclasses.dataclass(frozen=True)
class ModelReport:
    """Parameter counts, forward FLOPs and train-step memory of one model configuration."""

    name: str
    options: Mapping[str, Any]
    num_classes: int
    size: tuple[int, int]
    parameters: Mapping[str, int]  # trainable parameters under each top-level module
    batch_stats: int  # BatchNorm running statistics (buffers, not trained)
    forward_flops: float  # one eval-mode forward pass of one image
    batch: int
    memory: TrainMemory | None  # None without a training config

    @property
    def total_parameters(self) -> int:
        """Trainable parameters of the whole model."""
        return sum(self.parameters.values())


def abstract_variables(model: nn.Module, size: tuple[int, int]) -> dict:
    """Shapes and dtypes of `model`'s variables for (1, H, W, 3) images, without computing them."""
    images = jax.ShapeDtypeStruct((1, *size, 3), jnp.float32)
    return jax.eval_shape(
        lambda rng, x: model.init({"params": rng, "dropout": rng}, x),
        jax.random.PRNGKey(0),
        images,
    )


def count(tree: Any) -> int:
    """Number of scalars in a tree of arrays or shapes."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def parameter_counts(params: Mapping[str, Any]) -> dict[str, int]:
    """Parameters under each top-level module of a `params` tree, by module name."""
    return {name: count(subtree) for name, subtree in params.items()}


def forward_flops(model: nn.Module, variables: Any, size: tuple[int, int]) -> float:
    """XLA's FLOP count of one eval-mode forward pass on a (1, H, W, 3) image.

    XLA counts a multiply-add as two FLOPs and only over real input pixels: taps that read
    padding are not counted, so heavily dilated layers on small maps count less than dense
    counters (fvcore, torch's FlopCounterMode) report.
    """
    images = jax.ShapeDtypeStruct((1, *size, 3), jnp.float32)
    lowered = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, images)
    return float(lowered.cost_analysis()["flops"])


def train_step_memory(
    model: nn.Module, config: ConfigDict, size: tuple[int, int], batch: int
) -> TrainMemory:
    """Memory of `train.py`'s step under training `config` (optimizer, losses, aux weight) on
    one device at `batch` crops of `size`, compiled but not run."""
    config = copy.deepcopy(config)
    config.crop_size = size
    tx, schedule = optim.make_optimizer(config)
    mesh = sharding.make_mesh(1)
    state = jax.eval_shape(lambda: create_train_state(model, tx, config, mesh)[0])
    shardings = jax.tree.map(lambda _: sharding.replicated(mesh), state)
    step = make_train_step(model, tx, schedule, config, shardings, mesh)
    batch_shapes = {
        "image": jax.ShapeDtypeStruct((batch, *size, 3), jnp.float32),
        "label": jax.ShapeDtypeStruct((batch, *size), jnp.int32),
    }
    stats = step.lower(state, batch_shapes).compile().memory_analysis()
    peak = (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        - stats.alias_size_in_bytes
        + stats.temp_size_in_bytes
    )
    return TrainMemory(stats.temp_size_in_bytes, peak, jax.default_backend())


def report(
    name: str,
    num_classes: int = 21,
    size: tuple[int, int] = (512, 512),
    batch: int = 8,
    *,
    train_config: ConfigDict | None = None,
    **options: Any,
) -> ModelReport:
    """The `ModelReport` of registered model `name` built with `options`; with a training
    config (e.g. `configs/base.py`'s), also the memory of its train step at `batch`, the slow
    part (compiling takes seconds to a minute on a CPU).

    An unknown model, or an option the model lacks or cannot take, is a ValueError naming the
    valid ones.
    """
    try:
        model = models.create(name, num_classes=num_classes, **options)
    except TypeError as error:  # an option the model lacks, or a value it cannot take
        raise ValueError(str(error)) from error
    variables = abstract_variables(model, size)
    return ModelReport(
        name=name,
        options=options,
        num_classes=num_classes,
        size=size,
        parameters=parameter_counts(variables["params"]),
        batch_stats=count(variables.get("batch_stats", {})),
        forward_flops=forward_flops(model, variables, size),
        batch=batch,
        memory=None
        if train_config is None
        else train_step_memory(model, train_config, size, batch),
    )


def _size(num_bytes: int) -> str:
    if num_bytes >= 2**30:
        return f"{num_bytes / 2**30:,.2f} GiB"
    return f"{num_bytes / 2**20:,.1f} MiB"


def format_report(result: ModelReport) -> str:
    """A plain-text table: parameters per top-level module and in total, then forward GFLOPs
    and train-step memory."""
    options = "".join(f", {key}={value!r}" for key, value in result.options.items())
    total = result.total_parameters
    width = max(len(name) for name in [*result.parameters, "module"])
    digits = max(len(f"{total:,}"), len("parameters"))

    def row(name: str, n: int) -> str:
        return f"{name:<{width}}  {n:>{digits},}  {100 * n / max(total, 1):5.1f}%"

    rule = "-" * (width + digits + 10)
    lines = [
        f"{result.name}{options}: {result.num_classes} classes, "
        f"{result.size[0]}x{result.size[1]} input",
        f"{'module':<{width}}  {'parameters':>{digits}}  share",
        rule,
        *(row(name, n) for name, n in result.parameters.items()),
        rule,
        row("total", total),
        f"BatchNorm statistics (not trained): {result.batch_stats:,}",
        f"forward: {result.forward_flops / 1e9:.4g} GFLOPs per image (XLA cost analysis)",
    ]
    if result.memory is not None:
        memory = result.memory
        lines.append(
            f"train step, batch {result.batch} on one {memory.backend} device: activations "
            f"{_size(memory.activations)}, peak {_size(memory.peak)}"
        )
    return "\n".join(lines)
