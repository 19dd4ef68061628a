"""A worker the crash test kills with SIGKILL at random moments: it drives the real
airlock (SQLite, sealed blob store) through submissions, votes, reviews and releases in a
loop, and picks up whatever an earlier, killed worker left half-way.

    python -m tests.lifecycle.crash_worker STATE_DIR
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

from cleanroom.airlock.domain import Decision, FileUpload, State
from cleanroom.airlock.exceptions import AirlockError
from cleanroom.airlock.policy import Limits, Policy

from tests.airlock.factories import actor, review, submit
from tests.lifecycle.deployment import airlock_of


def main(state: Path) -> None:
    """Work until killed."""
    (state / "airlock").mkdir(parents=True, exist_ok=True)
    # Many requests a day: the limit is not what is tested here.
    airlock = airlock_of(state, Policy(limits=Limits(requests_per_user_per_day=100_000)))
    print("ready", flush=True)
    for n in itertools.count():
        # First finish what a killed worker left: every open request moves on.
        for request in airlock.storage.list_requests():
            try:
                if request.state in (State.SUBMITTED, State.IN_REVIEW, State.RESUBMITTED):
                    for officer in ("olga", "oscar"):
                        if not request.has_reviewed(officer):
                            verdict = Decision.REJECT if n % 5 == 0 else Decision.APPROVE
                            request = review(airlock, request.id, officer, verdict)
                if request.state is State.APPROVED:
                    airlock.release(actor(airlock, "olga"), request.id)
            except AirlockError:
                continue  # e.g. a review finished by another round of this loop
        body = os.urandom(256 * 1024) + f"\nrequest {n} of {os.getpid()}\n".encode()
        submit(airlock, files=[FileUpload(f"out/f{n}.bin", body, "crash test")])
        print(f"submitted {n}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
