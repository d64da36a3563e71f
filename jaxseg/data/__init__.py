"""Datasets by name: random-access sources of decoded examples for the input pipeline.

`load_source("shapes", "train")` returns a `Source`; `jaxseg.data.pipeline` turns sources into
batches. Each dataset is a TFDS builder module, imported only when its name is first used.
`folder:DIR` names a folder of your own images and masks (`jaxseg.data.folder`). Names and
preparation live in `catalog.py`, sources in `source.py`, builders in one module each. TFDS is
imported only where a dataset is used (its builder module loads it anyway), so importing
`jaxseg.data` stays cheap: `jaxseg.losses` does, for `labels.IGNORE_LABEL`.
"""

from jaxseg.data.catalog import (
    AUTO_PREPARED,
    DATASET_MODULES,
    FILE_FORMAT,
    FOLDER,
    DatasetNotPreparedError,
    dataset_info,
    default_data_dir,
    get_builder,
    prepare,
    save_prediction,
)
from jaxseg.data.source import Source, load_source

__all__ = [
    "AUTO_PREPARED",
    "DATASET_MODULES",
    "FILE_FORMAT",
    "FOLDER",
    "DatasetNotPreparedError",
    "Source",
    "dataset_info",
    "default_data_dir",
    "get_builder",
    "load_source",
    "prepare",
    "save_prediction",
]
