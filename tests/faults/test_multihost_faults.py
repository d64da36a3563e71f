"""Two processes on 127.0.0.1: a stop signal to one stops both at one saved step; a killed
peer or a missing one ends the others with a clear message within a bounded time."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jaxseg import checkpoint
from tests.faults.conftest import _CACHE_ENV
from tests.faults.test_stop_cli import _latest_step, _wait_for
from tests.test_multihost import _free_port
from tests.test_train import REPO, TINY_MODEL_FLAGS, _flat_params

STEPS = 8


def _command(workdir, port, process_id, data_dir, *extra):
    return [
        sys.executable, "train.py", "--config=quickstart", f"--workdir={workdir}",
        "--distributed", f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
        f"--process_id={process_id}", "--heartbeat_timeout=10",
        *TINY_MODEL_FLAGS,
        "--config.dataset=shapes/tiny", "--config.crop_size=48", "--config.batch_size=4",
        f"--config.num_steps={STEPS}", "--config.checkpoint_every=2", "--config.log_every=1",
        "--config.eval_every=0", f"--config.data_dir={data_dir}", *extra,
    ]  # fmt: skip


def _start_pair(workdir, data_dir, *, cached=False):
    """Both processes, their stderr going to files (a full pipe would stall one of them).

    Only pairs that no test signals or kills use the shared compilation cache (`cached`): a
    signalled pair started with it once saved nothing, a failure not yet explained.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if cached or k not in _CACHE_ENV}
    workdir.parent.mkdir(parents=True, exist_ok=True)
    pair = []
    for i in range(2):
        log = workdir.parent / f"{workdir.name}.{i}.{len(list(workdir.parent.glob('*.log')))}.log"
        process = subprocess.Popen(_command(workdir, port, i, data_dir), cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=log.open("w"))  # fmt: skip
        process.log = log
        pair.append(process)
    return pair


def _finish(processes, timeout=480):
    deadline = time.time() + timeout
    for process in processes:
        process.wait(timeout=max(deadline - time.time(), 1))
    return [process.log.read_text() for process in processes]


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_one_saved_step(tmp_path):
    data_dir, straight, workdir = tmp_path / "data", tmp_path / "straight", tmp_path / "run"
    pair = _start_pair(straight, data_dir, cached=True)
    for process, stderr in zip(pair, _finish(pair), strict=True):
        assert process.returncode == 0, stderr[-3000:]

    pair = _start_pair(workdir, data_dir)
    _wait_for(workdir / "checkpoints" / "2", pair[1])
    pair[1].send_signal(signal.SIGTERM)
    errors = _finish(pair, timeout=120)
    stopped_at = _latest_step(workdir)
    assert stopped_at is not None and stopped_at < STEPS, errors[1][-3000:]
    for process, stderr in zip(pair, errors, strict=True):
        assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        assert f"stopped early at step {stopped_at} on signal 15" in stderr

    pair = _start_pair(workdir, data_dir, cached=True)
    for process, stderr in zip(pair, _finish(pair), strict=True):
        assert process.returncode == 0, stderr[-3000:]
    assert not (workdir / checkpoint.DAMAGED_DIR).exists(), "every joint save must verify"
    expected, resumed = _flat_params(straight), _flat_params(workdir)
    for name, value in expected.items():
        assert (resumed[name] == value).all(), name


@pytest.mark.slow
def test_a_killed_peer_ends_the_survivor_with_a_message(tmp_path):
    workdir = tmp_path / "run"
    survivor, victim = _start_pair(workdir, tmp_path / "data")
    _wait_for(workdir / "checkpoints" / "2", victim)
    victim.kill()
    started = time.time()
    stderr = _finish([survivor], timeout=120)[0]
    assert survivor.returncode != 0
    assert "lost contact with another process" in stderr, stderr[-3000:]
    assert "restart every process" in stderr
    assert time.time() - started < 120


def test_a_missing_peer_at_start_up_is_named_with_the_timeout(tmp_path):
    port = _free_port()
    command = _command(tmp_path / "run", port, 0, tmp_path / "data", "--initialization_timeout=5")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"coordinator 127.0.0.1:{port}" in result.stderr, result.stderr[-3000:]
    assert "--initialization_timeout=5 s" in result.stderr
