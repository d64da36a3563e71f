"""Name -> model factory registry behind `jaxseg.models.create`."""

import inspect
import types
import typing
from collections.abc import Callable

from flax import linen as nn

Factory = Callable[..., nn.Module]

_FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator registering `factory(num_classes, **overrides) -> nn.Module` under `name`."""

    def decorate(factory: Factory) -> Factory:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def names() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_FACTORIES)


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

    Raises ValueError for an unknown name and TypeError for an option the model lacks.
    """
    factory = _lookup(name)
    accepted = options(name)
    for key in overrides:
        if key not in accepted:
            raise TypeError(
                f"model {name!r} has no option {key!r}; its options are: {', '.join(accepted)}"
            )
    return factory(num_classes=num_classes, **overrides)


def _lookup(name: str) -> Factory:
    if name not in _FACTORIES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return _FACTORIES[name]
