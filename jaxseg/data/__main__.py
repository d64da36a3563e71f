"""Prepare a dataset's files once, before training on it.

    python -m jaxseg.data prepare voc_segmentation/2012_aug --manual_dir=DIR [--data_dir=DIR]
    python -m jaxseg.data prepare shapes
    python -m jaxseg.data prepare folder:DIR

`--manual_dir` holds downloaded archives (see `jaxseg.data.voc.prepare_instructions`); without
it, archives are downloaded. `--data_dir` defaults to $JAXSEG_DATA_DIR, else
~/tensorflow_datasets; pass the same folder to training as `--config.data_dir`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from jaxseg import data
from jaxseg.errors import run_with_clean_errors


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jaxseg.data", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="Build a dataset's ArrayRecord files.")
    prepare.add_argument(
        "name",
        help="dataset or dataset/config: "
        + ", ".join(sorted(data.DATASET_MODULES))
        + " (e.g. voc_segmentation/2012_aug, voc_segmentation/2012, shapes/tiny, folder:DIR)",
    )
    prepare.add_argument("--manual_dir", help="Folder holding the downloaded archives.")
    prepare.add_argument("--data_dir", help="Where prepared datasets live.")
    return parser


def prepare(name: str, manual_dir: str | None = None, data_dir: str | None = None) -> str:
    """Prepares dataset `name` (reading archives from `manual_dir`); returns a summary."""
    if manual_dir is not None:
        folder = Path(manual_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"--manual_dir {manual_dir} is not a folder.")
        if not any(folder.iterdir()):
            builder = data.get_builder(name, data_dir)
            instructions = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", "")
            raise FileNotFoundError(f"--manual_dir {manual_dir} is empty. {instructions}".strip())
    builder = data.prepare(name, data_dir, manual_dir)
    counts = ", ".join(
        f"{split} {info.num_examples:,}" for split, info in sorted(builder.info.splits.items())
    )
    return f"{builder.info.full_name} prepared in {builder.data_dir}: {counts} examples."


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m jaxseg.data`."""
    args = _parser().parse_args(argv)
    print(run_with_clean_errors(lambda: prepare(args.name, args.manual_dir, args.data_dir)))


if __name__ == "__main__":
    main(sys.argv[1:])
