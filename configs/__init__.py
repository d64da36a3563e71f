"""Training presets, one module per paper recipe, and `--config=NAME` resolution."""

import sys
from collections.abc import Sequence
from pathlib import Path

DIR = Path(__file__).resolve().parent


def preset_names(configs_dir: Path = DIR) -> list[str]:
    """Every preset in `configs_dir` (each module but the shared `base`)."""
    return sorted(p.stem for p in configs_dir.glob("*.py") if p.stem not in ("__init__", "base"))


def resolve_argv(argv: Sequence[str], configs_dir: Path = DIR) -> list[str]:
    """Rewrite `--config=NAME[:ARGS]` to the preset file `configs/NAME.py[:ARGS]`.

    Paths (anything ending in `.py` before the optional `:ARGS`) are left alone. An unknown
    name exits with the list of presets.
    """
    resolved = []
    for arg in argv:
        if arg.startswith("--config="):
            value = arg.split("=", 1)[1]
            name, sep, rest = value.partition(":")
            if not name.endswith(".py"):
                path = configs_dir / f"{name}.py"
                if not path.exists():
                    presets = preset_names(configs_dir)
                    sys.exit(
                        f"error: --config={value}: no preset {path}; presets: {', '.join(presets)}"
                    )
                arg = f"--config={path}{sep}{rest}"
        resolved.append(arg)
    return resolved
