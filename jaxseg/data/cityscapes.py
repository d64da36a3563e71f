"""`cityscapes`: Cityscapes fine annotations, 19 evaluation classes (TFDS builder).

Reads `leftImg8bit_trainvaltest.zip` (images, `leftImg8bit/<split>/<city>/<city>_<seq>_<frame>
_leftImg8bit.png`) and `gtFine_trainvaltest.zip` (labels, `gtFine/<split>/<city>/..._gtFine_
labelIds.png`) in place from the manual dir. Splits: train 2,975 / val 500 / test 1,525.
Label ids become the 19 train ids by the official table (cityscapesScripts `labels.py`); every
other id, and -1 (license plate, 255 in the uint8 PNGs), becomes 255 (ignored). Test labels are
withheld, so test masks are all 255. `file_name` is `<city>_<seq>_<frame>`. PNGs are kept byte
for byte; a frame 2048x1024 stores in about 2.3 MB.

Predictions for the evaluation server are label-id PNGs: `PREDICTION_IDS` maps train ids back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data import reading
from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png
from jaxseg.data.labels import IGNORE_LABEL
from jaxseg.data.voc import Archive, _manual_dir, archive_path

CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
PREDICTION_IDS = np.array(
    [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33], np.uint8
)
"""Train id -> label id (cityscapesScripts `labels.py`), for the server's label-id PNGs."""
NUM_LABEL_IDS = 34
LICENSE_PLATE = 255
"""Label id -1 (license plate) as it reads from a uint8 label PNG."""

LABEL_TABLE = np.full(256, -1, np.int64)
LABEL_TABLE[:NUM_LABEL_IDS] = IGNORE_LABEL
LABEL_TABLE[PREDICTION_IDS] = np.arange(NUM_CLASSES)
LABEL_TABLE[LICENSE_PLATE] = IGNORE_LABEL
"""Label-id PNG value -> train id; -1 marks values that are no label id."""

SPLITS = ("train", "val", "test")
LABELLED_SPLITS = ("train", "val")
IMAGES = Archive(
    "leftImg8bit_trainvaltest.zip", None, "11 GB", "https://www.cityscapes-dataset.com/downloads/"
)
LABELS = Archive(
    "gtFine_trainvaltest.zip", None, "241 MB", "https://www.cityscapes-dataset.com/downloads/"
)
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"

_CITATION = """\
@inproceedings{cordts2016cityscapes,
  author = "Cordts, M. and Omran, M. and Ramos, S. and Rehfeld, T. and Enzweiler, M. and
            Benenson, R. and Franke, U. and Roth, S. and Schiele, B.",
  title = "The Cityscapes Dataset for Semantic Urban Scene Understanding",
  booktitle = "Computer Vision and Pattern Recognition (CVPR)",
  year = "2016"}
"""


def prepare_instructions(base: str) -> str:
    """How to download and prepare Cityscapes (the message shown while it is not prepared)."""
    return f"""\
Dataset {base!r} (Cityscapes, fine annotations) is not prepared yet. To prepare it:
1. Register at {IMAGES.page} and download into one folder, e.g. ~/cityscapes, packed:
   - {IMAGES.file_name} ({IMAGES.size}, package id 3)
   - {LABELS.file_name} ({LABELS.size}, package id 1)
2. Run
     python -m jaxseg.data prepare {base} --manual_dir=~/cityscapes
   It takes about 15-25 minutes on 2 CPU cores (most of it reading the 11 GB of PNGs) and
   writes about 11 GB into the data dir ($JAXSEG_DATA_DIR, else ~/tensorflow_datasets;
   --data_dir=DIR chooses another, then train with --config.data_dir=DIR)."""


def frame_id(member: str) -> str:
    """`<city>_<seq>_<frame>` of an image member name."""
    return PurePosixPath(member).name.removesuffix(IMAGE_SUFFIX)


def label_member(image_member: str) -> str:
    """The gtFine label-id member of a leftImg8bit image member."""
    _, split, city, _ = image_member.split("/")
    return f"gtFine/{split}/{city}/{frame_id(image_member)}{LABEL_SUFFIX}"


def split_images(names: list[str], split: str) -> list[str]:
    """Sorted image member names of `split`."""
    return sorted(
        name
        for name in names
        if name.startswith(f"leftImg8bit/{split}/") and name.endswith(IMAGE_SUFFIX)
    )


class Cityscapes(SegmentationBuilder):
    """Cityscapes fine: 19 classes (train ids), others ignored (255)."""

    name = "cityscapes"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {IMAGES.file_name} and {LABELS.file_name} in the manual dir, packed. "
        "See jaxseg.data.cityscapes."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(
            description=__doc__,
            homepage=IMAGES.page,
            citation=_CITATION,
            disable_shuffling=True,  # records in sorted file order
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        if _manual_dir(dl_manager) is None:  # the archives are behind a login: no download
            raise reading.DatasetFileError(prepare_instructions(self.name))
        images, labels = archive_path(dl_manager, IMAGES), archive_path(dl_manager, LABELS)
        with reading.open_zip(images) as archive:
            names = archive.namelist()
        splits = {split: split_images(names, split) for split in SPLITS}
        for split in LABELLED_SPLITS:
            if not splits[split]:
                raise reading.DatasetFileError(
                    f"{images.name}: no leftImg8bit/{split}/<city>/*{IMAGE_SUFFIX}; is this "
                    f"{IMAGES.file_name} from {IMAGES.page}?"
                )
        return {
            split: self._generate_examples(
                images, labels if split in LABELLED_SPLITS else None, members
            )
            for split, members in splits.items()
            if members
        }

    def _generate_examples(self, images, labels, members: list[str]) -> Iterator:
        """(frame id, example) per image; `labels=None` (test) gives all-ignore masks."""
        with (
            reading.open_zip(images) as image_zip,
            reading.open_zip(labels) if labels else contextlib.nullcontext() as label_zip,
        ):
            for member in members:
                image_where = f"{images.name}: {member}"
                image, size = reading.rgb_image(reading.read_member(image_zip, member), image_where)
                if label_zip is None:
                    mask = np.full(size, IGNORE_LABEL, np.uint8)
                else:
                    name = label_member(member)
                    where = f"{labels.name}: {name}"
                    ids = reading.label_png(reading.read_member(label_zip, name), where)
                    mask = reading.mapped_labels(ids, LABEL_TABLE, where)
                    reading.same_size(mask, size, where, image_where)
                yield (
                    frame_id(member),
                    {
                        "image": image,
                        "segmentation_mask": encode_png(mask),
                        "file_name": frame_id(member),
                    },
                )
