"""`ade20k`: ADE20K SceneParsing (ADEChallengeData2016), 150 classes (TFDS builder).

Reads `ADEChallengeData2016.zip` in place from the manual dir (`zipfile`, member by member):
`images/{training,validation}/ADE_*.jpg` and `annotations/{training,validation}/ADE_*.png`.
Splits: train 20,210 / validation 2,000 (named `train` and `val`). Annotations hold 0-150,
0 being "other"; as every published ADE20K result counts it, `segmentation_mask` is
annotation - 1 with 0 mapped to 255 (ignored), so class k is row k + 1 of `objectInfo150.txt`.
`file_name` is the stem (`ADE_val_00000001`). JPEGs are kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data import reading
from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png
from jaxseg.data.labels import IGNORE_LABEL
from jaxseg.data.voc import Archive, archive_path

CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television", "airplane", "dirt track", "apparel",
    "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage",
    "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike",
    "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
"""The first (short) name of each row of the devkit's objectInfo150.txt."""
NUM_CLASSES = len(CLASS_NAMES)

ROOT = "ADEChallengeData2016"
SPLITS = {"train": "training", "val": "validation"}
ARCHIVE = Archive(
    "ADEChallengeData2016.zip",
    "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
    "923 MB",
    "http://sceneparsing.csail.mit.edu/",
)
LABEL_TABLE = np.array([IGNORE_LABEL, *range(NUM_CLASSES)], np.int64)
"""Annotation value -> stored label: 0 ("other") -> 255, k -> k - 1."""

_CITATION = """\
@inproceedings{zhou2017scene,
  author = "Zhou, B. and Zhao, H. and Puig, X. and Fidler, S. and Barriuso, A. and
            Torralba, A.",
  title = "Scene Parsing through {ADE20K} Dataset",
  booktitle = "Computer Vision and Pattern Recognition (CVPR)",
  year = "2017"}
"""


def prepare_instructions(base: str) -> str:
    """How to download and prepare ADE20K (the message shown while it is not prepared)."""
    return f"""\
Dataset {base!r} (ADE20K SceneParsing) is not prepared yet. To prepare it:
1. Download {ARCHIVE.file_name} ({ARCHIVE.size}) from {ARCHIVE.page}
   (direct link: {ARCHIVE.url}) into a folder, e.g. ~/ade20k, and leave it packed.
2. Run
     python -m jaxseg.data prepare {base} --manual_dir=~/ade20k
   It writes about 1 GB into the data dir ($JAXSEG_DATA_DIR, else ~/tensorflow_datasets;
   --data_dir=DIR chooses another, then train with --config.data_dir=DIR). Without
   --manual_dir the archive is downloaded."""


def split_members(names: list[str], split: str) -> list[tuple[str, str]]:
    """Sorted (image, annotation) member names of `split` ('train' or 'val')."""
    folder = f"{ROOT}/images/{SPLITS[split]}/"
    return [
        (name, f"{ROOT}/annotations/{SPLITS[split]}/{PurePosixPath(name).stem}.png")
        for name in sorted(names)
        if name.startswith(folder) and name.endswith(".jpg")
    ]


class Ade20k(SegmentationBuilder):
    """ADE20K SceneParsing: 150 classes, "other" ignored (255)."""

    name = "ade20k"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    IMAGE_FORMAT = "jpeg"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {ARCHIVE.file_name} in the manual dir, packed. See jaxseg.data.ade20k."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(
            description=__doc__,
            homepage=ARCHIVE.page,
            citation=_CITATION,
            disable_shuffling=True,  # records in sorted file order
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        path = archive_path(dl_manager, ARCHIVE)
        with reading.open_zip(path) as archive:
            names = archive.namelist()
        splits = {split: split_members(names, split) for split in SPLITS}
        for split, members in splits.items():
            if not members:
                raise reading.DatasetFileError(
                    f"{path.name}: no {ROOT}/images/{SPLITS[split]}/*.jpg; is this "
                    f"{ARCHIVE.file_name} from {ARCHIVE.page}?"
                )
        return {split: self._generate_examples(path, members) for split, members in splits.items()}

    def _generate_examples(self, path, members: list[tuple[str, str]]) -> Iterator:
        with reading.open_zip(path) as archive:
            for image_name, label_name in members:
                image_where = f"{path.name}: {image_name}"
                label_where = f"{path.name}: {label_name}"
                image, size = reading.rgb_image(
                    reading.read_member(archive, image_name), image_where
                )
                annotation = reading.label_png(
                    reading.read_member(archive, label_name), label_where
                )
                labels = reading.mapped_labels(annotation, LABEL_TABLE, label_where)
                reading.same_size(labels, size, label_where, image_where)
                stem = PurePosixPath(image_name).stem
                yield (
                    stem,
                    {
                        "image": image,
                        "segmentation_mask": encode_png(labels),
                        "file_name": stem,
                    },
                )
