"""Prepare a dataset's files once, before training on it.

    python -m jaxseg.data prepare voc_segmentation/2012_aug --manual_dir=DIR [--data_dir=DIR]
    python -m jaxseg.data prepare shapes
    python -m jaxseg.data prepare folder:DIR
    python -m jaxseg.data class-weights camvid [--split train] [--method inverse_log_frequency]

`--manual_dir` holds downloaded archives (see `jaxseg.data.voc.prepare_instructions`); without
it, archives are downloaded. `--data_dir` defaults to $JAXSEG_DATA_DIR, else
~/tensorflow_datasets; pass the same folder to training as `--config.data_dir`.

`class-weights` counts the split's labelled pixels per class and prints a table and the
`--config.class_weights='(...)'` override to train with (`jaxseg.data.class_weights`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tqdm import tqdm

from jaxseg import data
from jaxseg.data import class_weights
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
    weights = commands.add_parser(
        "class-weights", help="Class weights from a split's pixel counts."
    )
    weights.add_argument("name", help="dataset or dataset/config, as for prepare")
    weights.add_argument("--data_dir", help="Where prepared datasets live.")
    weights.add_argument("--split", default="train")
    weights.add_argument(
        "--method",
        choices=class_weights.METHODS,
        default="median_frequency",
        help="median_frequency: SegNet's median frequency balancing; inverse_log_frequency: "
        "ENet's 1 / ln(1.02 + share)",
    )
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


def weights_table(
    name: str, data_dir: str | None = None, split: str = "train", method: str = "median_frequency"
) -> str:
    """Counts `split`'s pixels per class and returns a table of them with the `method`'s
    weights, ending in the `--config.class_weights` override; absent classes are warned of
    on stderr."""
    source = data.load_source(name, split, data_dir)
    masks = tqdm(source.masks(), total=len(source), desc="counting", unit="mask")
    counts = class_weights.count_pixels(masks, source.num_classes)
    weights = class_weights.class_weights(counts, method)
    for index in counts.absent:
        print(
            f"warning: class {index} ({source.class_names[index]}) has no pixels in {split}; "
            "its weight is 0",
            file=sys.stderr,
        )
    width = max(len(n) for n in [*source.class_names, "class"])
    total = max(int(counts.pixels.sum()), 1)
    lines = [f"{'class':<{width}}  {'pixels':>14}  {'share':>7}  weight"]
    for class_name, pixels, weight in zip(source.class_names, counts.pixels, weights, strict=True):
        lines.append(
            f"{class_name:<{width}}  {pixels:>14,}  {100 * pixels / total:6.2f}%  {weight:.4g}"
        )
    lines.append(class_weights.config_override(weights))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m jaxseg.data`."""
    args = _parser().parse_args(argv)
    if args.command == "prepare":
        run = partial(prepare, args.name, args.manual_dir, args.data_dir)
    else:
        run = partial(weights_table, args.name, args.data_dir, args.split, args.method)
    print(run_with_clean_errors(run))


if __name__ == "__main__":
    main(sys.argv[1:])
