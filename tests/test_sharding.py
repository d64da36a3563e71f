"""Data parallelism: a train step on 8 (simulated) devices equals the same step on 1 device.

BatchNorm statistics are reduced over the global batch under jit, so the loss, the updated
parameters and the running statistics must agree to float tolerance. Runs in a subprocess
because the device count is fixed when JAX starts.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _step_on(num_devices: int, batch: dict):
    import jax

    from configs import quickstart
    from jaxseg import data, optim, sharding
    from jaxseg.build import build_model
    from jaxseg.train import create_train_state, make_train_step
    from tests.test_train import TINY_MODEL

    config = quickstart.get_config()
    config.model_kwargs.update(TINY_MODEL)
    config.crop_size, config.batch_size, config.num_devices = 40, 8, num_devices
    model = build_model(config, data.dataset_info("shapes")[0])
    mesh = sharding.make_mesh(num_devices)
    tx, schedule = optim.make_optimizer(config)
    state, shardings = create_train_state(model, tx, config, mesh)
    step = make_train_step(model, tx, schedule, config, shardings, mesh)
    state, metrics = step(state, sharding.to_global(batch, mesh))
    return jax.device_get((state.params, state.batch_stats, metrics["loss"]))


def main() -> None:
    import jax

    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.normal(size=(8, 40, 40, 3)).astype(np.float32),
        "label": rng.integers(0, 7, size=(8, 40, 40)).astype(np.int32),
    }
    one, eight = _step_on(1, batch), _step_on(8, batch)
    np.testing.assert_allclose(eight[2], one[2], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eight[:2]), jax.tree.leaves(one[:2]), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    print("OK", float(one[2]))


def test_eight_devices_match_one_device():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_sharding"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


if __name__ == "__main__":
    main()
