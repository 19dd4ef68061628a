"""The state machine as data: complete, owned, and consistent with the audit actions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cleanroom.airlock.domain import (
    STATE_ACTIONS,
    STATE_OWNERS,
    TERMINAL_STATES,
    TRANSITIONS,
    Owner,
    ReleaseRequest,
    RequestFile,
    State,
    owner_of,
    transition,
)
from cleanroom.airlock.exceptions import InvalidTransition


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_an_owner(state: State) -> None:
    assert isinstance(STATE_OWNERS[state], Owner)


@pytest.mark.parametrize("state", [s for s in State if s is not State.DRAFT])
def test_every_arrival_state_emits_an_audit_action(state: State) -> None:
    assert state in STATE_ACTIONS


def test_terminal_states_have_no_way_out() -> None:
    assert {State.REJECTED, State.DECLINED, State.RELEASED, State.WITHDRAWN} == TERMINAL_STATES
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL_STATES]


def test_every_state_is_reachable_from_draft() -> None:
    seen, todo = {State.DRAFT}, [State.DRAFT]
    while todo:
        src = todo.pop()
        for a, b in TRANSITIONS:
            if a is src and b not in seen:
                seen.add(b)
                todo.append(b)
    assert seen == set(State)


def test_non_terminal_states_move_only_by_their_owner_or_withdrawal() -> None:
    for (src, dst), owner in TRANSITIONS.items():
        assert owner is STATE_OWNERS[src] or (dst is State.WITHDRAWN and owner is Owner.AUTHOR)


def test_owner_of_refuses_unknown_moves() -> None:
    assert owner_of(State.SUBMITTED, State.RELEASED) is None
    assert owner_of(State.APPROVED, State.RELEASED) is Owner.OFFICER


def _request(state: State) -> ReleaseRequest:
    now = datetime.now(UTC)
    files = [RequestFile("a.csv", "1" * 64, 3, "text/csv", "", 1)]
    return ReleaseRequest("r1", "p", "alice", "why", state, now, now, files=files)


@pytest.mark.parametrize("src", list(State))
@pytest.mark.parametrize("dst", list(State))
@pytest.mark.parametrize("by", list(Owner))
def test_transition_follows_the_table_for_every_move(src: State, dst: State, by: Owner) -> None:
    request = _request(src)
    if TRANSITIONS.get((src, dst)) is not by:
        with pytest.raises(InvalidTransition, match=f"may not move it to {dst}"):
            transition(request, dst, by, "alice")
        return
    events = transition(request, dst, by, "alice", detail={"round": 1})
    assert [(e.action, e.actor, e.request_id, e.detail) for e in events] == [
        (STATE_ACTIONS[dst], "alice", "r1", {"round": 1})
    ]
    per_file = transition(
        request, dst, by, "alice", files=request.files, file_detail=lambda f: {"path": f.path}
    )
    assert [(e.file_sha256, e.detail) for e in per_file] == [("1" * 64, {"path": "a.csv"})]
    assert request.state is src  # building the events moves nothing
