"""Build the model a config or a checkpoint folder describes."""

from pathlib import Path

from ml_collections import ConfigDict

from jaxseg import checkpoint
from jaxseg.models import ModelSpec
from jaxseg.nn import lowering


def build_model(config: ConfigDict, num_classes: int):
    """The registered model named by `config.model` with `config.model_kwargs`; sets the
    process's convolution lowering from `config.conv_lowering`."""
    lowering.configure(config.conv_lowering)
    return ModelSpec.from_config(config, num_classes).build(config.dtype)


def model_for_workdir(config: ConfigDict, workdir: str | Path, num_classes: int):
    """The model recorded in `workdir/model.json` if present (converted or trained weights),
    otherwise the one `config` names. A class-count mismatch with the dataset is an error."""
    if not (Path(workdir) / checkpoint.MODEL_SPEC).exists():
        return build_model(config, num_classes)
    lowering.configure(config.conv_lowering)
    spec = checkpoint.read_model_spec(workdir)
    if spec.num_classes != num_classes:
        raise ValueError(
            f"{Path(workdir) / checkpoint.MODEL_SPEC}: the weights predict {spec.num_classes} "
            f"classes but dataset {config.dataset!r} has {num_classes}"
        )
    return spec.build(config.dtype)
