"""`shapes`: an embedded, procedurally generated segmentation dataset (TFDS builder).

Coloured, textured shapes on cluttered backgrounds, with occlusion and a VOC-like ignore
border around every object. Needs no download, so examples, tests and smoke runs always have
data. Every example is a pure function of (split, index): regenerating it gives the same bytes.
"""

from __future__ import annotations

import colorsys
import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from scipy import ndimage

from jaxseg.data.builder import SegmentationBuilder
from jaxseg.data.images import encode_png
from jaxseg.data.labels import IGNORE_LABEL

CLASS_NAMES = ("background", "disc", "square", "triangle", "ring", "star", "cross")
NUM_CLASSES = len(CLASS_NAMES)

# Hue centre (degrees) of each object class's colour family; backgrounds stay desaturated.
_CLASS_HUES = {"disc": 0, "square": 55, "triangle": 120, "ring": 185, "star": 235, "cross": 295}
_HUE_JITTER = 10.0
_SIZE_RANGE = (112, 144)  # each side of an image, inclusive
_RADIUS_RANGE = (14.0, 34.0)  # object size in pixels
_MAX_OBJECTS = 5
_MAX_EXTENT = 1.45  # farthest point of any shape from its centre, in radii (triangle: 1.36)
_SPLIT_SEEDS = {"train": 0, "val": 1}
_Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


# Signed distances in an object's unit frame (negative inside, about 1 unit = the radius).
def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - 0.85


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    angles = np.pi / 2 + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    edges = [np.cos(a) * u + np.sin(a) * v for a in angles]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.68


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(u, v) - 0.75) - 0.27


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    sector = 2 * np.pi / 5
    phase = np.mod(np.arctan2(v, u), sector) / sector  # 0..1 within one point
    tip = 1.0 - 2.0 * np.abs(phase - 0.5)  # 1 at the point, 0 between points
    return (np.hypot(u, v) - (0.5 + 0.65 * tip)) * 0.8


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    horizontal = np.maximum(au - 1.0, av - 0.3)
    vertical = np.maximum(au - 0.3, av - 1.0)
    return np.minimum(horizontal, vertical)


_SHAPES: dict[str, _Sdf] = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
    "ring": _ring,
    "star": _star,
    "cross": _cross,
}


def _hsv(h_deg: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h_deg % 360) / 360, s, v), np.float32)


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation colour of any hue: background and distractor material."""
    return _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.28), rng.uniform(0.15, 0.9))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Gradient plus soft distractor blobs plus grain, all in muted colours."""
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.arange(w, dtype=np.float32)[None, :] / w + np.sin(
        angle
    ) * np.arange(h, dtype=np.float32)[:, None] / h
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    c0, c1 = _muted_colour(rng), _muted_colour(rng)
    image = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(3, 9)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(6, 40), rng.uniform(6, 40)
        sharpness = rng.uniform(1.5, 4.0)
        colour = _muted_colour(rng)
        y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 2)
        x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 2)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        dist = np.hypot((yy - cy) / ry, (xx - cx) / rx)
        alpha = np.clip((1.0 - dist) * sharpness, 0.0, 1.0)[..., None].astype(np.float32)
        patch = image[y0:y1, x0:x1]
        patch += alpha * (colour - patch)
    sigma = rng.uniform(0.01, 0.05)
    image += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return image


def _texture(
    rng: np.random.Generator, colour: np.ndarray, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Fill for one object: stripes, checks, noise or shaded solid in two shades of its hue.

    The second shade is dark or pale, so single pixels of it look like background and the
    class must be read from context.
    """
    h, s, v = colorsys.rgb_to_hsv(*colour.tolist())
    if rng.random() < 0.5:
        shade = _hsv(h * 360, s * rng.uniform(0.7, 1.0), v * rng.uniform(0.25, 0.5))
    else:
        shade = _hsv(h * 360, s * rng.uniform(0.2, 0.45), min(1.0, v * 1.2))
    kind = rng.integers(4)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(5.0, 10.0)
    along = (np.cos(angle) * xx + np.sin(angle) * yy) / period
    if kind == 0:  # stripes
        second = np.mod(along, 1.0) < rng.uniform(0.3, 0.5)
    elif kind == 1:  # checks
        across = (-np.sin(angle) * xx + np.cos(angle) * yy) / period
        second = (np.floor(along) + np.floor(across)) % 2 == 1
    elif kind == 2:  # speckle noise
        second = rng.random(yy.shape) < rng.uniform(0.15, 0.35)
    else:  # shaded solid
        second = np.zeros(yy.shape, bool)
    fill = np.where(second[..., None], shade, colour)
    light = 1.0 + 0.25 * np.tanh(along / 4.0)[..., None] * rng.uniform(-1, 1)
    sigma = rng.uniform(0.02, 0.08)
    return (fill * light).astype(np.float32) + sigma * rng.standard_normal(
        fill.shape, dtype=np.float32
    )


def _paint_object(
    rng: np.random.Generator, image: np.ndarray, label: np.ndarray, class_id: int
) -> None:
    """Draws one object over `image` (anti-aliased) and `label` (hard edge), occluding."""
    name = CLASS_NAMES[class_id]
    h, w = label.shape
    radius = rng.uniform(*_RADIUS_RANGE)
    cy, cx = rng.uniform(0.1 * h, 0.9 * h), rng.uniform(0.1 * w, 0.9 * w)
    theta = rng.uniform(0, 2 * np.pi)
    aspect = 1.0 if name in ("disc", "ring") else rng.uniform(0.8, 1.25)
    reach = int(np.ceil(radius * _MAX_EXTENT * max(aspect, 1 / aspect))) + 2
    y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
    x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / (radius * aspect)
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) * aspect / radius
    dist = _SHAPES[name](u, v) * radius  # approximately pixels
    colour = _hsv(
        _CLASS_HUES[name] + rng.uniform(-_HUE_JITTER, _HUE_JITTER),
        rng.uniform(0.6, 1.0),
        rng.uniform(0.55, 1.0),
    )
    fill = _texture(rng, colour, yy, xx)
    alpha = np.clip(0.5 - dist, 0.0, 1.0)[..., None]
    patch = image[y0:y1, x0:x1]
    patch += alpha * (fill - patch)
    label[y0:y1, x0:x1][dist < 0] = class_id


def _ignore_borders(label: np.ndarray) -> np.ndarray:
    """Marks a 2-pixel band across every boundary between labels as ignore, as VOC does."""
    edge = ndimage.maximum_filter(label, size=3) != ndimage.minimum_filter(label, size=3)
    return np.where(edge, np.uint8(IGNORE_LABEL), label)


def make_example(split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders example `index` of `split`: (image uint8 HxWx3, mask uint8 HxW).

    Deterministic: the same (split, index) always gives the same arrays.
    """
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"Unknown shapes split {split!r}; expected one of {list(_SPLIT_SEEDS)}.")
    rng = np.random.default_rng([_SPLIT_SEEDS[split], index])
    h, w = (int(x) for x in rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1, size=2))
    image = _background(rng, h, w)
    label = np.zeros((h, w), np.uint8)
    for class_id in rng.integers(1, NUM_CLASSES, size=rng.integers(1, _MAX_OBJECTS + 1)):
        _paint_object(rng, image, label, int(class_id))
    pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    return pixels, _ignore_borders(label)


def encoded_example(split: str, index: int) -> dict[str, bytes | str]:
    """Example `index` of `split` as the builder stores it (PNG bytes and a file name)."""
    image, mask = make_example(split, index)
    return {
        "image": encode_png(image, compress_level=1),
        "segmentation_mask": encode_png(mask, compress_level=1),
        "file_name": f"shapes_{split}_{index:05d}",
    }


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    """Number of examples per split; `tiny` is a quick subset for tests and smoke runs."""

    num_train: int = 2000
    num_val: int = 300


class Shapes(SegmentationBuilder):
    """Procedural shapes segmentation: 6 object classes plus background, ignore label 255."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="default", description="2000 train / 300 val examples."),
        ShapesConfig(name="tiny", description="24 train / 8 val examples.", num_train=24,
                     num_val=8),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.segmentation_info(
            description=__doc__,
            disable_shuffling=True,  # record i is example i, as generated
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        del dl_manager  # nothing to download
        return {
            "train": self._generate_examples("train", self.builder_config.num_train),
            "val": self._generate_examples("val", self.builder_config.num_val),
        }

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict]]:
        for index in range(count):
            yield index, encoded_example(split, index)
