"""Datasets by name: which TFDS builder each name means, its classes, how it is prepared,
and the format its evaluation server takes predictions in.

TFDS is imported only where a dataset is used (its builder module loads it anyway), so
importing `jaxseg.data` stays cheap.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from jaxseg.data import palette

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

DATASET_MODULES = {
    "shapes": "jaxseg.data.shapes",
    "voc_segmentation": "jaxseg.data.voc",
    "camvid": "jaxseg.data.camvid",
    "ade20k": "jaxseg.data.ade20k",
    "cityscapes": "jaxseg.data.cityscapes",
    "folder": "jaxseg.data.folder",
}
"""Dataset name -> module defining its TFDS builder and its `CLASS_NAMES`."""

AUTO_PREPARED = frozenset({"shapes", "folder"})
"""Datasets generated on first use; the others need their files prepared beforehand."""
FOLDER = "folder"
"""`folder:DIR` (or `folder:DIR:reduce_zero_label`): a folder in `jaxseg.data.folder`'s layout."""

FILE_FORMAT = "array_record"


class DatasetNotPreparedError(FileNotFoundError):
    """A dataset that cannot be generated automatically has not been prepared yet."""


def split_name(name: str) -> tuple[str, str | None]:
    """'shapes/tiny' -> ('shapes', 'tiny'); 'shapes' -> ('shapes', None); 'folder:DIR' ->
    ('folder', 'DIR')."""
    if name == FOLDER or name.startswith(FOLDER + ":"):
        return FOLDER, name.removeprefix(FOLDER).removeprefix(":")
    base, _, config = name.partition("/")
    if base not in DATASET_MODULES:
        raise ValueError(
            f"Unknown dataset {base!r}. Available datasets: {', '.join(sorted(DATASET_MODULES))}."
        )
    return base, config or None


def dataset_module(base: str) -> ModuleType:
    """The module holding dataset `base`'s builder and `CLASS_NAMES` (imported on first use)."""
    return importlib.import_module(DATASET_MODULES[base])


def _builder_class(base: str, module: ModuleType) -> type[tfds.core.DatasetBuilder]:
    import tensorflow_datasets as tfds

    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, tfds.core.DatasetBuilder)
            and value.__module__ == module.__name__
            and getattr(value, "name", None) == base
        ):
            return value
    raise ValueError(f"Module {module.__name__} defines no TFDS builder named {base!r}.")


def default_data_dir() -> str | None:
    """$JAXSEG_DATA_DIR if set, else None (TFDS's default, ~/tensorflow_datasets)."""
    return os.environ.get("JAXSEG_DATA_DIR") or None


def get_builder(name: str, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """The TFDS builder for `name` ('dataset' or 'dataset/config'), writing ArrayRecord."""
    base, config = split_name(name)
    cls = _builder_class(base, dataset_module(base))
    if base == FOLDER:
        folder = dataset_module(base)
        config = folder.config_for(folder.FolderSpec.parse(config))
    elif config is not None and config not in cls.builder_configs:
        raise ValueError(
            f"Unknown config {config!r} of dataset {base!r}. "
            f"Available configs: {', '.join(sorted(cls.builder_configs))}."
        )
    return cls(config=config, data_dir=data_dir or default_data_dir(), file_format=FILE_FORMAT)


def dataset_info(name: str) -> tuple[int, tuple[str, ...]]:
    """(num_classes, class_names) of dataset `name`, without reading any data."""
    base, config = split_name(name)
    module = dataset_module(base)
    if base == FOLDER:
        class_names = module.class_names(module.FolderSpec.parse(config).root)
        return len(class_names), class_names
    class_names = tuple(module.CLASS_NAMES)
    return getattr(module, "NUM_CLASSES", len(class_names)), class_names


def not_prepared_message(base: str, module: ModuleType, data_dir: str) -> str:
    """How to prepare dataset `base`: its module's instructions, else a generic line."""
    instructions = getattr(module, "prepare_instructions", None)
    if instructions is not None:
        return instructions(base)
    return (
        f"Dataset {base!r} is not prepared under {data_dir}. Prepare it with its TFDS builder "
        f"({module.__name__}) first, or pass the data_dir that holds it."
    )


def check_split(split: str, available: list[str], name: str) -> None:
    """ValueError naming the available splits unless every part of `split` ("train+val",
    "train[:10]") is one of them."""
    for part in split.split("+"):
        base = re.sub(r"\[.*\]$", "", part.strip())
        if base not in available:
            raise ValueError(
                f"Unknown split {base!r} of dataset {name!r}. "
                f"Available splits: {', '.join(sorted(available))}."
            )


def prepare(
    name: str, data_dir: str | None = None, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    """Prepares dataset `name` (archives read from `manual_dir`); a folder's copies from
    before its files changed are deleted."""
    import tensorflow_datasets as tfds

    builder = get_builder(name, data_dir)
    builder.download_and_prepare(
        file_format=FILE_FORMAT,
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
    )
    if split_name(name)[0] == FOLDER:
        dataset_module(FOLDER).remove_stale(builder)
    return builder


def save_prediction(name: str, labels: np.ndarray, path: str | Path) -> None:
    """Writes predicted class indices (H, W) of dataset `name` as its evaluation server takes
    them: label-id PNGs where the dataset defines `PREDICTION_IDS` (Cityscapes), else VOC
    palette PNGs."""
    ids = getattr(dataset_module(split_name(name)[0]), "PREDICTION_IDS", None)
    if ids is None:
        palette.save_palette_png(labels, path)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids[np.asarray(labels, np.uint8)]).save(path)
