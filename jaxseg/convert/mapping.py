"""Fill a jaxseg module's variables from a PyTorch state_dict through regex renaming rules.

An adapter describes each source architecture as a `Target`: how to build the jaxseg module
and which torch module each jaxseg module path corresponds to. The leaf names and layouts
then follow from the module type: conv `kernel` <- `weight` (OIHW -> HWIO), BatchNorm
`scale`/`bias`/`mean`/`var` <- `weight`/`bias`/`running_mean`/`running_var`.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from jaxseg import models

Rules = tuple[tuple[str, str], ...]

TORCH_LEAF_NAMES = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
}
ALWAYS_IGNORED = (r".*num_batches_tracked",)
# The jaxseg module is built (shapes only) on this input; every supported model accepts it.
_PROBE_SHAPE = (1, 64, 64, 3)


@dataclass(frozen=True)
class Target:
    """One source architecture as a jaxseg module: how to build it and how names map.

    `build(num_classes)` returns the module; `rules` map jaxseg module paths ("a/b/c") to
    torch module names (first full regex match wins, templates may use groups); `classifier`
    names the torch weight whose first dimension is the class count; torch keys matching an
    `ignore` regex have no jaxseg counterpart and are dropped; `spec(num_classes)` is the
    registered model it converts to (what model.json records), None for bare backbones.
    """

    build: Callable[[int], nn.Module]
    rules: Rules
    classifier: str | None = None
    ignore: tuple[str, ...] = ()
    spec: Callable[[int], models.ModelSpec] | None = None


def registered(name: str, rules: Rules, classifier: str, ignore=(), **options: Any) -> Target:
    """A `Target` for the registered jaxseg model `name` built with `options`."""
    spec = partial(models.ModelSpec, name, options=options)
    return Target(lambda n: spec(n).build(), rules, classifier, tuple(ignore), spec)


def resnet_rules(flax_prefix: str, torch_prefix: str) -> Rules:
    """jaxseg ResNet (backbones/resnet.py) names to torchvision ResNet names."""
    f, t = flax_prefix, torch_prefix
    return (
        (rf"{f}(layer\d)_(\d+)/downsample_conv", rf"{t}\1.\2.downsample.0"),
        (rf"{f}(layer\d)_(\d+)/downsample_bn", rf"{t}\1.\2.downsample.1"),
        (rf"{f}(layer\d)_(\d+)/(\w+)", rf"{t}\1.\2.\3"),
        (rf"{f}(conv1|bn1)", rf"{t}\1"),
    )


def conv_bn_rules(flax_name: str, torch_conv: str, torch_bn: str, separable=False) -> Rules:
    """A ConvBNAct block to a torch conv and BatchNorm (a separable conv's two torch convs
    are `torch_conv`.0 and .1)."""
    conv = (
        (
            (rf"{flax_name}/conv/depthwise", f"{torch_conv}.0"),
            (rf"{flax_name}/conv/pointwise", f"{torch_conv}.1"),
        )
        if separable
        else ((rf"{flax_name}/conv", torch_conv),)
    )
    return (*conv, (rf"{flax_name}/bn", torch_bn))


def aspp_rules(torch_prefix: str, separable: bool = False) -> Rules:
    """jaxseg's ASPP (`aspp`, three rates, pooling last) to the ASPP class that torchvision
    and smp share: `convs.0` 1x1, `convs.1-3` atrous, `convs.4` pooling, `project`."""
    t = torch_prefix
    return (
        *conv_bn_rules("aspp/branch0", f"{t}convs.0.0", f"{t}convs.0.1"),
        *conv_bn_rules(r"aspp/branch([1-3])", rf"{t}convs.\1.0", rf"{t}convs.\1.1", separable),
        *conv_bn_rules("aspp/pool", f"{t}convs.4.1", f"{t}convs.4.2"),
        *conv_bn_rules("aspp/project", f"{t}project.0", f"{t}project.1"),
    )


def as_numpy(value: Any) -> np.ndarray:
    """A torch tensor (any device or dtype) or array-like as a float32 numpy array; float64
    values stay float64 (for float64 parity checks)."""
    if hasattr(value, "detach"):
        wide = str(value.dtype) == "torch.float64"
        value = value.detach().cpu().double().numpy()  # bfloat16 has no numpy counterpart
    else:
        value = np.asarray(value)
        wide = value.dtype == np.float64
    return value.astype(np.float64 if wide else np.float32)


def torch_module_name(path: str, rules: Rules) -> str:
    """The torch module name the first matching rule gives jaxseg module `path`."""
    for pattern, template in rules:
        match = re.fullmatch(pattern, path)
        if match:
            return match.expand(template)
    raise LookupError(f"no renaming rule covers jaxseg module {path!r}")


def _to_flax_layout(value: np.ndarray, leaf: str, shape: tuple[int, ...]) -> np.ndarray:
    """Torch layout to flax `shape`: a conv's (O, I, H, W) -> (H, W, I, O) (a transposed
    conv's (I, O, H, W) likewise, as `transpose_kernel=True` expects), linear (O, I) -> (I, O),
    and a linear layer read as a conv (VGG's fc6) first reshaped to (O, I, H, W)."""
    if leaf != "kernel":
        return value
    if value.ndim == 2 and len(shape) == 4 and value.size == np.prod(shape):
        value = value.reshape(_torch_shape(shape, leaf))
    return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T


def _torch_shape(shape: tuple[int, ...], leaf: str) -> tuple[int, ...]:
    """The torch shape that `_to_flax_layout` turns into flax `shape` (for error messages)."""
    if leaf == "kernel" and len(shape) == 4:
        return shape[3], shape[2], shape[0], shape[1]
    return shape[::-1] if leaf == "kernel" else shape


def num_classes_of(state_dict: Mapping[str, Any], target: Target, where: str) -> int:
    """The class count, read from the classifier weight's first dimension (0 for backbones)."""
    if target.classifier is None:
        return 0
    if target.classifier not in state_dict:
        raise ValueError(
            f"{where}: the state_dict has no classifier weight {target.classifier!r}; is it a "
            f"checkpoint of another architecture? (its first key is {_first_key(state_dict)})"
        )
    return int(np.shape(state_dict[target.classifier])[0])


def _first_key(state_dict: Mapping[str, Any]) -> str:
    key = next(iter(state_dict), None)
    return "<none: empty>" if key is None else f"{key!r} {tuple(np.shape(state_dict[key]))}"


def _natural_order(key: tuple[str, ...]) -> tuple:
    """Params before statistics, then paths with numbers compared as numbers (layer3_6 before
    layer3_10), so errors name the earliest missing layer."""
    parts = re.split(r"(\d+)", "/".join(key[1:]))
    return key[0] != "params", [int(p) if p.isdigit() else p for p in parts]


def variable_shapes(module: nn.Module) -> dict:
    """The module's variables as ShapeDtypeStructs, traced without computing anything."""
    probe = jnp.zeros(_PROBE_SHAPE, jnp.float32)
    return jax.eval_shape(module.init, jax.random.key(0), probe)


def fill_variables(
    state_dict: Mapping[str, Any], module: nn.Module, target: Target, where: str
) -> dict:
    """Every variable of `module` from `state_dict`, as numpy arrays in flax layout.

    Raises ValueError naming the first torch key that is missing, has the wrong shape, or
    is left over (neither used nor ignored).
    """
    ignored = re.compile("|".join((*ALWAYS_IGNORED, *target.ignore)))
    variables, used = {}, set()
    flat = traverse_util.flatten_dict(variable_shapes(module))
    for key in sorted(flat, key=_natural_order):
        spec = flat[key]
        path, leaf = "/".join(key[1:-1]), key[-1]
        torch_key = f"{torch_module_name(path, target.rules)}.{TORCH_LEAF_NAMES[leaf]}"
        expected = _torch_shape(spec.shape, leaf)
        if torch_key not in state_dict:
            raise ValueError(
                f"{where}: the state_dict lacks {torch_key!r} {expected}; is it a checkpoint "
                f"of another architecture? (its first key is {_first_key(state_dict)})"
            )
        value = _to_flax_layout(as_numpy(state_dict[torch_key]), leaf, spec.shape)
        if value.shape != spec.shape:
            raise ValueError(
                f"{where}: {torch_key!r} has shape {tuple(np.shape(state_dict[torch_key]))}, "
                f"expected {expected}"
            )
        variables[key] = value
        used.add(torch_key)
    for torch_key in state_dict:
        if torch_key not in used and not ignored.fullmatch(torch_key):
            raise ValueError(
                f"{where}: unexpected key {torch_key!r} "
                f"{tuple(np.shape(state_dict[torch_key]))}; is it a checkpoint of another "
                "architecture?"
            )
    return traverse_util.unflatten_dict(variables)
