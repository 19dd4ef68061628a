"""Prometheus metrics of the airlock: queue depth and time in each state.

Computed from storage at every scrape (no counters kept in the process, so a restart
loses nothing): how many requests stand in each state, how many wait for officers, and
how long the requests now in each state have been there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from .domain import ReleaseRequest, State

WAITING_FOR_OFFICERS = (State.SUBMITTED, State.RESUBMITTED, State.IN_REVIEW)
# From a minute to a month: officers answer in hours or days.
BUCKETS = (60, 600, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600)


def render(requests: Iterable[ReleaseRequest], now: datetime) -> bytes:
    """The Prometheus text exposition of the airlock's state at ``now``."""
    registry = CollectorRegistry()
    by_state = Gauge(
        "cleanroom_airlock_requests", "Release requests by state", ["state"], registry=registry
    )
    queue = Gauge(
        "cleanroom_airlock_queue_depth",
        "Requests waiting for officers (submitted, resubmitted, in review)",
        registry=registry,
    )
    in_state = Histogram(
        "cleanroom_airlock_time_in_state_seconds",
        "How long each request has been in its current state",
        ["state"],
        buckets=BUCKETS,
        registry=registry,
    )
    for state in State:
        by_state.labels(state=str(state)).set(0)
    waiting = 0
    for request in requests:
        by_state.labels(state=str(request.state)).inc()
        in_state.labels(state=str(request.state)).observe(
            max(0.0, (now - request.updated).total_seconds())
        )
        waiting += request.state in WAITING_FOR_OFFICERS
    queue.set(waiting)
    return bytes(generate_latest(registry))
