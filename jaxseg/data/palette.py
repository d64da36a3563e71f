"""The PASCAL VOC colour palette, and label maps saved as palette PNGs the way VOC stores them."""

from pathlib import Path

import numpy as np
from PIL import Image

IGNORE_COLOUR = (224, 224, 192)
"""VOC draws the ignore label 255 (object boundaries) in this cream colour."""


def voc_palette(num_colours: int = 256) -> np.ndarray:
    """(num_colours, 3) uint8 VOC colour map: bits of the label index spread over R, G and B.

    Index 255 gets VOC's boundary colour, as in the dataset's own PNGs.
    """
    palette = np.zeros((num_colours, 3), np.uint8)
    for index in range(num_colours):
        value, colour = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = colour
    if num_colours > 255:
        palette[255] = IGNORE_COLOUR
    return palette


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) class indices as an (H, W, 3) uint8 RGB image in the VOC colours."""
    return voc_palette()[np.asarray(labels, np.uint8)]


def save_palette_png(labels: np.ndarray, path: str | Path) -> None:
    """Writes (H, W) class indices as a 'P'-mode PNG with the VOC palette (VOC's own format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    image.putpalette(voc_palette().ravel().tolist())
    image.save(path)
