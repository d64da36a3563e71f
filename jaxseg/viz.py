"""Pictures a person looks at: coloured label maps blended over images, side-by-side panels."""

import numpy as np

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
