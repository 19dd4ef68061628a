"""Crash safety of the airlock, proven with kill -9: a worker drives submissions, votes,
reviews and releases on a real SQLite database and sealed blob store and is SIGKILLed at
random moments, again and again, each new worker picking up what the last left. After
every kill: the audit chain verifies, every request is in a state of the machine with
every file it names present and intact, and nothing was released that two officers had
not approved in the round that was released."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cleanroom.airlock.audit import verify
from cleanroom.airlock.domain import Decision, State

from tests.lifecycle.deployment import airlock_of

REPO = Path(__file__).resolve().parents[2]
KILLS = 10


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(state))
    monkeypatch.setenv("CLEANROOM_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.delenv("CLEANROOM_KEY_COMMAND", raising=False)
    return state


def _check(state: Path) -> dict[str, int]:
    airlock = airlock_of(state)
    result = verify(airlock.storage.audit_records(), airlock.storage.audit_head())
    assert result.ok, result.problems
    states: dict[str, int] = {}
    for request in airlock.storage.list_requests():
        assert request.state in State
        states[str(request.state)] = states.get(str(request.state), 0) + 1
        for f in request.files:
            assert airlock.blobs.get(f.sha256, request.project)  # present, opens, matches
        if request.state is State.RELEASED:
            round_votes = [v for v in request.votes if v.round == request.round]
            assert len(set(request.reviewers())) >= 2, request.id
            assert round_votes and all(v.decision is Decision.APPROVE for v in round_votes)
    return states


def test_kill_9_in_the_middle_leaves_nothing_half_done(env: Path) -> None:
    rng = random.Random(17)
    seen: dict[str, int] = {}
    for _ in range(KILLS):
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.lifecycle.crash_worker", str(env)],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        # Anywhere from the first statement to a few requests in.
        deadline = time.monotonic() + rng.uniform(0.0, 1.5)
        while time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.01)
        assert worker.poll() is None, "the worker stopped on its own"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        worker.stdout.close()
        seen = _check(env)
    # The kills landed while work was going on: requests got through every stage.
    assert seen.get("released", 0) >= 1 and sum(seen.values()) >= KILLS
