"""`voc_segmentation`: PASCAL VOC 2012 semantic segmentation, alone or with SBD (TFDS builder).

Configs:
- `2012`: train 1,464 / val 1,449, from `VOCtrainval_11-May-2012.tar`.
- `2012_aug`: train 10,582 / val 1,449: the augmented set ("train_aug") of DeepLab and PSPNet,
  SBD train + val (`benchmark.tgz`) plus VOC train, minus every VOC val image. Images come from
  the VOC archive; an image with a VOC mask keeps it (with its 255 boundaries), the others take
  SBD's mask (`cls/<id>.mat`, field `GTcls.Segmentation`).

Both configs gain a `test` split (1,456 images) when `VOC2012test.tar` is in the manual dir.
VOC withholds its test labels, so every test mask is all 255 (ignore): metrics over it count
no pixel, and predictions on it are for the VOC evaluation server.

Archives are read in place with `tarfile` (no extraction, no TensorFlow). Each example holds
the original JPEG bytes, a single-channel PNG mask (lossless; 0-20 classes, 255 ignore) and the
image id as `file_name`. Files are checked while preparing: an unreadable image, a mask of the
wrong size or with an unknown label, or a listed file that is missing stops preparation with
a `VocDataError` naming the archive and the file; TFDS then leaves no prepared dataset behind.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import tarfile
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import scipy.io
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png, to_rgb8
from jaxseg.data.labels import IGNORE_LABEL

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
VALID_LABELS = frozenset(range(NUM_CLASSES)) | {IGNORE_LABEL}

VOC_ROOT = "VOCdevkit/VOC2012"
SBD_ROOT = "benchmark_RELEASE/dataset"
SPLITS = ("train", "val")  # VOC's labelled splits; `test` is added when its archive is there


@dataclasses.dataclass(frozen=True)
class Archive:
    """One file to download: its name in the manual dir, direct URL (None: manual only), page."""

    file_name: str
    url: str | None
    size: str
    page: str


VOC_TRAINVAL = Archive(
    "VOCtrainval_11-May-2012.tar",
    "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    "1.9 GB",
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
)
SBD = Archive(
    "benchmark.tgz",
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/"
    "benchmark.tgz",
    "1.4 GB",
    "http://home.bharathh.info/pubs/codes/SBD/download.html",
)
VOC_TEST = Archive(
    "VOC2012test.tar",
    None,
    "1.8 GB",
    "http://host.robots.ox.ac.uk:8080/ (the VOC evaluation server, after registering)",
)

_CITATION = """\
@misc{pascal-voc-2012,
  author = "Everingham, M. and Van~Gool, L. and Williams, C. K. I. and Winn, J. and
            Zisserman, A.",
  title = "The {PASCAL} {V}isual {O}bject {C}lasses {C}hallenge 2012 {(VOC2012)} {R}esults",
  howpublished = "http://www.pascal-network.org/challenges/VOC/voc2012/workshop/index.html"}
@inproceedings{hariharan2011semantic,
  author = "Hariharan, B. and Arbel{\\'a}ez, P. and Bourdev, L. and Maji, S. and Malik, J.",
  title = "Semantic contours from inverse detectors",
  booktitle = "International Conference on Computer Vision (ICCV)",
  year = "2011"}
"""


class VocDataError(ValueError):
    """An archive is unreadable, incomplete or holds a bad file; the message names the file."""


def prepare_instructions(base: str) -> str:
    """How to download and prepare VOC (the message shown while it is not prepared)."""
    return f"""\
Dataset {base!r} (PASCAL VOC 2012) is not prepared yet. To prepare it:
1. Download into one folder, e.g. ~/voc_archives, and leave the archives packed:
   - {VOC_TRAINVAL.file_name} ({VOC_TRAINVAL.size}) from {VOC_TRAINVAL.page}
     (direct link: {VOC_TRAINVAL.url})
   - {SBD.file_name} ({SBD.size}, SBD; needed for {base}/2012_aug, the default training set)
     from {SBD.page} (direct link: {SBD.url})
   - optional, for test-server submissions: {VOC_TEST.file_name} ({VOC_TEST.size}) from
     {VOC_TEST.page}
2. Run
     python -m jaxseg.data prepare {base}/2012_aug --manual_dir=~/voc_archives
   (or {base}/2012 for VOC alone, 1,464 train images). It takes about 3-5 minutes on 2 CPU
   cores and writes about 1.4 GB (0.35 GB for 2012) into the data dir: $JAXSEG_DATA_DIR, else
   ~/tensorflow_datasets; --data_dir=DIR chooses another, then train with
   --config.data_dir=DIR. With internet access, leaving out --manual_dir downloads the
   archives from the links above."""


def _member_name(name: str) -> str:
    return name.removeprefix("./")


@dataclasses.dataclass(frozen=True)
class TarIndex:
    """Where each file of an uncompressed tar lies, so files are read without extracting."""

    path: epath.Path
    offsets: dict[str, tuple[int, int]]  # member name -> (data offset, size)

    @classmethod
    def build(cls, path: epath.Path) -> TarIndex:
        """Reads every header of the tar at `path` once (with a progress bar)."""
        offsets = {}
        try:
            with (
                tarfile.open(path, mode="r:") as tar,
                tfds.core.utils.tqdm(
                    total=path.stat().length,
                    unit="B",
                    unit_scale=True,
                    desc=f"Indexing {path.name}",
                ) as progress,
            ):
                done = 0
                for member in tar:
                    if member.isfile():
                        offsets[_member_name(member.name)] = (member.offset_data, member.size)
                    progress.update(member.offset_data + member.size - done)
                    done = member.offset_data + member.size
        except tarfile.TarError as error:
            raise VocDataError(
                f"{path}: not a readable uncompressed tar archive ({error}); download it again."
            ) from error
        return cls(path, offsets)

    def read(self, name: str, listed_in: str | None = None) -> bytes:
        """The bytes of member `name`; a missing one is an error naming the list it is in."""
        if name not in self.offsets:
            source = f" (listed in {listed_in})" if listed_in else ""
            raise VocDataError(f"{self.path.name}: {name} is missing{source}.")
        offset, size = self.offsets[name]
        with self.path.open("rb") as file:
            file.seek(offset)
            return file.read(size)

    def read_ids(self, name: str) -> list[str]:
        """The image ids listed in text file `name` (one per line)."""
        return _ids(self.read(name))


def _ids(text: bytes) -> list[str]:
    return [line.split()[0] for line in text.decode().splitlines() if line.strip()]


def checked_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """`labels` as uint8 (H, W) after checking every value is a class (0-20) or 255."""
    if labels.ndim != 2:
        raise VocDataError(f"{where}: mask has shape {labels.shape}, expected (height, width).")
    bad = [value for value in np.unique(labels).tolist() if value not in VALID_LABELS]
    if bad:
        raise VocDataError(
            f"{where}: label values {bad[:10]} outside 0-{NUM_CLASSES - 1} and {IGNORE_LABEL}."
        )
    return labels.astype(np.uint8)


def png_labels(data: bytes, where: str) -> np.ndarray:
    """Class indices of a VOC mask PNG (palette indices of a 'P' image, or 'L' values)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("P", "L"):
                raise VocDataError(
                    f"{where}: PNG mode {image.mode!r}; expected a palette ('P') or greyscale "
                    "('L') image of class indices."
                )
            labels = np.asarray(image)
    except OSError as error:
        raise VocDataError(f"{where}: unreadable PNG ({error}).") from error
    return checked_labels(labels, where)


def sbd_labels(data: bytes, where: str) -> np.ndarray:
    """Class indices of an SBD `cls/<id>.mat` file (MATLAB struct `GTcls`, `Segmentation`)."""
    try:
        contents = scipy.io.loadmat(
            io.BytesIO(data), squeeze_me=True, struct_as_record=False, variable_names=["GTcls"]
        )
        labels = np.asarray(contents["GTcls"].Segmentation)
    except (ValueError, KeyError, AttributeError, scipy.io.matlab.MatReadError) as error:
        raise VocDataError(
            f"{where}: not an SBD class mask (MATLAB struct GTcls with field Segmentation): "
            f"{error!r}."
        ) from error
    return checked_labels(labels, where)


def checked_image(data: bytes, where: str) -> tuple[bytes, tuple[int, int]]:
    """(encoded RGB image, (height, width)) after fully decoding `data` to catch damage.

    RGB JPEGs are kept byte for byte; any other mode is converted to RGB and stored as PNG.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = (image.height, image.width)
            if image.mode != "RGB":
                data = encode_png(to_rgb8(image))
    except OSError as error:
        raise VocDataError(f"{where}: unreadable or truncated image ({error}).") from error
    return data, size


def read_sbd(path: epath.Path, skip: set[str]) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """Streams `benchmark.tgz` once: ({'train': ids, 'val': ids}, {id: mask PNG bytes}).

    Masks of ids in `skip` are not decoded. A gzipped tar has no random access, so this reads
    it front to back and keeps only the small re-encoded masks.
    """
    lists, masks = {}, {}
    list_names = {f"{SBD_ROOT}/{split}.txt": split for split in ("train", "val")}
    try:
        with (
            path.open("rb") as raw,
            tarfile.open(fileobj=raw, mode="r|*") as tar,
            tfds.core.utils.tqdm(
                total=path.stat().length, unit="B", unit_scale=True, desc=f"Reading {path.name}"
            ) as progress,
        ):
            done = 0
            for member in tar:
                progress.update(raw.tell() - done)
                done = raw.tell()
                name = _member_name(member.name)
                folder, _, file_name = name.rpartition("/")
                image_id = file_name.removesuffix(".mat")
                if name in list_names:
                    lists[list_names[name]] = _ids(tar.extractfile(member).read())
                elif folder == f"{SBD_ROOT}/cls" and name.endswith(".mat") and image_id not in skip:
                    labels = sbd_labels(tar.extractfile(member).read(), f"{path.name}: {name}")
                    masks[image_id] = encode_png(labels)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise VocDataError(
            f"{path}: not a readable tar archive ({error}); download it again."
        ) from error
    for list_name, split in list_names.items():
        if split not in lists:
            raise VocDataError(f"{path.name}: {list_name} is missing.")
    return lists, masks


def _manual_dir(dl_manager: tfds.download.DownloadManager) -> epath.Path | None:
    """The manual dir if it exists and holds files, else None (TFDS asserts in that case)."""
    try:
        return dl_manager.manual_dir
    except AssertionError:
        return None


def archive_path(dl_manager: tfds.download.DownloadManager, archive: Archive) -> epath.Path:
    """`archive` from the manual dir when one is given, else downloaded from its URL."""
    manual_dir = _manual_dir(dl_manager)
    if manual_dir is None:
        log.info("No manual dir: downloading %s", archive.url)
        return epath.Path(dl_manager.download(archive.url))
    path = manual_dir / archive.file_name
    if not path.exists():
        raise FileNotFoundError(
            f"{archive.file_name} is not in the manual dir {manual_dir}. Download it from "
            f"{archive.page} (direct link: {archive.url}) into that folder and leave it packed, "
            "or prepare without a manual dir to download it."
        )
    return path


MaskReader = Callable[[str], tuple[np.ndarray, str]]
"""image id -> (class indices, where they come from, for messages)."""


def _voc_masks(voc: TarIndex, listed_in: str) -> MaskReader:
    def read(image_id: str) -> tuple[np.ndarray, str]:
        name = f"{VOC_ROOT}/SegmentationClass/{image_id}.png"
        where = f"{voc.path.name}: {name}"
        return png_labels(voc.read(name, listed_in), where), where

    return read


@dataclasses.dataclass
class VocConfig(tfds.core.BuilderConfig):
    """`augmented`: train on VOC train + SBD minus VOC val (needs benchmark.tgz)."""

    augmented: bool = False


class VocSegmentation(SegmentationBuilder):
    """PASCAL VOC 2012 segmentation (21 classes, 255 ignore), optionally augmented with SBD."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        VocConfig(name="2012", description="VOC 2012: train 1,464 / val 1,449."),
        VocConfig(
            name="2012_aug",
            description="VOC 2012 + SBD: train 10,582 (SBD + VOC train - VOC val) / val 1,449.",
            augmented=True,
        ),
    ]
    DEFAULT_CONFIG_NAME = "2012_aug"
    IMAGE_FORMAT = "jpeg"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {VOC_TRAINVAL.file_name}, {SBD.file_name} (for 2012_aug) and optionally "
        f"{VOC_TEST.file_name} in the manual dir, packed. See jaxseg.data.voc."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(
            description=__doc__,
            homepage=VOC_TRAINVAL.page,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        voc = TarIndex.build(archive_path(dl_manager, VOC_TRAINVAL))
        lists = {split: f"{VOC_ROOT}/ImageSets/Segmentation/{split}.txt" for split in SPLITS}
        ids = {split: voc.read_ids(name) for split, name in lists.items()}

        def voc_split(split: str) -> Iterator[tuple[str, dict]]:
            masks = _voc_masks(voc, lists[split])
            return self._generate_examples(voc, ids[split], lists[split], masks)

        if self.builder_config.augmented:
            train = self._augmented_train(dl_manager, voc, ids)
        else:
            train = voc_split("train")
        splits = {"train": train, "val": voc_split("val")}
        manual_dir = _manual_dir(dl_manager)
        test_path = manual_dir / VOC_TEST.file_name if manual_dir else None
        if test_path is None or not test_path.exists():
            log.info("%s is not in the manual dir: no test split.", VOC_TEST.file_name)
        else:
            test = TarIndex.build(test_path)
            test_list = f"{VOC_ROOT}/ImageSets/Segmentation/test.txt"
            test_ids = test.read_ids(test_list)
            splits["test"] = self._generate_examples(test, test_ids, test_list, masks=None)
        return splits

    def _generate_examples(
        self, images: TarIndex, ids: Sequence[str], listed_in: str, masks: MaskReader | None
    ) -> Iterator[tuple[str, dict]]:
        """(id, example) for each id; `masks=None` (test split) gives all-ignore masks."""
        for image_id in ids:
            name = f"{VOC_ROOT}/JPEGImages/{image_id}.jpg"
            image_where = f"{images.path.name}: {name}"
            image, size = checked_image(images.read(name, listed_in), image_where)
            if masks is None:
                labels = np.full(size, IGNORE_LABEL, np.uint8)
            else:
                labels, mask_where = masks(image_id)
                if labels.shape != size:
                    raise VocDataError(
                        f"{mask_where}: mask is {labels.shape[1]}x{labels.shape[0]} but its image "
                        f"{image_where} is {size[1]}x{size[0]} (width x height)."
                    )
            yield (
                image_id,
                {
                    "image": image,
                    "segmentation_mask": encode_png(labels),
                    "file_name": image_id,
                },
            )

    def _augmented_train(
        self, dl_manager: tfds.download.DownloadManager, voc: TarIndex, ids: dict[str, list[str]]
    ) -> Iterator[tuple[str, dict]]:
        """SBD train + val + VOC train - VOC val; VOC masks where VOC has them, else SBD's."""
        voc_train, voc_val = set(ids["train"]), set(ids["val"])
        sbd_path = archive_path(dl_manager, SBD)
        sbd_lists, sbd_masks = read_sbd(sbd_path, skip=voc_train | voc_val)
        train_ids = sorted((set(sbd_lists["train"]) | set(sbd_lists["val"]) | voc_train) - voc_val)
        listed_in = f"the train_aug set ({sbd_path.name} lists + VOC train)"
        voc_masks = _voc_masks(voc, listed_in)

        def masks(image_id: str) -> tuple[np.ndarray, str]:
            if image_id in voc_train:
                return voc_masks(image_id)
            where = f"{sbd_path.name}: {SBD_ROOT}/cls/{image_id}.mat"
            if image_id not in sbd_masks:
                raise VocDataError(f"{where} is missing (listed in {listed_in}).")
            return png_labels(sbd_masks[image_id], where), where

        return self._generate_examples(voc, train_ids, listed_in, masks)
