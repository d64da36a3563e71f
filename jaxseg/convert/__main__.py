"""Convert a PyTorch checkpoint into a jaxseg checkpoint folder.

    python -m jaxseg.convert --source torchvision --arch deeplabv3_resnet101 IN.pth --out DIR

DIR then holds model.json and checkpoints/0/state, the format of a training run, so
`eval.py --workdir=DIR`, `predict.py --workdir=DIR` and `train.py --config.init_from=DIR` use
it directly.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from jaxseg import checkpoint, errors
from jaxseg.convert.api import SOURCES, convert
from jaxseg.convert.files import load_state_dict


def convert_file(path: Path, source: str, arch: str, out: Path) -> str:
    """Convert the checkpoint at `path` into folder `out`; returns a one-line summary."""
    state_dict = load_state_dict(path)
    try:
        converted = convert(state_dict, source=source, arch=arch)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    if converted.spec is None:
        raise ValueError(
            f"{source} {arch} is a backbone without a segmentation head: initialise a model's "
            f"backbone from it with --config.backbone_init={path} instead"
        )
    spec = converted.spec
    checkpoint.write_weights(out, spec, converted.variables)
    model = f"jaxseg model {spec.name!r}, {spec.num_classes} classes"
    return f"{path} ({source} {arch}) -> {out}: {model}"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxseg.convert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("checkpoint", type=Path, help=".pth, .pt or .safetensors file")
    parser.add_argument("--source", required=True, choices=sorted(SOURCES))
    parser.add_argument("--arch", required=True, help="the source's model name")
    parser.add_argument("--out", required=True, type=Path, help="folder to write")
    args = parser.parse_args(argv)
    print(
        errors.run_with_clean_errors(
            lambda: convert_file(args.checkpoint, args.source, args.arch, args.out)
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
