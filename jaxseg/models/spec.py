"""`ModelSpec`: which registered model a config, a checkpoint folder or a conversion means.

One value (name, class count, options) replaces the forms that said it before: a config's
`model` + `model_kwargs`, `model.json`, and a conversion's result. It checks itself against the
registry on creation, so a spec that names an unknown model or option cannot be written.
"""

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from flax import linen as nn

from jaxseg.models import registry


def _as_tuples(value: Any) -> Any:
    """JSON turns tuples into lists; model options expect tuples (hashable module fields)."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model `name` with `num_classes` outputs and factory `options`."""

    name: str
    num_classes: int
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        registry.check_options(self.name, self.options)
        if not (isinstance(self.num_classes, int) and self.num_classes > 0):
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}")
        options = {key: _as_tuples(value) for key, value in self.options.items()}
        object.__setattr__(self, "options", options)

    @classmethod
    def from_config(cls, config: Any, num_classes: int) -> "ModelSpec":
        """The model a training config names: `config.model` with `config.model_kwargs`."""
        return cls(config.model, num_classes, config.model_kwargs.to_dict())

    def build(self, dtype: str | None = None) -> nn.Module:
        """The flax module, computing in `dtype` (None: the inputs' and parameters' dtype, so
        float64 weights compute in float64); parameters stay as initialised or loaded."""
        return registry.create(self.name, self.num_classes, dtype=dtype, **self.options)

    def to_json(self) -> str:
        """The spec as the JSON that `model.json` holds."""
        fields = {"name": self.name, "num_classes": self.num_classes, "options": self.options}
        return json.dumps(fields, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        """The spec `to_json` wrote; a missing or unknown field is a ValueError."""
        fields = json.loads(text)
        if not isinstance(fields, dict) or set(fields) != {"name", "num_classes", "options"}:
            raise ValueError(
                "expected a JSON object with exactly the fields name, num_classes and options"
            )
        return cls(fields["name"], fields["num_classes"], fields["options"])
