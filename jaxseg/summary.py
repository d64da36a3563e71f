"""TensorBoard logging (scalars, per-class IoU, confusion matrix, prediction overlays) without
TensorFlow."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter as _TensorBoardWriter

from jaxseg.viz import confusion_matrix_image


class SummaryWriter:
    """Writes TensorBoard events on the main process; a no-op elsewhere."""

    def __init__(self, logdir: str | Path, *, enabled: bool = True):
        self._writer = _TensorBoardWriter(str(logdir)) if enabled else None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Log each value as a scalar at `step`."""
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(name, float(value), step)
        self._writer.flush()

    def evaluation(self, step: int, summary: Mapping, panels: Sequence[np.ndarray]) -> None:
        """Log mIoU, pixel accuracy, per-class IoU, the row-normalised confusion matrix and
        image | label | prediction panels."""
        if self._writer is None:
            return
        scalars = {
            "eval/mean_iou": summary["mean_iou"],
            "eval/pixel_accuracy": summary["pixel_accuracy"],
        }
        for name, value in summary["per_class_iou"].items():
            if value is not None:
                scalars[f"eval_iou/{name}"] = value
        self.scalars(step, scalars)
        names = list(summary["per_class_iou"])
        matrix = confusion_matrix_image(np.asarray(summary["confusion_matrix"]), names)
        self._writer.add_image("eval/confusion_matrix", matrix, step, dataformats="HWC")
        for i, image in enumerate(panels):
            self._writer.add_image(f"eval/prediction_{i}", image, step, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
