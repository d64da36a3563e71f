"""Predict label maps for images with the model in a workdir (trained or converted).

    python predict.py --workdir=runs/pspnet --out=predictions photo1.jpg photo2.jpg

Writes OUT/<name>.png (class indices, VOC palette) and OUT/<name>_overlay.jpg.
"""

from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from jaxseg import checkpoint, cli
from jaxseg.build import model_from_spec
from jaxseg.data import palette
from jaxseg.evaluate import predict_image
from jaxseg.viz import overlay

_WORKDIR = flags.DEFINE_string("workdir", None, "Folder with checkpoints/ and model.json.")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_SCALES = flags.DEFINE_list("scales", ["1.0"], "Input scales whose predictions are averaged.")
_FLIP = flags.DEFINE_bool("flip", False, "Also average the mirrored image's prediction.")
_USE_EMA = flags.DEFINE_bool(
    "use_ema", True, "Predict with the parameters' moving average when the checkpoint keeps one."
)
flags.mark_flags_as_required(["workdir", "out"])


def _predict(paths: list[str]) -> None:
    spec = checkpoint.read_model_spec(_WORKDIR.value)
    if spec is None:
        raise FileNotFoundError(f"{Path(_WORKDIR.value) / checkpoint.MODEL_SPEC} not found")
    model = model_from_spec(spec)
    variables = checkpoint.load_variables(_WORKDIR.value, use_ema=_USE_EMA.value)
    out = Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    scales = tuple(float(s) for s in _SCALES.value)
    for path in paths:
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except OSError as error:
            raise ValueError(f"{path}: not a readable image ({error})") from error
        labels = predict_image(model, variables, image, scales=scales, flip=_FLIP.value)
        stem = Path(path).stem
        palette.save_palette_png(labels, out / f"{stem}.png")
        Image.fromarray(overlay(image, labels)).save(out / f"{stem}_overlay.jpg", quality=92)
        print(f"{path} -> {out / stem}.png")


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise app.UsageError("give one or more image paths")
    cli.run_with_clean_errors(lambda: _predict(argv[1:]))


if __name__ == "__main__":
    app.run(main)
