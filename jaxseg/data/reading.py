"""Checked reading of source files while preparing a dataset: images, label PNGs, zip archives.

Every failure raises `DatasetFileError` naming the file (`where`) and what is wrong with it, so
preparation stops before TFDS marks anything as prepared.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from jaxseg.data.images import encode_png


class DatasetFileError(ValueError):
    """A source file is missing, unreadable or inconsistent; the message names it."""


def rgb_image(data: bytes, where: str) -> tuple[bytes, tuple[int, int]]:
    """(encoded RGB image, (height, width)) after fully decoding `data` to catch damage.

    RGB JPEGs and PNGs are kept byte for byte; other modes are converted to RGB and stored as PNG.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = (image.height, image.width)
            if image.mode != "RGB" or image.format not in ("JPEG", "PNG"):
                data = encode_png(np.asarray(image.convert("RGB")))
    except OSError as error:
        raise DatasetFileError(f"{where}: unreadable or truncated image ({error}).") from error
    return data, size


def label_png(data: bytes, where: str, modes: Iterable[str] = ("L", "P")) -> np.ndarray:
    """The pixel values of a label PNG (palette indices for 'P'), checked to be in `modes`."""
    modes = tuple(modes)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in modes:
                raise DatasetFileError(
                    f"{where}: image mode {image.mode!r}; expected one of {modes} "
                    "(single-channel class indices)."
                )
            return np.asarray(image)
    except OSError as error:
        raise DatasetFileError(f"{where}: unreadable PNG ({error}).") from error


def mapped_labels(values: np.ndarray, table: np.ndarray, where: str) -> np.ndarray:
    """uint8 `table[values]`; values whose entry is negative (or past the table) are an error."""
    present = np.unique(values)
    bad = [int(v) for v in present if v >= len(table) or table[v] < 0]
    if bad:
        known = np.flatnonzero(table >= 0)
        raise DatasetFileError(
            f"{where}: label values {bad[:10]} are not among the known values {_ranges(known)}."
        )
    return table[values].astype(np.uint8)


def _ranges(values: np.ndarray) -> str:
    """'0-20, 255' for [0, 1, ..., 20, 255]."""
    parts, start = [], None
    for index, value in enumerate(values):
        if start is None:
            start = value
        if index + 1 == len(values) or values[index + 1] != value + 1:
            parts.append(f"{start}" if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def same_size(labels: np.ndarray, size: tuple[int, int], where: str, image_where: str) -> None:
    """Raises unless the mask has its image's (height, width)."""
    if labels.shape[:2] != size:
        raise DatasetFileError(
            f"{where}: mask is {labels.shape[1]}x{labels.shape[0]} but its image {image_where} "
            f"is {size[1]}x{size[0]} (width x height)."
        )


def open_zip(path: Path) -> zipfile.ZipFile:
    """`path` opened for reading members in place; a damaged archive is named."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetFileError(
            f"{path}: not a readable zip archive ({error}); download it again."
        ) from error


def read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """The bytes of member `name`; a missing or damaged member is named with its archive."""
    where = f"{Path(archive.filename).name}: {name}"
    try:
        return archive.read(name)
    except KeyError:
        raise DatasetFileError(f"{where} is missing.") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DatasetFileError(f"{where}: damaged ({error}); download it again.") from error
