"""Datasets by name: random-access sources of decoded examples for the input pipeline.

`load_source("shapes", "train")` returns a `Source`; `jaxseg.data.pipeline` turns sources into
batches. Each dataset is a TFDS builder module, imported only when its name is first used.
`folder:DIR` names a folder of your own images and masks (`jaxseg.data.folder`). TFDS is
imported only where a dataset is used (its builder module loads it anyway), so importing
`jaxseg.data` stays cheap: `jaxseg.losses` does, for `labels.IGNORE_LABEL`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.experimental import multihost_utils
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


def _split_name(name: str) -> tuple[str, str | None]:
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


def _module(base: str) -> ModuleType:
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
    base, config = _split_name(name)
    cls = _builder_class(base, _module(base))
    if base == FOLDER:
        folder = _module(base)
        config = folder.config_for(folder.FolderSpec.parse(config))
    elif config is not None and config not in cls.builder_configs:
        raise ValueError(
            f"Unknown config {config!r} of dataset {base!r}. "
            f"Available configs: {', '.join(sorted(cls.builder_configs))}."
        )
    return cls(config=config, data_dir=data_dir or default_data_dir(), file_format=FILE_FORMAT)


def dataset_info(name: str) -> tuple[int, tuple[str, ...]]:
    """(num_classes, class_names) of dataset `name`, without reading any data."""
    base, config = _split_name(name)
    module = _module(base)
    if base == FOLDER:
        class_names = module.class_names(module.FolderSpec.parse(config).root)
        return len(class_names), class_names
    class_names = tuple(module.CLASS_NAMES)
    return getattr(module, "NUM_CLASSES", len(class_names)), class_names


def _not_prepared_message(base: str, module: ModuleType, data_dir: str) -> str:
    instructions = getattr(module, "prepare_instructions", None)
    if instructions is not None:
        return instructions(base)
    return (
        f"Dataset {base!r} is not prepared under {data_dir}. Prepare it with its TFDS builder "
        f"({module.__name__}) first, or pass the data_dir that holds it."
    )


def _check_split(split: str, available: list[str], name: str) -> None:
    for part in split.split("+"):
        base = re.sub(r"\[.*\]$", "", part.strip())
        if base not in available:
            raise ValueError(
                f"Unknown split {base!r} of dataset {name!r}. "
                f"Available splits: {', '.join(sorted(available))}."
            )


@dataclasses.dataclass(frozen=True)
class Source:
    """Random-access examples of one split, decoded as numpy, with the dataset's labels.

    `source[i]` is {"image": uint8 (H, W, 3), "segmentation_mask": uint8 (H, W),
    "file_name": str}. Picklable, so grain worker processes can read it.
    """

    name: str
    split: str
    num_classes: int
    class_names: tuple[str, ...]
    records: Any  # the TFDS data source

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return _decoded(self.records[index])

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        return [_decoded(example) for example in self.records.__getitems__(indices)]

    def masks(self) -> Iterator[np.ndarray]:
        """Each example's (H, W) uint8 mask in order, without decoding its image."""
        import tensorflow_datasets as tfds

        raw = dataclasses.replace(self.records, decoders={"image": tfds.decode.SkipDecoding()})
        for index in range(len(raw)):
            yield _mask(raw[index])


def _mask(example: dict[str, Any]) -> np.ndarray:
    mask = example["segmentation_mask"]
    return mask[..., 0] if mask.ndim == 3 else mask


def _decoded(example: dict[str, Any]) -> dict[str, Any]:
    file_name = example["file_name"]
    return {
        "image": example["image"],
        "segmentation_mask": _mask(example),
        "file_name": file_name.decode() if isinstance(file_name, bytes) else str(file_name),
    }


def _generate_once(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """Generate an auto-prepared dataset, by process 0 first so processes sharing a data
    folder do not race; a process whose folder is not shared then generates its own copy."""
    if jax.process_index() == 0:
        prepare(name, data_dir)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"jaxseg: generated {name}")
    builder = get_builder(name, data_dir)
    if not builder.is_prepared():
        builder.download_and_prepare(file_format=FILE_FORMAT)
    return builder


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
    if _split_name(name)[0] == FOLDER:
        _module(FOLDER).remove_stale(builder)
    return builder


def load_source(name: str, split: str, data_dir: str | None = None) -> Source:
    """Opens `split` of dataset `name` ('shapes', 'shapes/tiny', 'voc_segmentation',
    'folder:DIR', ...).

    `shapes` and folders are generated on first use; other datasets raise
    `DatasetNotPreparedError` with their preparation instructions until prepared. `data_dir`
    defaults to `default_data_dir()`.
    """
    base, _ = _split_name(name)
    module = _module(base)
    builder = get_builder(name, data_dir)
    if not builder.is_prepared():
        if base not in AUTO_PREPARED:
            raise DatasetNotPreparedError(_not_prepared_message(base, module, builder.data_dir))
        builder = _generate_once(name, data_dir)
    _check_split(split, list(builder.info.splits), name)
    num_classes, class_names = dataset_info(name)
    return Source(
        name=name,
        split=split,
        num_classes=num_classes,
        class_names=class_names,
        records=builder.as_data_source(split),
    )


def save_prediction(name: str, labels: np.ndarray, path: str | Path) -> None:
    """Writes predicted class indices (H, W) of dataset `name` as its evaluation server takes
    them: label-id PNGs where the dataset defines `PREDICTION_IDS` (Cityscapes), else VOC
    palette PNGs."""
    ids = getattr(_module(_split_name(name)[0]), "PREDICTION_IDS", None)
    if ids is None:
        palette.save_palette_png(labels, path)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ids[np.asarray(labels, np.uint8)]).save(path)
