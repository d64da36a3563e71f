"""`python -m jaxseg.models summary`: parameter counts against `model.init` and torchvision,
XLA's FLOPs against the analytic count of single convolutions, the CLI's table and errors."""

import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from configs import base
from jaxseg import model_report as report
from jaxseg import models
from jaxseg.models.__main__ import parse_option
from jaxseg.nn import Conv2d

REPO = Path(__file__).resolve().parents[1]


def test_totals_are_the_initialised_variables_and_the_train_step_is_measured():
    small = models.small_options("deeplab_v1")
    result = report.report(
        "deeplab_v1", 5, (32, 40), batch=2, train_config=base.get_config(), **small
    )
    model = models.create("deeplab_v1", num_classes=5, **small)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jax.numpy.zeros((1, 32, 40, 3)))
    assert result.total_parameters == report.count(variables["params"])
    assert set(result.parameters) == set(variables["params"])
    assert result.batch_stats == report.count(variables.get("batch_stats", {}))
    # The step's arguments hold at least the float32 parameters and SGD's momentum.
    assert 0 < result.memory.activations < result.memory.peak
    assert result.memory.peak > 2 * 4 * result.total_parameters
    table = report.format_report(result)
    assert f"train step, batch 2 on one {jax.default_backend()} device: activations" in table


def test_deeplabv3_resnet50_has_torchvisions_parameters_and_buffers():
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=False
    )
    # jaxseg's torchvision variant, as `jaxseg.convert` builds it for these weights.
    result = report.report("deeplab_v3", 21, (64, 64), depth=50, multi_grid=None, aux=False)
    assert result.total_parameters == sum(p.numel() for p in reference.parameters())
    statistics = [b for n, b in reference.named_buffers() if not n.endswith("num_batches_tracked")]
    assert result.batch_stats == sum(b.numel() for b in statistics)


def _flops(module, size: tuple[int, int]) -> float:
    return report.forward_flops(module, report.abstract_variables(module, size), size)


def test_flops_of_a_1x1_convolution_are_two_per_multiply_add():
    height, width, c_in, c_out = 24, 40, 3, 32
    flops = _flops(Conv2d(c_out, 1, use_bias=False), (height, width))
    assert flops == pytest.approx(2 * height * width * c_in * c_out, rel=0.01)


def test_flops_of_a_padded_3x3_convolution_count_only_taps_on_real_pixels():
    size, c_in, c_out = 8, 3, 4
    flops = _flops(Conv2d(c_out, 3, use_bias=False), (size, size))
    # Per output row/column, the taps inside the image: 2 at each border, 3 inside.
    taps_per_axis = 2 * 2 + 3 * (size - 2)
    assert flops == pytest.approx(2 * taps_per_axis**2 * c_in * c_out, rel=0.01)


def _summary(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jaxseg.models", "summary", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_prints_the_table():
    small = models.small_options("deeplab_v3")
    options = [arg for key, value in small.items() for arg in ("--option", f"{key}={value}")]
    result = _summary(
        "deeplab_v3", "--size", "32", "40", "--num_classes", "5", "--no_memory", *options
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = report.report("deeplab_v3", 5, (32, 40), **small)
    for module, n in [*expected.parameters.items(), ("total", expected.total_parameters)]:
        assert re.search(rf"^{module} +{n:,} +[\d.]+%$", result.stdout, re.MULTILINE), module
    assert f"forward: {expected.forward_flops / 1e9:.4g} GFLOPs per image" in result.stdout


def test_bad_name_is_one_line_naming_the_models():
    result = _summary("pspnet2", "--no_memory")
    assert result.returncode != 0
    message = "error: unknown model 'pspnet2'; known models: deeplab_v1, "
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_bad_option_names_the_models_options():
    with pytest.raises(ValueError, match="model 'gcn' has no option 'kernel'; .* kernel_size"):
        report.report("gcn", kernel=3)


def test_option_values_are_literals_or_strings():
    assert parse_option("multi_grid=None") == ("multi_grid", None)
    assert parse_option("stage_sizes=(1,1,1,1)") == ("stage_sizes", (1, 1, 1, 1))
    assert parse_option("dtype=bfloat16") == ("dtype", "bfloat16")
