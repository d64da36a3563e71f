"""`folder:DIR`: a dataset of your own images and masks in a folder (TFDS builder).

Layout:

    DIR/images/<split>/<stem>.jpg|.jpeg|.png
    DIR/masks/<split>/<stem>.png
    DIR/classes.txt              one class name per line; line k (from 0) is class k
    DIR/palette.txt  (optional)  "R G B" per line (line k: colour of class k), for colour masks

Splits are the sub-folders of `images/`. Masks are single-channel class indices ('L' or 'P'
PNGs, read as indices), or RGB colour masks when `palette.txt` exists. 255 is ignored.
`folder:DIR:reduce_zero_label` maps 0 to 255 and k to k - 1 (mmsegmentation's
`reduce_zero_label`, for masks where 0 means "unlabelled"; `classes.txt` then names the classes
after the shift). Prepared into the data dir once per folder, and again when a file in it
changes (its config name holds a digest of every file's path, size and modification time).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from jaxseg.data import reading
from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png
from jaxseg.data.labels import IGNORE_LABEL

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
REDUCE_ZERO_LABEL = "reduce_zero_label"
"""Option appended to the dataset name: `folder:DIR:reduce_zero_label`."""


@dataclasses.dataclass(frozen=True)
class FolderSpec:
    """What `folder:DIR[:reduce_zero_label]` names."""

    root: Path
    reduce_zero_label: bool = False

    @classmethod
    def parse(cls, argument: str) -> FolderSpec:
        """The spec of the part of the dataset name after `folder:`."""
        reduce = argument.endswith(":" + REDUCE_ZERO_LABEL)
        path = argument.removesuffix(":" + REDUCE_ZERO_LABEL) if reduce else argument
        if not path:
            raise ValueError(
                "Dataset 'folder:' names no folder: pass --config.dataset=folder:DIR "
                "(DIR holding images/, masks/ and classes.txt)."
            )
        return cls(Path(path).expanduser().resolve(), reduce)


def class_names(root: Path) -> tuple[str, ...]:
    """The lines of `root/classes.txt`."""
    path = root / "classes.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a folder dataset needs classes.txt (one class name per line) "
            "beside images/ and masks/."
        )
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(names) < 2 or len(names) >= IGNORE_LABEL:
        raise reading.DatasetFileError(
            f"{path}: {len(names)} classes; expected 2 to {IGNORE_LABEL - 1}."
        )
    return names


def read_palette(root: Path, num_classes: int) -> np.ndarray | None:
    """(num_classes, 3) colours of `root/palette.txt`, or None when there is no palette."""
    path = root / "palette.txt"
    if not path.is_file():
        return None
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    bad = [n for n, row in enumerate(rows, 1) if len(row) != 3 or not all(v.isdigit() for v in row)]
    if bad or len(rows) != num_classes:
        raise reading.DatasetFileError(
            f"{path}: expected {num_classes} lines of 'R G B' (one per class of classes.txt), "
            f"got {len(rows)} lines" + (f", line {bad[0]} malformed." if bad else ".")
        )
    palette = np.asarray(rows, np.int64)
    if palette.max() > 255:
        raise reading.DatasetFileError(f"{path}: colour values above 255.")
    return palette


def splits(root: Path) -> list[str]:
    """The split folders of `root/images`."""
    images = root / "images"
    if not images.is_dir():
        raise FileNotFoundError(
            f"{images} is missing: a folder dataset holds images/<split>/ and masks/<split>/."
        )
    return sorted(p.name for p in images.iterdir() if p.is_dir())


def pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) paths of `split`, by stem; an unpaired file or an empty split is an error."""
    image_dir, mask_dir = root / "images" / split, root / "masks" / split
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in mask_dir.glob("*.png")} if mask_dir.is_dir() else {}
    if not images:
        raise reading.DatasetFileError(f"{image_dir}: empty split (no .jpg, .jpeg or .png).")
    for stem in sorted(images.keys() - masks.keys()):
        raise reading.DatasetFileError(f"{images[stem]} has no mask {mask_dir / stem}.png.")
    for stem in sorted(masks.keys() - images.keys()):
        raise reading.DatasetFileError(f"{masks[stem]} has no image in {image_dir}.")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def fingerprint(root: Path) -> str:
    """A digest of the path, size and modification time of every file the dataset reads."""
    digest = hashlib.sha256()
    files = [root / "classes.txt", root / "palette.txt"]
    for top in ("images", "masks"):
        if (root / top).is_dir():
            files += sorted(p for p in (root / top).rglob("*") if p.is_file())
    for path in files:
        if path.is_file():
            stat = path.stat()
            digest.update(
                f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:12]


def _folder_key(spec: FolderSpec) -> str:
    """`<folder name>_<digest of its path and options>`: the same folder, same key."""
    slug = re.sub(r"[^a-z0-9]+", "_", spec.root.name.lower()).strip("_") or "folder"
    options = f"{spec.root}\0{spec.reduce_zero_label}".encode()
    return f"{slug}_{hashlib.sha256(options).hexdigest()[:8]}"


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    """One folder: `path` (empty: the manual dir) and whether 0 means unlabelled."""

    path: str = ""
    reduce_zero_label: bool = False


def config_for(spec: FolderSpec) -> FolderConfig:
    """The builder config of `spec`, named by folder and by the current state of its files."""
    return FolderConfig(
        name=f"{_folder_key(spec)}_{fingerprint(spec.root)}",
        description=f"Images and masks of {spec.root}.",
        path=str(spec.root),
        reduce_zero_label=spec.reduce_zero_label,
    )


def remove_stale(builder: tfds.core.DatasetBuilder) -> None:
    """Deletes versions of the same folder prepared before its files changed."""
    config = builder.builder_config.name
    key = config.rsplit("_", 1)[0]
    dataset_dir = Path(builder.data_dir_root) / builder.name
    for other in dataset_dir.glob(f"{key}_*"):
        if other.name != config and other.name.rsplit("_", 1)[0] == key:
            shutil.rmtree(other, ignore_errors=True)


def label_table(num_classes: int, reduce_zero_label: bool) -> np.ndarray:
    """Mask value -> stored label (-1: not allowed)."""
    table = np.full(256, -1, np.int64)
    if reduce_zero_label:
        table[0] = IGNORE_LABEL
        table[1 : num_classes + 1] = np.arange(num_classes)
    else:
        table[:num_classes] = np.arange(num_classes)
    table[IGNORE_LABEL] = IGNORE_LABEL
    return table


def colour_indices(path: Path, palette: np.ndarray) -> np.ndarray:
    """Class indices of an RGB colour mask; a colour not in the palette is named."""
    try:
        with Image.open(io.BytesIO(_read(path))) as image:
            rgb = np.asarray(image.convert("RGB"), np.int64)
    except OSError as error:
        raise reading.DatasetFileError(f"{path}: unreadable PNG ({error}).") from error
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(palette_codes)
    position = np.clip(np.searchsorted(palette_codes[order], codes), 0, len(order) - 1)
    known = palette_codes[order][position] == codes
    if not known.all():
        y, x = np.argwhere(~known)[0]
        colour = tuple(int(v) for v in rgb[y, x])
        raise reading.DatasetFileError(
            f"{path}: colour {colour} at x={x}, y={y} is not in palette.txt."
        )
    return order[position].astype(np.uint8)


class SegmentationFolder(SegmentationBuilder):
    """Images and masks of a folder (see `jaxseg.data.folder`)."""

    name = "folder"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [FolderConfig(name="manual", description="The folder in the manual dir.")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "The manual dir is the folder (images/<split>/, masks/<split>/, classes.txt). "
        "See jaxseg.data.folder."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(description=__doc__, disable_shuffling=True)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        config = self.builder_config
        root = Path(config.path) if config.path else Path(dl_manager.manual_dir)
        names = class_names(root)
        palette = read_palette(root, len(names))
        table = label_table(len(names), config.reduce_zero_label)
        return {
            split: self._generate_examples(pairs(root, split), palette, table)
            for split in splits(root)
        }

    def _generate_examples(
        self, files: list[tuple[Path, Path]], palette: np.ndarray | None, table: np.ndarray
    ) -> Iterator[tuple[str, dict]]:
        for image_path, mask_path in files:
            image, size = reading.rgb_image(_read(image_path), str(image_path))
            if palette is None:
                values = reading.label_png(_read(mask_path), str(mask_path))
            else:
                values = colour_indices(mask_path, palette)
            labels = reading.mapped_labels(values, table, str(mask_path))
            reading.same_size(labels, size, str(mask_path), str(image_path))
            yield (
                image_path.stem,
                {
                    "image": image,
                    "segmentation_mask": encode_png(labels),
                    "file_name": image_path.stem,
                },
            )


def _read(path: Path) -> bytes:
    try:
        return epath.Path(path).read_bytes()
    except OSError as error:
        raise reading.DatasetFileError(f"{path}: unreadable ({error}).") from error
