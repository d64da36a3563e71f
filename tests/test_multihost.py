"""Two processes joined by `jax.distributed` (gloo on CPU) train one model together.

Each process reads its own shard, the step runs over the global two-device mesh, and both
processes end with the same evaluation and one shared checkpoint folder.
"""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train import TINY_MODEL_FLAGS

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_and_checkpoint_together(tmp_path):
    port = _free_port()
    command = [
        sys.executable,
        "train.py",
        "--config=quickstart",
        f"--workdir={tmp_path / 'run'}",
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        *TINY_MODEL_FLAGS,
        "--config.dataset=shapes/tiny",
        "--config.crop_size=48",
        "--config.batch_size=4",
        "--config.num_steps=4",
        "--config.checkpoint_every=2",
        "--config.eval_every=4",
        f"--config.data_dir={tmp_path / 'data'}",
    ]
    processes = [
        subprocess.Popen(
            [*command, f"--process_id={i}"],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    reports = [stdout.strip().splitlines()[-1] for stdout, _ in outputs]
    assert reports[0].startswith("step 4: val mIoU") and reports[0] == reports[1]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["2", "4"]
