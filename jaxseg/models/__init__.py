"""Segmentation models by name: `create(name, num_classes, **overrides)`, `names()`,
`ModelSpec` (a model as data), and each model's small test version (`small_options`,
`scratch_caveat`).

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
    check_options,
    create,
    names,
    option_fields,
    options,
    register,
    scratch_caveat,
    small_options,
)
from jaxseg.models.spec import ModelSpec

__all__ = [
    "ModelSpec",
    "check_options",
    "create",
    "names",
    "option_fields",
    "options",
    "register",
    "scratch_caveat",
    "small_options",
]
