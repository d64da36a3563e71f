"""Export a trained model to ONNX or StableHLO, checked against jaxseg's own logits.

    python -m jaxseg.export --workdir=W --format=onnx|stablehlo --out=FILE [--height H
        --width W] [--batch B]

The file takes float32 images (B, H, W, 3) normalised as jaxseg's pipeline does and returns
logits (B, H, W, K); weights are embedded. The batch is symbolic (`--batch` only sizes the
check); StableHLO files reload with `jax.export.deserialize` without jaxseg installed.
"""

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import checkpoint, errors, losses
from jaxseg.nn.pooling import planar_pooling

FORMATS = ("onnx", "stablehlo")
MAX_RELATIVE_ERROR = 1e-4


def logits_function(model, variables: dict) -> Callable[[jax.Array], jax.Array]:
    """`images -> logits` of the main head in eval mode, with the weights as constants."""

    def forward(images: jax.Array) -> jax.Array:
        return losses.split_outputs(model.apply(variables, images, train=False))[0]

    return forward


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference over the largest reference magnitude."""
    return float(np.max(np.abs(ours - reference)) / max(np.max(np.abs(reference)), 1e-12))


def export_stablehlo(forward: Callable, height: int, width: int) -> bytes:
    """Serialized `jax.export.Exported` of `forward` with a symbolic batch dimension."""
    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, height, width, 3), jnp.float32)
    return jax.export.export(jax.jit(forward))(spec).serialize()


def run_stablehlo(serialized: bytes, images: np.ndarray) -> np.ndarray:
    """Logits of a StableHLO file's model (only `jax` needed)."""
    return np.asarray(jax.export.deserialize(serialized).call(images))


def export_onnx(forward: Callable, height: int, width: int) -> bytes:
    """Serialized ONNX model of `forward` (through jax2onnx) with a symbolic batch dimension."""
    import jax2onnx  # an optional dependency: pip install "jaxseg[export]"

    with planar_pooling():
        try:
            model = jax2onnx.to_onnx(
                forward, [("B", height, width, 3)], input_names=["images"], output_names=["logits"]
            )
        except Exception as error:  # jax2onnx raises many types; name the op it failed on
            raise ValueError(
                f"ONNX conversion failed at the {_failing_onnx_op(error)!r} op "
                f"({type(error).__name__}: {errors.first_line(error)}); "
                "--format=stablehlo exports every model"
            ) from error
    return model.SerializeToString()


def _failing_onnx_op(error: BaseException) -> str:
    """The JAX primitive whose jax2onnx plugin raised `error` (plugins are named after it)."""
    plugins = [
        Path(frame.filename).stem
        for frame in traceback.extract_tb(error.__traceback__)
        if f"jax2onnx{os.sep}plugins" in frame.filename
    ]
    return plugins[-1] if plugins else "unknown"


def run_onnx(serialized: bytes, images: np.ndarray) -> np.ndarray:
    """Logits of an ONNX file's model under onnxruntime on CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


EXPORTERS = {"onnx": (export_onnx, run_onnx), "stablehlo": (export_stablehlo, run_stablehlo)}


def export_model(
    model, variables: dict, fmt: str, height: int, width: int, batch: int = 1, seed: int = 0
) -> tuple[bytes, float]:
    """The exported file's bytes and its relative error against jaxseg's logits on random
    images of `batch`; an error above `MAX_RELATIVE_ERROR` raises."""
    if fmt not in EXPORTERS:
        raise ValueError(f"--format={fmt}: expected one of {', '.join(FORMATS)}")
    export, run = EXPORTERS[fmt]
    forward = logits_function(model, variables)
    serialized = export(forward, height, width)
    images = np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype(np.float32)
    error = relative_error(run(serialized, images), np.asarray(jax.jit(forward)(images)))
    if not error < MAX_RELATIVE_ERROR:
        raise ValueError(
            f"the {fmt} export's logits differ from jaxseg's by {error:.2e} (relative), above "
            f"{MAX_RELATIVE_ERROR:.0e}; nothing was written"
        )
    return serialized, error


def export_workdir(
    workdir: str | Path, fmt: str, out: str | Path, height: int, width: int, batch: int = 1,
    use_ema: bool = True,
) -> str:  # fmt: skip
    """Export the latest checkpoint of `workdir` to `out`; returns a one-line summary."""
    spec = checkpoint.read_model_spec(workdir)
    model = spec.build()
    variables = checkpoint.load_variables(workdir, use_ema=use_ema)
    serialized, error = export_model(model, variables, fmt, height, width, batch)
    Path(out).write_bytes(serialized)
    return (
        f"{workdir} ({spec.name}) -> {out}: {fmt}, input (B, {height}, {width}, 3), "
        f"max relative error {error:.1e} against jaxseg"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxseg.export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="folder with checkpoints/, model.json")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=Path, help="file to write")
    parser.add_argument("--height", type=int, default=512, help="input height the file takes")
    parser.add_argument("--width", type=int, default=512, help="input width the file takes")
    parser.add_argument("--batch", type=int, default=1, help="batch size of the check")
    parser.add_argument(
        "--use_ema", action=argparse.BooleanOptionalAction, default=True,
        help="export the parameters' moving average when the checkpoint keeps one",
    )  # fmt: skip
    args = parser.parse_args(argv)
    print(
        errors.run_with_clean_errors(
            lambda: export_workdir(
                args.workdir, args.format, args.out, args.height, args.width, args.batch,
                args.use_ema,
            )
        )
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
