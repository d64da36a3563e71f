"""Segmentation models by name: `create(name, num_classes, **overrides)` and `names()`.

Importing this package registers every model family.
"""

from jaxseg.models import deeplab, pspnet  # noqa: F401  (registration)
from jaxseg.models.registry import create, names, options, register

__all__ = ["create", "names", "options", "register"]
