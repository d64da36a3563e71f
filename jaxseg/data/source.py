"""`Source`: random-access, decoded examples of one split, opened by dataset name; datasets
generated on first use are generated once across the processes of a multi-host run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxseg.data.catalog import (
    AUTO_PREPARED,
    FILE_FORMAT,
    DatasetNotPreparedError,
    check_split,
    dataset_info,
    dataset_module,
    get_builder,
    not_prepared_message,
    prepare,
    split_name,
)

if TYPE_CHECKING:
    import tensorflow_datasets as tfds


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


def load_source(name: str, split: str, data_dir: str | None = None) -> Source:
    """Opens `split` of dataset `name` ('shapes', 'shapes/tiny', 'voc_segmentation',
    'folder:DIR', ...).

    `shapes` and folders are generated on first use; other datasets raise
    `DatasetNotPreparedError` with their preparation instructions until prepared. `data_dir`
    defaults to `default_data_dir()`.
    """
    base, _ = split_name(name)
    module = dataset_module(base)
    builder = get_builder(name, data_dir)
    if not builder.is_prepared():
        if base not in AUTO_PREPARED:
            raise DatasetNotPreparedError(not_prepared_message(base, module, builder.data_dir))
        builder = _generate_once(name, data_dir)
    check_split(split, list(builder.info.splits), name)
    num_classes, class_names = dataset_info(name)
    return Source(
        name=name,
        split=split,
        num_classes=num_classes,
        class_names=class_names,
        records=builder.as_data_source(split),
    )
