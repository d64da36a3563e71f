"""Pictures a person looks at: coloured label maps blended over images, side-by-side panels,
confusion matrices."""

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxseg.data.palette import colorize


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the VOC-coloured `labels` over uint8 RGB `image`; background (0) stays unblended."""
    image = np.asarray(image, np.float32)
    colours = colorize(labels).astype(np.float32)
    blend = np.where((np.asarray(labels) > 0)[..., None], alpha, 0.0)
    return np.clip(image * (1 - blend) + colours * blend, 0, 255).astype(np.uint8)


def panel(image: np.ndarray, labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Image | ground truth | prediction overlays side by side, as one uint8 (H, 3W, 3) image."""
    image = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    return np.concatenate([image, overlay(image, labels), overlay(image, preds)], axis=1)


LABEL_MARGIN = 120
"""Pixels left of and above a confusion-matrix picture's cells, for class names."""
_MATRIX_SIDE = 600  # the cells' target extent in pixels
_MAX_CELL = 24
_FONT_SIZE = 11
_TICK_EVERY = 10  # with too many classes for names, every tenth class is marked by its index
_VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)])
NO_PIXELS_COLOUR = (160, 160, 160)
"""The row of a class with no labelled pixels, whose shares are undefined."""


@functools.cache
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=_FONT_SIZE)


def colour_scale(values: np.ndarray) -> np.ndarray:
    """uint8 RGB of values in [0, 1] on a viridis-like scale: dark violet (0) to yellow (1)."""
    stops = np.linspace(0.0, 1.0, len(_VIRIDIS))
    values = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    channels = [np.interp(values, stops, _VIRIDIS[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


def row_normalized(cm: np.ndarray) -> np.ndarray:
    """Each true class's (row's) pixels as shares over the predicted classes; NaN rows for
    classes with no labelled pixels."""
    cm = np.asarray(cm, np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, cm / totals, np.nan)


def confusion_cell_size(num_classes: int) -> int:
    """Side in pixels of one class's cell: the matrix spans about 600 px, cells at most 24."""
    return max(1, min(_MAX_CELL, _MATRIX_SIDE // num_classes))


def _tick_labels(class_names: Sequence[str], cell: int) -> list[str]:
    """Every class name where cells are as tall as the text, else every tenth class index."""
    if cell > _FONT_SIZE:
        return list(class_names)
    return [str(i) if i % _TICK_EVERY == 0 else "" for i in range(len(class_names))]


def _fitted(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    while draw.textlength(text, font=_font()) > width and len(text) > 3:
        text = text[: len(text) - 3] + ".."
    return text


def _label_strip(labels: Sequence[str], cell: int, anchor: str) -> Image.Image:
    """LABEL_MARGIN x (cells) strip with label i centred on row i; `anchor` "rm" aligns the
    labels to the right edge, "lm" to the left."""
    strip = Image.new("RGB", (LABEL_MARGIN, len(labels) * cell), "white")
    draw = ImageDraw.Draw(strip)
    x = LABEL_MARGIN - 4 if anchor == "rm" else 4
    half = _FONT_SIZE / 2 + 1  # a label centred on an edge cell is moved inside the strip
    for i, label in enumerate(labels):
        y = min(max(i * cell + cell / 2, half), strip.height - half)
        text = _fitted(draw, label, LABEL_MARGIN - 8)
        draw.text((x, y), text, fill="black", font=_font(), anchor=anchor)
    return strip


def _legend(canvas: Image.Image) -> None:
    """How to read the picture, in the corner above the row labels."""
    draw = ImageDraw.Draw(canvas)
    for line, text in enumerate(("rows: true class", "columns: predicted", "colour: row share")):
        draw.text((4, 4 + 14 * line), text, fill="black", font=_font())
    width = LABEL_MARGIN - 8
    bar = colour_scale(np.linspace(0.0, 1.0, width))[None].repeat(10, axis=0)
    canvas.paste(Image.fromarray(bar), (4, 50))
    draw.text((4, 62), "0", fill="black", font=_font())
    draw.text((4 + width, 62), "1", fill="black", font=_font(), anchor="ra")
    draw.rectangle((4, 82, 14, 92), fill=NO_PIXELS_COLOUR)
    draw.text((18, 80), "no pixels", fill="black", font=_font())


def confusion_matrix_image(cm: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """uint8 RGB picture of a confusion matrix (`cm[true, pred]` counts), rows normalised.

    Cells of `confusion_cell_size(K)` pixels start LABEL_MARGIN pixels from the left and top,
    so the picture is LABEL_MARGIN + K * cell pixels square. Class names label both axes when
    the cells are as tall as the text (up to 50 classes), else every tenth class index does.
    """
    cell = confusion_cell_size(len(class_names))
    shares = row_normalized(cm)
    colours = np.where(
        np.isnan(shares)[..., None], np.uint8(NO_PIXELS_COLOUR), colour_scale(np.nan_to_num(shares))
    )
    cells = colours.repeat(cell, axis=0).repeat(cell, axis=1)
    side = LABEL_MARGIN + cells.shape[0]
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(Image.fromarray(cells), (LABEL_MARGIN, LABEL_MARGIN))
    labels = _tick_labels(class_names, cell)
    canvas.paste(_label_strip(labels, cell, "rm"), (0, LABEL_MARGIN))
    columns = _label_strip(labels, cell, "lm").transpose(Image.Transpose.ROTATE_90)
    canvas.paste(columns, (LABEL_MARGIN, 0))
    _legend(canvas)
    return np.asarray(canvas)
