"""Know a model before training it: parameters, forward GFLOPs, train-step memory.

    python -m jaxseg.models summary deeplab_v3 [--size 512 512] [--num_classes 21] [--batch 8]
        [--option depth=50 --option output_stride=16] [--no_memory]

Prints parameters per top-level module and in total, XLA's forward FLOPs for one image and
the memory of `train.py`'s step under `configs/base.py` (SGD with momentum, cross-entropy) at
`--batch` on one device (`jaxseg.model_report`). Run it from the repository root, as
`train.py`. Option values are Python literals (`multi_grid=None`, `stage_sizes=(2,2,2,2)`),
else strings (`dtype=bfloat16`).
"""

import argparse
import ast
import sys
from collections.abc import Sequence

from configs import base
from jaxseg import model_report as report
from jaxseg import models
from jaxseg.errors import run_with_clean_errors


def parse_option(text: str) -> tuple[str, object]:
    """'depth=50' -> ('depth', 50); a value that is not a Python literal stays a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: give an option as NAME=VALUE")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jaxseg.models", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="Parameters, GFLOPs and memory of a model.")
    summary.add_argument("name", help="model: " + ", ".join(models.names()))
    summary.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    summary.add_argument("--num_classes", type=int, default=21)
    summary.add_argument("--batch", type=int, default=8, help="train-step batch for memory")
    summary.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model option (repeatable); see jaxseg.models.options(NAME)",
    )
    summary.add_argument(
        "--no_memory", action="store_true", help="skip compiling the train step (the slow part)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m jaxseg.models`."""
    args = _parser().parse_args(argv)
    result = run_with_clean_errors(
        lambda: report.report(
            args.name,
            args.num_classes,
            tuple(args.size),
            args.batch,
            train_config=None if args.no_memory else base.get_config(),
            **dict(args.option),
        )
    )
    print(report.format_report(result))


if __name__ == "__main__":
    main(sys.argv[1:])
