"""Name -> model factory registry behind `jaxseg.models.create`.

Each entry also keeps a small version of its model (the options that make it fit a CPU test,
as flax keeps `_ResNet1` beside `ResNet`) and whether that version learns from scratch, so a
newly registered model gets every registry-driven check without further code.
"""

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flax import linen as nn

from jaxseg.errors import UnknownOptionError

Factory = Callable[..., nn.Module]


@dataclasses.dataclass(frozen=True)
class _Entry:
    factory: Factory
    small: Mapping[str, Any]
    scratch_caveat: str


_ENTRIES: dict[str, _Entry] = {}


def register(
    name: str, *, small: Mapping[str, Any], scratch_caveat: str = ""
) -> Callable[[Factory], Factory]:
    """Decorator registering `factory(num_classes, **overrides) -> nn.Module` under `name`.

    `small`: options that shrink the model to a few seconds' compile on a CPU with every
    layer kept. `scratch_caveat`: why the small model does not learn the embedded `shapes`
    data from random weights ("" when it does).
    """

    def decorate(factory: Factory) -> Factory:
        if name in _ENTRIES:
            raise ValueError(f"model {name!r} is already registered")
        _ENTRIES[name] = _Entry(factory, dict(small), scratch_caveat)
        return factory

    return decorate


def names() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_ENTRIES)


def small_options(name: str) -> dict[str, Any]:
    """The options of model `name`'s small version (narrow widths, shallow trunk)."""
    _lookup(name)
    return dict(_ENTRIES[name].small)


def scratch_caveat(name: str) -> str:
    """Why model `name`'s small version does not learn from scratch; "" when it does."""
    _lookup(name)
    return _ENTRIES[name].scratch_caveat


def options(name: str) -> list[str]:
    """The keyword overrides that model `name` accepts."""
    parameters = inspect.signature(_lookup(name)).parameters
    return [p for p in parameters if p != "num_classes"]


def option_fields(name: str) -> dict[str, tuple[type, object]]:
    """Each option of model `name` but `dtype` (a config field of its own) as (type, default),
    so a config can hold every option and type-check an override of any of them."""
    factory = _lookup(name)
    hints = typing.get_type_hints(factory)
    parameters = inspect.signature(factory).parameters
    return {
        option: (_field_type(hints.get(option, object)), parameters[option].default)
        for option in options(name)
        if option != "dtype"
    }


def _field_type(hint: object) -> type:
    """The runtime type of an annotation: `tuple[int, ...] | None` -> tuple, `Any` -> object."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint, *_) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    hint = typing.get_origin(hint) or hint
    return hint if isinstance(hint, type) else object


def create(name: str, num_classes: int = 21, **overrides) -> nn.Module:
    """Builds model `name` with `num_classes` outputs; `overrides` are the factory's options.

    Raises ValueError for an unknown name and UnknownOptionError for an option it lacks.
    """
    check_options(name, set(overrides) - {"dtype"})
    return _lookup(name)(num_classes=num_classes, **overrides)


def check_options(name: str, given: Iterable[str]) -> None:
    """Raise UnknownOptionError naming the first of `given` that model `name` lacks (`dtype`
    is a compute setting, passed on its own, not an option)."""
    accepted = list(option_fields(name))
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise UnknownOptionError(
            f"model {name!r} has no option {unknown[0]!r}; its options are: {', '.join(accepted)}"
        )


def _lookup(name: str) -> Factory:
    if name not in _ENTRIES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return _ENTRIES[name].factory
