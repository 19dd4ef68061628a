"""One hub per instance: a second refuses with a clear message; a dead one frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from cleanroom.hub import instance_lock\n"
    "instance_lock.hold(sys.argv[1], Path(sys.argv[2]))\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


def _holder(instance: str, state: str, env: dict[str, str]) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, instance, state],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line == "held\n", child.stderr.read() if child.stderr else line
    return child


def _try(instance: str, state: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(60)", "pass"), instance, state],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CLEANROOM_LOCK_DIR": str(tmp_path / "locks")}


def test_a_second_hub_of_one_instance_is_refused_and_names_the_first(env: dict[str, str]) -> None:
    first = _holder("alpha", "/srv/first-state", env)
    try:
        second = _try("alpha", "/srv/second-state", env)
        assert second.returncode == 1
        assert "another hub of instance 'alpha' is running" in second.stderr
        assert "/srv/first-state" in second.stderr
        # Another instance is not affected.
        assert _try("beta", "/srv/second-state", env).returncode == 0
    finally:
        first.kill()
        first.wait()


def test_a_killed_hub_does_not_block_its_restart(env: dict[str, str]) -> None:
    first = _holder("alpha", "/srv/state", env)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    again = _try("alpha", "/srv/state", env)
    assert again.returncode == 0, again.stderr


def test_holding_twice_in_one_process_is_harmless(env: dict[str, str], tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "from cleanroom.hub import instance_lock\n"
        "instance_lock.hold('alpha', Path('/s'))\n"
        "instance_lock.hold('alpha', Path('/s'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
