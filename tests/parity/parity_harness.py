"""Shared harness of the parity tests: PyTorch models with random weights and randomised
BatchNorm statistics, converted with `jaxseg.convert`, compared in eval mode (logits) and
over one SGD training step (loss, gradients, updated weights, running statistics)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from flax import linen as nn

from configs import base
from jaxseg import losses, optim
from jaxseg.convert import from_torch
from jaxseg.data.labels import IGNORE_LABEL
from tests import torch_reference

torch.set_num_threads(2)
if jax.default_backend() != "cpu":
    # GPUs and TPUs run float32 convolutions with TF32/bf16 passes by default, which alone
    # exceeds the tolerances; CPUs always compute in full float32.
    jax.config.update("jax_default_matmul_precision", "highest")

EVAL_TOLERANCE = 1e-4
MIN_ARGMAX_AGREEMENT = 0.999
TRAIN_TOLERANCE = 1e-4
AUX_WEIGHT = 0.4
SGD = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)


def random_images(size: tuple[int, int], batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A (batch, 3, H, W) batch of standard-normal "normalised images"."""
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def torch_outputs(output) -> tuple[torch.Tensor, ...]:
    """A model's output as (logits, *aux): torchvision returns {"out", "aux"}, smp a tensor."""
    if isinstance(output, dict):
        return tuple(output[key] for key in ("out", "aux") if key in output)
    return (output,)


def resnet_stages(model: torch.nn.Module, images: torch.Tensor) -> dict[str, np.ndarray]:
    """A torchvision ResNet's stem (after ReLU, before max pooling) and stage outputs, NHWC:
    the features jaxseg's ResNet returns."""
    x = model.relu(model.bn1(model.conv1(images)))
    stages = {"stem": torch_reference.from_torch(x)}
    x = model.maxpool(x)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        x = getattr(model, name)(x)
        stages[name] = torch_reference.from_torch(x)
    return stages


def relative_error(got, reference) -> float:
    """max |got - reference| / max |reference|."""
    got, reference = np.asarray(got, np.float64), np.asarray(reference, np.float64)
    return float(np.abs(got - reference).max() / np.abs(reference).max())


def check_eval(
    model: torch.nn.Module, source: str, arch: str, size: tuple[int, int], convert=None
) -> float:
    """Eval-mode logits of the converted model against PyTorch's; returns the relative error.

    `convert(state_dict) -> (module, variables)` defaults to `from_torch` for source/arch.
    """
    convert = convert or partial(from_torch, source=source, arch=arch)
    images = random_images(size)
    with torch.no_grad():
        reference = torch_reference.from_torch(torch_outputs(model(images))[0])
    module, variables = convert(model.state_dict())
    logits = np.asarray(jax.jit(module.apply)(variables, torch_reference.from_torch(images)))
    assert logits.shape == reference.shape
    error = relative_error(logits, reference)
    agreement = float((logits.argmax(-1) == reference.argmax(-1)).mean())
    print(
        f"parity eval {source} {arch} {size}: relative error {error:.1e}, "
        f"argmax agreement {agreement:.4%}"
    )
    assert error < EVAL_TOLERANCE
    assert agreement >= MIN_ARGMAX_AGREEMENT
    return error


def _without_dropout(next_fun, args, kwargs, context):
    """Method interceptor that makes every flax Dropout the identity."""
    if isinstance(context.module, nn.Dropout):
        return args[0]
    return next_fun(*args, **kwargs)


def _torch_train_step(model: torch.nn.Module, images, labels) -> dict:
    """One SGD step in PyTorch (dropout off): loss, gradients, updated state_dict."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0
    outputs = torch_outputs(model(images))
    loss = F.cross_entropy(outputs[0], labels, ignore_index=IGNORE_LABEL)
    for aux in outputs[1:]:
        loss = loss + AUX_WEIGHT * F.cross_entropy(aux, labels, ignore_index=IGNORE_LABEL)
    loss.backward()
    grads = {
        name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None
    }
    torch.optim.SGD(model.parameters(), **SGD).step()
    return {"loss": loss.item(), "grads": grads, "state": model.state_dict()}


def _jax_train_step(module, variables: dict, images: np.ndarray, labels: np.ndarray) -> dict:
    """One step of jaxseg's SGD (`optim.make_optimizer`) with dropout off."""
    config = base.get_config()
    config.update(dict(optimizer="sgd", num_steps=100, warmup_steps=0, grad_clip_norm=0.0, **SGD))
    tx, _ = optim.make_optimizer(config)

    def loss_fn(params):
        with nn.intercept_methods(_without_dropout):
            outputs, updates = module.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                images,
                train=True,
                mutable=["batch_stats"],
            )
        loss, _ = losses.segmentation_loss(outputs, labels, aux_weight=AUX_WEIGHT)
        return loss, updates["batch_stats"]

    @jax.jit
    def step(params):
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return loss, grads, optax.apply_updates(params, updates), batch_stats

    params = jax.tree.map(jnp.asarray, variables["params"])
    loss, grads, params, batch_stats = step(params)
    return {"loss": float(loss), "grads": grads, "params": params, "batch_stats": batch_stats}


def _worst(got: dict, reference: dict) -> tuple[float, str]:
    """Largest per-tensor relative error between two variable trees, and where."""
    errors = jax.tree_util.tree_map_with_path(
        lambda path, a, b: (relative_error(a, b), jax.tree_util.keystr(path)), got, reference
    )
    return max(jax.tree.leaves(errors, is_leaf=lambda x: isinstance(x, tuple)))


def check_train_step(
    model: torch.nn.Module,
    source: str,
    arch: str,
    size: tuple[int, int],
    num_classes: int,
    convert=None,
) -> dict[str, float]:
    """One SGD step from identical weights on an identical batch in both frameworks: loss,
    gradients, updated weights and BatchNorm running statistics must agree.

    Both run in float64. In float32, train-mode BatchNorm amplifies rounding until a few
    ReLUs flip, which moves single gradient entries by their whole size: PyTorch's own
    float32 gradients of these models differ from its float64 ones by 1e-2 to 1e-1 (max-norm,
    per tensor), with BatchNorm in eval mode by 1e-6. In float64 such flips are negligible, so
    any difference left is a real one. Dropout is off in both: p=0 in PyTorch, every flax
    Dropout intercepted as the identity.
    """
    convert = convert or partial(from_torch, source=source, arch=arch)
    model = model.double()
    images = random_images(size, seed=1).double()
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(0, num_classes, (2, *size), generator=generator)
    labels[torch.rand(2, *size, generator=generator) < 0.1] = IGNORE_LABEL
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    reference = _torch_train_step(model, images, labels)
    with jax.enable_x64(True):
        module, variables = convert(initial)
        result = _jax_train_step(
            module, variables, torch_reference.from_torch(images), labels.numpy()
        )
    _, torch_grads = convert({**initial, **reference["grads"]})
    _, updated = convert(reference["state"])
    figures = {
        "loss": abs(result["loss"] - reference["loss"]) / abs(reference["loss"]),
        "grads": _worst(result["grads"], torch_grads["params"]),
        "params": _worst(result["params"], updated["params"]),
        "batch_stats": _worst(result["batch_stats"], updated["batch_stats"]),
    }
    print(f"parity train {source} {arch} {size}: {figures}")
    assert figures["loss"] < TRAIN_TOLERANCE
    for name in ("grads", "params", "batch_stats"):
        assert figures[name][0] < TRAIN_TOLERANCE, (name, figures[name])
    return figures
