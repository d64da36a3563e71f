"""GCN and RefineNet blocks against the same blocks written with torch.nn layers.

The torch modules name their layers as the flax modules do, so one strict `load_state_dict`
both copies the weights and proves the two hold the same parameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxseg import nn as jnn

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tests.torch_reference import from_torch, to_torch  # noqa: E402


def load_flax_params(module, params) -> None:
    """Copy flax conv kernels (HWIO, or HW-out-in for transposed convs) and biases into the
    same-named torch layers; strict, so both sides must hold exactly the same parameters."""
    state = {}
    for path, value in traverse_util.flatten_dict(params).items():
        value = np.asarray(value)
        name = ".".join(path[:-1])
        if path[-1] == "kernel":
            state[f"{name}.weight"] = torch.from_numpy(value.transpose(3, 2, 0, 1).copy())
        else:
            state[f"{name}.bias"] = torch.from_numpy(value.copy())
    module.load_state_dict(state, strict=True)


def conv3x3(in_channels: int, out_channels: int, bias: bool = True):
    return torch.nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class TorchResidualConvUnit(torch.nn.Module):
    """RefineNet's RCU as in the authors' released models."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels, bias=False)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class TorchChainedResidualPooling(torch.nn.Module):
    """ReLU, then chained (5x5 max pool, 3x3 conv) blocks summed into the input."""

    def __init__(self, channels: int, stages: int):
        super().__init__()
        self.stages = stages
        for i in range(stages):
            setattr(self, f"conv{i}", conv3x3(channels, channels, bias=False))

    def forward(self, x):
        x = F.relu(x)
        path = x
        for i in range(self.stages):
            path = getattr(self, f"conv{i}")(F.max_pool2d(path, 5, 1, 2))
            x = x + path
        return x


class TorchMultiResolutionFusion(torch.nn.Module):
    """3x3 conv per path, bilinear (align_corners) upsampling to the largest path, sum."""

    def __init__(self, in_channels: list[int], features: int):
        super().__init__()
        self.count = len(in_channels)
        for i, channels in enumerate(in_channels):
            setattr(self, f"conv{i}", conv3x3(channels, features, bias=False))

    def forward(self, paths):
        size = max((p.shape[2:] for p in paths), key=lambda hw: hw[0] * hw[1])
        resized = [
            F.interpolate(
                getattr(self, f"conv{i}")(p), size=size, mode="bilinear", align_corners=True
            )
            for i, p in enumerate(paths)
        ]
        return sum(resized)


class TorchRefineNetBlock(torch.nn.Module):
    """Two RCUs per path, fusion (multi-path only), chained pooling, output RCU."""

    def __init__(self, in_channels: list[int], stages: int = 4):
        super().__init__()
        features = min(in_channels)
        self.widths = in_channels
        for i, channels in enumerate(in_channels):
            for j in range(2):
                setattr(self, f"path{i}_rcu{j}", TorchResidualConvUnit(channels))
        if len(in_channels) > 1:
            self.fusion = TorchMultiResolutionFusion(in_channels, features)
        self.pooling = TorchChainedResidualPooling(features, stages)
        self.output_rcu = TorchResidualConvUnit(features)

    def forward(self, paths):
        refined = []
        for i, x in enumerate(paths):
            for j in range(2):
                x = getattr(self, f"path{i}_rcu{j}")(x)
            refined.append(x)
        x = self.fusion(refined) if len(refined) > 1 else refined[0]
        return self.output_rcu(self.pooling(x))


class TorchGlobalConv(torch.nn.Module):
    """GCN's k x 1 + 1 x k (left) and 1 x k + k x 1 (right) branches, summed."""

    def __init__(self, in_channels: int, out_channels: int, k: int):
        super().__init__()
        tall, wide = (
            dict(kernel_size=(k, 1), padding=(k // 2, 0)),
            dict(kernel_size=(1, k), padding=(0, k // 2)),
        )
        self.left_kx1 = torch.nn.Conv2d(in_channels, out_channels, **tall)
        self.left_1xk = torch.nn.Conv2d(out_channels, out_channels, **wide)
        self.right_1xk = torch.nn.Conv2d(in_channels, out_channels, **wide)
        self.right_kx1 = torch.nn.Conv2d(out_channels, out_channels, **tall)

    def forward(self, x):
        return self.left_1xk(self.left_kx1(x)) + self.right_kx1(self.right_1xk(x))


class TorchBoundaryRefine(torch.nn.Module):
    """x + conv(ReLU(conv(x)))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def _random(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _compare(module, reference, inputs, atol: float = 1e-4):
    """Init `module` on `inputs`, load its parameters into `reference`, compare outputs."""
    params = module.init(jax.random.PRNGKey(0), inputs)["params"]
    load_flax_params(reference, params)
    ours = np.asarray(module.apply({"params": params}, inputs))
    torch_inputs = [to_torch(x) for x in inputs] if isinstance(inputs, list) else to_torch(inputs)
    expected = from_torch(reference(torch_inputs))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=atol)


def test_residual_conv_unit_matches_torch():
    _compare(jnn.ResidualConvUnit(), TorchResidualConvUnit(6), _random(2, 13, 17, 6))


@pytest.mark.parametrize("stages", [2, 4])
def test_chained_residual_pooling_matches_torch(stages):
    _compare(
        jnn.ChainedResidualPooling(stages),
        TorchChainedResidualPooling(6, stages),
        _random(2, 13, 17, 6),
    )


def test_multi_resolution_fusion_matches_torch():
    paths = [_random(2, 4, 5, 12), _random(2, 7, 9, 6, seed=1)]
    _compare(jnn.MultiResolutionFusion(6), TorchMultiResolutionFusion([12, 6], 6), paths)


def test_multi_resolution_fusion_passes_a_single_path_through():
    x = _random(1, 5, 7, 4)
    variables = jnn.MultiResolutionFusion(4).init(jax.random.PRNGKey(0), [x])
    assert not variables
    np.testing.assert_array_equal(jnn.MultiResolutionFusion(4).apply(variables, [x]), x)


@pytest.mark.parametrize("widths", [[8], [8, 4]])
def test_refinenet_block_matches_torch(widths):
    sizes = [(4, 5), (7, 9)][: len(widths)]
    paths = [
        _random(2, *hw, c, seed=i) for i, (hw, c) in enumerate(zip(sizes, widths, strict=True))
    ]
    _compare(jnn.RefineNetBlock(), TorchRefineNetBlock(widths), paths)


@pytest.mark.parametrize("k", [7, 15])
def test_global_conv_matches_torch(k):
    _compare(jnn.GlobalConv(5, k), TorchGlobalConv(6, 5, k), _random(2, 13, 17, 6))


def test_global_conv_sees_exactly_a_k_by_k_window():
    """One output pixel depends on every input pixel of the k x k window around it, and on no
    other: the dense large kernel the separable branches stand for."""
    k, x = 5, jnp.asarray(_random(1, 11, 11, 2))
    module = jnn.GlobalConv(3, k)
    params = module.init(jax.random.PRNGKey(0), x)
    grad = jax.grad(lambda inputs: module.apply(params, inputs)[0, 5, 5].sum())(x)
    support = np.abs(np.asarray(grad[0])).sum(-1) > 0
    expected = np.zeros((11, 11), bool)
    expected[3:8, 3:8] = True
    np.testing.assert_array_equal(support, expected)


def test_global_conv_rejects_an_even_kernel():
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        jnn.GlobalConv(3, 4).init(jax.random.PRNGKey(0), _random(1, 5, 5, 2))


def test_boundary_refine_matches_torch():
    _compare(jnn.BoundaryRefine(), TorchBoundaryRefine(5), _random(2, 13, 17, 5))
