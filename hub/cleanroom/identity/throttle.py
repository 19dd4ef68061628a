"""Log-in back-off and lock-out decisions, as pure functions of the failures recorded.

The registry keeps the failures (``cleanroom.registry.people``); this module only says
how long the next attempt must wait. Keeping it pure lets tests check every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cleanroom.identity.policy import LoginPolicy

# One message whatever went wrong (no such user, wrong password, wrong code), so that an
# answer never tells whether an account exists.
INVALID = "Invalid username, password or code."
WAIT = "Too many failed sign-ins. Try again in {seconds} seconds."
LOCKED = (
    "Too many failed sign-ins: sign-in is locked for a while. "
    "Try again later, or ask an operator to unlock it."
)


@dataclass(frozen=True)
class Verdict:
    """May an attempt go ahead now? If not, how long to wait and why."""

    allowed: bool
    wait_seconds: int = 0
    locked: bool = False

    @property
    def message(self) -> str:
        """What the person reads on the log-in page."""
        if self.locked:
            return LOCKED
        return WAIT.format(seconds=self.wait_seconds) if not self.allowed else ""


def backoff_seconds(failures: int, policy: LoginPolicy) -> float:
    """How long after the last of ``failures`` consecutive failures the next try waits."""
    if failures <= 0:
        return 0.0
    return float(min(policy.backoff_base_seconds * 2 ** (failures - 1), policy.backoff_max_seconds))


def account_verdict(
    failures: int,
    last_failure: datetime | None,
    locked_until: datetime | None,
    now: datetime,
    policy: LoginPolicy,
) -> Verdict:
    """The verdict for one account, from its consecutive failures and any lock."""
    if locked_until is not None and locked_until > now:
        return Verdict(False, int((locked_until - now).total_seconds()) + 1, locked=True)
    return _backoff_verdict(failures, last_failure, now, policy)


def address_verdict(
    failures: int, last_failure: datetime | None, now: datetime, policy: LoginPolicy
) -> Verdict:
    """The verdict for one client address: back-off once it passes its own threshold."""
    over = failures - policy.address_max_failures + 1
    return _backoff_verdict(over, last_failure, now, policy)


def _backoff_verdict(
    failures: int, last_failure: datetime | None, now: datetime, policy: LoginPolicy
) -> Verdict:
    if failures <= 0 or last_failure is None:
        return Verdict(True)
    ready = last_failure + timedelta(seconds=backoff_seconds(failures, policy))
    if ready <= now:
        return Verdict(True)
    return Verdict(False, max(1, int((ready - now).total_seconds() + 0.999)))


def should_lock(failures: int, policy: LoginPolicy) -> bool:
    """True when this many consecutive failures lock the account."""
    return failures >= policy.max_failures
