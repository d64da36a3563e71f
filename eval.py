"""Evaluate the latest checkpoint of a workdir: per-class IoU table, mIoU, metrics JSON.

    python eval.py --config=pspnet --workdir=runs/pspnet [--config.eval.scales='(0.75,1.0,1.25)']

Writes WORKDIR/eval_metrics.json (with the confusion matrix) and WORKDIR/confusion_matrix.png;
with --predictions_dir, also label PNGs in the VOC palette.
"""

import sys

from absl import flags
from ml_collections import config_flags

import configs
from jaxseg import cli, errors
from jaxseg.evaluate import evaluate_workdir

_CONFIG = config_flags.DEFINE_config_file("config", None, "Preset name or config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder holding checkpoints/ (train or convert).")
_PREDICTIONS = flags.DEFINE_string("predictions_dir", None, "Write predicted label PNGs here.")
flags.mark_flags_as_required(["config", "workdir"])


def format_table(summary: dict) -> str:
    """A plain-text table of per-class IoU followed by mIoU and pixel accuracy."""
    names = list(summary["per_class_iou"])
    width = max(len(n) for n in names + ["pixel accuracy"])
    lines = [f"{'class':<{width}}  IoU", "-" * (width + 8)]
    for name, value in summary["per_class_iou"].items():
        shown = "   n/a" if value is None else f"{100 * value:6.2f}"
        lines.append(f"{name:<{width}}  {shown}")
    lines.append("-" * (width + 8))
    lines.append(f"{'mIoU':<{width}}  {100 * summary['mean_iou']:6.2f}")
    lines.append(f"{'pixel accuracy':<{width}}  {100 * summary['pixel_accuracy']:6.2f}")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    cli.initialize_distributed()
    summary = errors.run_with_clean_errors(
        lambda: evaluate_workdir(_CONFIG.value, _WORKDIR.value, _PREDICTIONS.value)
    )
    print(format_table(summary))


if __name__ == "__main__":
    cli.run(main, configs.resolve_argv(sys.argv))
