"""Segmentation models by name: `create(name, num_classes, **overrides)`, `names()`, and
each model's small test version (`small_options`, `scratch_caveat`).

Importing this package registers every model family.
"""

from jaxseg.models import (  # noqa: F401  (registration)
    deeplab,
    dilated,
    fcn,
    gcn,
    pspnet,
    refinenet,
    segnet,
    unet,
)
from jaxseg.models.registry import (
    create,
    names,
    option_fields,
    options,
    register,
    scratch_caveat,
    small_options,
)

__all__ = [
    "create",
    "names",
    "option_fields",
    "options",
    "register",
    "scratch_caveat",
    "small_options",
]
