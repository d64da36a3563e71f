"""`train.py` under real signals: SIGTERM saves, exits 143 and says how to resume; kill -9 at
random moments; the final rerun equals an uninterrupted run."""

import random
import signal
import subprocess
import time

import pytest

from jaxseg import checkpoint
from tests.test_train import REPO, _flat_params, _run, _train_command

STEPS = 12


def _wait_for(path, process, timeout=300):
    deadline = time.time() + timeout
    while not path.is_dir() and process.poll() is None:
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _latest_step(workdir):
    manager = checkpoint.make_manager(workdir / "checkpoints", async_save=False)
    step = manager.latest_step()
    manager.close()
    return step


@pytest.mark.slow
def test_sigterm_then_kill_9_at_random_moments_then_rerun_equals_straight_run(tmp_path):
    data_dir, workdir = tmp_path / "data", tmp_path / "interrupted"
    _run(_train_command(tmp_path / "straight", STEPS, data_dir))
    command = _train_command(workdir, STEPS, data_dir)

    process = subprocess.Popen(command, cwd=REPO, text=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(workdir / "checkpoints" / "3", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped_at = _latest_step(workdir)
    assert 3 <= stopped_at < STEPS
    assert f"stopped early at step {stopped_at} on signal 15" in stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr

    moments = random.Random(0)
    for _ in range(2):
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(moments.uniform(2.0, 12.0))
        process.kill()
        process.wait(timeout=60)
        assert _latest_step(workdir) >= stopped_at, "a kill lost a saved step"

    _run(command)
    assert not (workdir / checkpoint.DAMAGED_DIR).exists()
    straight, resumed = _flat_params(tmp_path / "straight"), _flat_params(workdir)
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        assert (resumed[name] == value).all(), name
