"""Prometheus metrics of the airlock: queue depth and time in each state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from cleanroom.airlock.domain import OPERATOR_SCOPE, ReleaseRequest, State
from cleanroom.airlock.metrics import render

from .hub import Hub

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _request(rid: str, state: State, hours: float) -> ReleaseRequest:
    when = NOW - timedelta(hours=hours)
    return ReleaseRequest(
        id=rid,
        project="p",
        author="alice",
        justification="why",
        state=state,
        created=when,
        updated=when,
    )


def test_render_counts_states_and_ages() -> None:
    text = render(
        [
            _request("a" * 16, State.SUBMITTED, 2),
            _request("b" * 16, State.IN_REVIEW, 30),
            _request("c" * 16, State.RELEASED, 1),
        ],
        NOW,
    ).decode()
    assert 'cleanroom_airlock_requests{state="submitted"} 1.0' in text
    assert 'cleanroom_airlock_requests{state="withdrawn"} 0.0' in text
    assert "cleanroom_airlock_queue_depth 2.0" in text
    # The request in review for 30 hours is beyond the one-day bucket.
    assert (
        'cleanroom_airlock_time_in_state_seconds_bucket{le="86400.0",state="in_review"} 0.0' in text
    )
    assert 'cleanroom_airlock_time_in_state_seconds_count{state="in_review"} 1.0' in text


@pytest.mark.parametrize(("scopes", "status"), [([OPERATOR_SCOPE], 200), ([], 403)])
def test_metrics_need_an_operator_or_read_metrics(hub: Hub, scopes: list[str], status: int) -> None:
    token = hub.token("pat", scopes)
    reply = requests.get(
        hub.service_url + "metrics", timeout=30, headers={"Authorization": f"token {token}"}
    )
    assert reply.status_code == status, reply.text
    if status == 200:
        assert "cleanroom_airlock_queue_depth" in reply.text


def test_metrics_refuse_anonymous(hub: Hub) -> None:
    assert requests.get(hub.service_url + "metrics", timeout=30).status_code in (401, 403)
