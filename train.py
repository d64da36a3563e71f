"""Train a segmentation model.

    python train.py --config=pspnet --workdir=runs/pspnet [--config.FIELD=VALUE ...]

`--config` is a preset in configs/ or a path to a config file; rerunning the same command
resumes from the latest checkpoint in the workdir.
"""

import sys

from absl import flags
from ml_collections import config_flags

import configs
from jaxseg import cli, errors
from jaxseg.train import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Preset name or config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs and metrics go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv
    cli.initialize_distributed()
    result = errors.run_with_clean_errors(lambda: train_and_evaluate(_CONFIG.value, _WORKDIR.value))
    if "mean_iou" in result:
        print(f"step {result['step']}: val mIoU {100 * result['mean_iou']:.2f}")


if __name__ == "__main__":
    cli.run(main, configs.resolve_argv(sys.argv))
