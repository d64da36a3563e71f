"""Predict label maps for images with the model in a workdir (trained or converted).

    python predict.py --workdir=runs/pspnet --out=predictions photo1.jpg photo2.jpg

Writes OUT/<name>.png (class indices, VOC palette) and OUT/<name>_overlay.jpg; inputs that
share a name get -2, -3, ... appended. An unreadable image is reported and skipped; the exit
status is then non-zero.
"""

import sys
from pathlib import Path

from absl import app, flags
from PIL import Image

from jaxseg import checkpoint, cli, errors
from jaxseg.config_checks import check_scales
from jaxseg.data import palette
from jaxseg.data.images import read_rgb
from jaxseg.inference import Predictor
from jaxseg.viz import overlay

_WORKDIR = flags.DEFINE_string("workdir", None, "Folder with checkpoints/ and model.json.")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_SCALES = flags.DEFINE_list("scales", ["1.0"], "Input scales whose predictions are averaged.")
_FLIP = flags.DEFINE_bool("flip", False, "Also average the mirrored image's prediction.")
_USE_EMA = flags.DEFINE_bool(
    "use_ema", True, "Predict with the parameters' moving average when the checkpoint keeps one."
)
flags.mark_flags_as_required(["workdir", "out"])


def output_stems(paths: list[str]) -> list[str]:
    """One distinct output name per input: its stem, with -2, -3, ... when stems repeat."""
    stems, taken = [], set()
    for path in paths:
        stem, copy = Path(path).stem, 1
        while (candidate := stem if copy == 1 else f"{stem}-{copy}") in taken:
            copy += 1
        taken.add(candidate)
        stems.append(candidate)
    return stems


def _check_no_input_overwritten(paths: list[str], outputs: list[Path]) -> None:
    inputs = {Path(p).resolve(): p for p in paths}
    for output in outputs:
        if output.resolve() in inputs:
            raise ValueError(
                f"--out={_OUT.value}: writing {output} would overwrite the input "
                f"{inputs[output.resolve()]}; choose another --out folder"
            )


def _scales() -> tuple[float, ...]:
    try:
        scales = tuple(float(s) for s in _SCALES.value)
    except ValueError as error:
        raise ValueError(f"--scales={','.join(_SCALES.value)}: {error}") from error
    check_scales(scales, "--scales")
    return scales


def _predict(paths: list[str]) -> None:
    scales, out = _scales(), Path(_OUT.value)
    stems = output_stems(paths)
    _check_no_input_overwritten(
        paths, [out / f"{s}{suffix}" for s in stems for suffix in (".png", "_overlay.jpg")]
    )
    predictor = Predictor(
        checkpoint.read_model_spec(_WORKDIR.value).build(),
        checkpoint.load_variables(_WORKDIR.value, use_ema=_USE_EMA.value),
        scales=scales, flip=_FLIP.value,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for path, stem in zip(paths, stems, strict=True):
        try:
            image = read_rgb(path)
        except OSError as error:
            failures.append(path)
            print(f"{path}: not a readable image ({error}); skipped", file=sys.stderr)
            continue
        labels = predictor(image)
        palette.save_palette_png(labels, out / f"{stem}.png")
        Image.fromarray(overlay(image, labels)).save(out / f"{stem}_overlay.jpg", quality=92)
        print(f"{path} -> {out / stem}.png")
    if failures:
        raise ValueError(
            f"{len(failures)} of {len(paths)} images could not be read: {', '.join(failures)}"
        )


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("give one or more image paths")
    errors.run_with_clean_errors(lambda: _predict(argv[1:]))


if __name__ == "__main__":
    cli.run(main, sys.argv)
