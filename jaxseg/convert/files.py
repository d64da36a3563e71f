"""Read PyTorch weights from `.pth`/`.pt` (needs torch) or `.safetensors` (does not) files."""

from pathlib import Path
from typing import Any

import numpy as np

from jaxseg.convert.mapping import as_numpy

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
# Full training checkpoints keep the weights under one of these keys.
NESTED_KEYS = ("state_dict", "model")


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The weights in `path` as {torch name: float32 numpy array}.

    Accepts a bare state_dict, a training checkpoint holding it under "state_dict" or
    "model", and DataParallel's "module." prefix. A file that is none of these is a
    ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        contents = _read_safetensors(path)
    elif suffix in TORCH_SUFFIXES:
        contents = _read_torch(path)
    else:
        raise ValueError(
            f"{path}: unknown checkpoint format {suffix!r}; expected "
            f"{', '.join(TORCH_SUFFIXES)} or {SAFETENSORS_SUFFIX}"
        )
    return _as_state_dict(contents, path)


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from error


def _read_torch(path: Path) -> Any:
    try:
        import torch
    except ImportError as error:
        raise ValueError(
            f"{path}: reading {path.suffix} files needs PyTorch (pip install torch); "
            ".safetensors files load without it"
        ) from error
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        raise ValueError(f"{path}: not a PyTorch checkpoint ({error})") from error


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _as_state_dict(contents: Any, path: Path) -> dict[str, np.ndarray]:
    """Unwrap a training checkpoint and check that what is left maps names to tensors."""
    for key in NESTED_KEYS:
        if isinstance(contents, dict) and isinstance(contents.get(key), dict):
            contents = contents[key]
            break
    if not isinstance(contents, dict) or not contents:
        raise ValueError(
            f"{path}: holds no state_dict (a mapping of parameter names to tensors) at the top "
            f"level or under {' or '.join(map(repr, NESTED_KEYS))}"
        )
    odd = next((key for key, value in contents.items() if not _is_array(value)), None)
    if odd is not None:
        raise ValueError(
            f"{path}: entry {odd!r} is a {type(contents[odd]).__name__}, not a tensor; pass the "
            "model's state_dict"
        )
    prefix = "module."
    if all(key.startswith(prefix) for key in contents):
        contents = {key.removeprefix(prefix): value for key, value in contents.items()}
    return {key: as_numpy(value) for key, value in contents.items()}
