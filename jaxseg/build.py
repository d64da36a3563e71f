"""Build the model a config or a checkpoint folder describes."""

from pathlib import Path

from ml_collections import ConfigDict

from jaxseg import checkpoint, models
from jaxseg.nn import lowering


def _as_tuples(value):
    """JSON turns tuples into lists; model options expect tuples (hashable module fields)."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


def build_model(config: ConfigDict, num_classes: int):
    """The registered model named by `config.model` with `config.model_kwargs`; sets the
    process's convolution lowering from `config.conv_lowering`."""
    lowering.configure(config.conv_lowering)
    return models.create(
        config.model, num_classes=num_classes, dtype=config.dtype, **config.model_kwargs.to_dict()
    )


def model_for_workdir(config: ConfigDict, workdir: str | Path, num_classes: int):
    """The model recorded in `workdir/model.json` if present (converted or trained weights),
    otherwise the one `config` names. A class-count mismatch with the dataset is an error."""
    spec = checkpoint.read_model_spec(workdir)
    if spec is None:
        return build_model(config, num_classes)
    lowering.configure(config.conv_lowering)
    if spec["num_classes"] != num_classes:
        raise ValueError(
            f"{Path(workdir) / checkpoint.MODEL_SPEC}: the weights predict {spec['num_classes']} "
            f"classes but dataset {config.dataset!r} has {num_classes}"
        )
    return model_from_spec(spec, dtype=config.dtype)


def model_from_spec(spec: dict, dtype: str = "float32"):
    """The model a `model.json` spec (name, num_classes, kwargs) describes."""
    kwargs = {k: _as_tuples(v) for k, v in spec["kwargs"].items()}
    return models.create(spec["name"], num_classes=spec["num_classes"], dtype=dtype, **kwargs)
