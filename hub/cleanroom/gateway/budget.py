"""Egress budgets: bytes towards the browser per researcher and project.

Windows are the clock's UTC hour and UTC day, so "when it refills" is a time a person
can read (the next full hour, the next midnight UTC). Officers' grants add to the day's
and the hour's allowance of one researcher and project, for the day they are given.
State survives a gateway restart through :meth:`Budgets.to_json` / :meth:`from_json`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cleanroom.errors import InvalidInput
from cleanroom.gateway.policy import Budget

HOUR = 3600
DAY = 86400


@dataclass
class Usage:
    """One researcher x project's counters in the current windows."""

    hour_start: int = 0
    hour_bytes: int = 0
    day_start: int = 0
    day_bytes: int = 0
    granted: int = 0
    alerted: bool = False
    exhausted: bool = False
    by_kind: dict[str, int] = field(default_factory=dict)
    exempt_bytes: int = 0


@dataclass(frozen=True)
class HourTotal:
    """A closed hour's totals, for the journal."""

    user: str
    project: str
    hour: str
    bytes: int
    by_kind: dict[str, int]
    exempt_bytes: int


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mib(n: int) -> str:
    """``n`` bytes as MiB with one decimal, for messages."""
    return f"{n / 1048576:.1f} MiB"


class Budgets:
    """Counters of every researcher x project, enforcing the policy's budget."""

    def __init__(self, policy: Budget, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.clock = clock
        self.usage: dict[tuple[str, str], Usage] = {}
        self.closed: list[HourTotal] = []
        self.alerts: list[tuple[str, str, int, int]] = []

    # -- windows -----------------------------------------------------------------
    def _current(self, user: str, project: str) -> Usage:
        now = int(self.clock())
        hour, day = now - now % HOUR, now - now % DAY
        u = self.usage.get((user, project))
        if u is None:
            u = self.usage[(user, project)] = Usage(hour_start=hour, day_start=day)
        elif u.hour_start == hour and u.day_start == day:
            return u  # the common case: nothing to close
        if u.hour_start != hour:
            if u.hour_bytes or u.exempt_bytes:
                self.closed.append(
                    HourTotal(
                        user,
                        project,
                        _iso(u.hour_start),
                        u.hour_bytes,
                        dict(u.by_kind),
                        u.exempt_bytes,
                    )
                )
            u.hour_start, u.hour_bytes, u.by_kind, u.exempt_bytes = hour, 0, {}, 0
            u.exhausted = False
        if u.day_start != day:
            u.day_start, u.day_bytes, u.granted, u.alerted = day, 0, 0, False
            u.exhausted = False
        return u

    def limits(self, user: str, project: str) -> tuple[int, int]:
        """(hour limit, day limit) in bytes, grants included."""
        u = self._current(user, project)
        return self.policy.bytes_per_hour + u.granted, self.policy.bytes_per_day + u.granted

    def _left(self, u: Usage) -> int:
        hour_left = self.policy.bytes_per_hour + u.granted - u.hour_bytes
        return max(0, min(hour_left, self.policy.bytes_per_day + u.granted - u.day_bytes))

    def remaining(self, user: str, project: str) -> int:
        """Bytes that may still go towards the browser now."""
        return self._left(self._current(user, project))

    # -- spending ----------------------------------------------------------------
    def spend(self, user: str, project: str, nbytes: int, kind: str) -> bool:
        """Count ``nbytes`` if they fit the budget (True), else count nothing (False)."""
        u = self._current(user, project)
        if nbytes > self._left(u):
            u.exhausted = True
            return False
        self._count(u, user, project, nbytes, kind)
        return True

    def force(self, user: str, project: str, nbytes: int, kind: str) -> None:
        """Count ``nbytes`` whatever the budget (tiny protocol skeletons past exhaustion)."""
        self._count(self._current(user, project), user, project, nbytes, kind)

    def _count(self, u: Usage, user: str, project: str, nbytes: int, kind: str) -> None:
        u.hour_bytes += nbytes
        u.day_bytes += nbytes
        u.by_kind[kind] = u.by_kind.get(kind, 0) + nbytes
        day_limit = self.policy.bytes_per_day + u.granted
        if not u.alerted and u.day_bytes >= self.policy.alert_at_fraction * day_limit:
            u.alerted = True
            self.alerts.append((user, project, u.day_bytes, day_limit))

    def exempt(self, user: str, project: str, nbytes: int) -> None:
        """Note static bytes that matched the manifest (not counted)."""
        self._current(user, project).exempt_bytes += nbytes

    def grant(self, user: str, project: str, nbytes: int) -> Usage:
        """Add ``nbytes`` to today's (and this hour's) allowance."""
        u = self._current(user, project)
        u.granted += nbytes
        u.exhausted = False
        return u

    # -- reading -----------------------------------------------------------------
    def status(self, user: str, project: str) -> dict[str, Any]:
        """Usage, limits and refill times of one researcher x project."""
        u = self._current(user, project)
        hour_limit, day_limit = self.limits(user, project)
        return {
            "user": user,
            "project": project,
            "hour_bytes": u.hour_bytes,
            "hour_limit": hour_limit,
            "day_bytes": u.day_bytes,
            "day_limit": day_limit,
            "granted_today": u.granted,
            "remaining": self.remaining(user, project),
            "hour_refills_at": _iso(u.hour_start + HOUR),
            "day_refills_at": _iso(u.day_start + DAY),
            "by_kind": dict(u.by_kind),
            "exempt_bytes": u.exempt_bytes,
            "alerted": u.alerted,
            # Something did not fit since the budget last refilled or grew (the officers'
            # pages show it as an alert).
            "exhausted": u.exhausted,
        }

    def all_status(self) -> list[dict[str, Any]]:
        """:meth:`status` of everyone seen, sorted."""
        return [self.status(user, project) for user, project in sorted(self.usage)]

    def exhausted_message(self, user: str, project: str) -> str:
        """The sentence a researcher reads when the budget is spent."""
        s = self.status(user, project)
        if s["hour_bytes"] >= s["hour_limit"] or s["day_bytes"] < s["day_limit"]:
            when = f"it refills at {s['hour_refills_at']} (the next full hour)"
        else:
            when = f"it refills at {s['day_refills_at']} (midnight UTC)"
        return (
            f"The clean room's egress budget of {user} in project {project} is spent: "
            f"{mib(s['hour_bytes'])} of {mib(s['hour_limit'])} this hour, "
            f"{mib(s['day_bytes'])} of {mib(s['day_limit'])} today reached your browser; "
            f"{when}. To take results out, request a release; for more budget, "
            f"{self.policy.ask}."
        )

    def take_closed(self) -> list[HourTotal]:
        """Closed hours since the last call (and close the current ones on ``flush_all``)."""
        for user, project in list(self.usage):
            self._current(user, project)
        closed, self.closed = self.closed, []
        return closed

    def take_alerts(self) -> list[tuple[str, str, int, int]]:
        """Alerts raised since the last call: (user, project, day bytes, day limit)."""
        alerts, self.alerts = self.alerts, []
        return alerts

    # -- persistence ---------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Everything needed to carry on after a restart."""
        return {f"{u}/{p}": asdict(usage) for (u, p), usage in self.usage.items()}

    def load_json(self, data: dict[str, Any]) -> None:
        """Restore counters saved by :meth:`to_json` (unknown fields are ignored)."""
        fields = set(Usage.__dataclass_fields__)
        for key, value in data.items():
            user, _, project = key.partition("/")
            if user and project and isinstance(value, dict):
                self.usage[(user, project)] = Usage(
                    **{k: v for k, v in value.items() if k in fields}
                )


_SIZE = re.compile(r"^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_size(text: str) -> int:
    """``"16MiB"`` → 16777216; a clear error for anything else."""
    m = _SIZE.match(text.strip())
    if not m:
        raise InvalidInput(f"{text!r} is not a size (e.g. 500000, 512KiB, 16MiB, 1GiB)")
    value = int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]
    if value <= 0:
        raise InvalidInput("the size must be more than 0 bytes")
    return value
