"""The package's import graph flows one way: no module imports from a layer above its own.

Entry points (`__main__.py`) are the top layer of every package and may import anything.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxseg"

# Lower numbers may be imported by higher ones, never the other way round. Modules directly
# under jaxseg/ not named here (train, evaluate, export, ...) form the application layer.
LAYERS = {
    "jaxseg.errors": 0,
    "jaxseg.nn": 1,
    "jaxseg.crf": 1,
    "jaxseg.data": 1,
    "jaxseg.viz": 2,
    "jaxseg.losses": 2,
    "jaxseg.metrics": 2,
    "jaxseg.backbones": 2,
    "jaxseg.models": 3,
}
APPLICATION = 4


def layer(module: str) -> int:
    """The layer of dotted `module` (its longest prefix in LAYERS)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    return APPLICATION


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


def imported(path: Path) -> set[str]:
    """The jaxseg modules `path` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.startswith("jaxseg.")}


LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: module_name(p))
def test_no_import_from_a_higher_layer(path):
    own = layer(module_name(path))
    upward = sorted({name for name in map(_existing, imported(path)) if name and layer(name) > own})
    assert not upward, f"{module_name(path)} (layer {own}) imports {upward}"


def _existing(name: str) -> str | None:
    """`name`, or its longest prefix that is a module or package of jaxseg (what
    `from jaxseg.nn.conv import Conv2d` names is `jaxseg.nn.conv`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        path = PACKAGE.parent.joinpath(*parts[:end])
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return ".".join(parts[:end])
    return None


def test_the_layers_name_real_packages():
    for name in LAYERS:
        assert _existing(name) == name, name
