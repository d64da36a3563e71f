"""Decoding photos as the model expects them (8-bit RGB, upright), and the PNG encoding that
datasets store images and masks in."""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb8(image: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) pixels; 16-bit greyscale keeps its high byte (as OpenCV reduces it)
    instead of being clipped to 255 by Pillow's `convert("RGB")`."""
    if image.mode in _HIGH_DEPTH_MODES:
        grey = (np.clip(np.asarray(image), 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def read_rgb(path: str | Path) -> np.ndarray:
    """uint8 (H, W, 3) pixels of the image file at `path`, turned upright by its EXIF
    orientation as photo viewers show it."""
    with Image.open(path) as image:
        return to_rgb8(ImageOps.exif_transpose(image))


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Lossless PNG bytes of a uint8 (H, W) or (H, W, 3) array; `compress_level` 0-9 trades
    size for speed (6 is Pillow's default)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
