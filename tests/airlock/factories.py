"""Reach a release request in any state by driving the real airlock, never by writing rows."""

from __future__ import annotations

from cleanroom.airlock.domain import (
    OFFICER_SCOPE,
    OPERATOR_SCOPE,
    RESEARCHER_SCOPE,
    Actor,
    Decision,
    FileUpload,
    ReleaseRequest,
    State,
)
from cleanroom.airlock.permissions import server_scope
from cleanroom.airlock.service import Airlock
from cleanroom.airlock.storage import SqlStorage
from sqlalchemy import Engine


def engine_of(airlock: Airlock) -> Engine:
    """The SQLAlchemy engine under an airlock's storage (tests poke the tables directly)."""
    assert isinstance(airlock.storage, SqlStorage)
    return airlock.storage.engine


PROJECT = "press-line"
OTHER_PROJECT = "furnace"

# project -> members
MEMBERS = {
    PROJECT: {"alice", "bob", "otto"},
    OTHER_PROJECT: {"eve"},
}
OFFICERS = {"olga", "oscar", "otto", "omar"}
OPERATORS = {"pat"}


def actor(airlock: Airlock, name: str, project: str | None = None) -> Actor:
    """The actor ``name`` as the hub would identify them (a workspace token if ``project``)."""
    scopes = {RESEARCHER_SCOPE}
    if name in OFFICERS:
        scopes.add(OFFICER_SCOPE)
    if name in OPERATORS:
        scopes.add(OPERATOR_SCOPE)
    if project:
        scopes.add(server_scope(name, project))
    return airlock.actor(name, frozenset(scopes))


def csv_file(path: str = "out/table.csv", rows: int = 3, salt: str = "") -> FileUpload:
    """A small CSV upload; ``salt`` makes its bytes unique."""
    body = "group,count\n" + "".join(f"g{i}{salt},{10 + i}\n" for i in range(rows))
    return FileUpload(path=path, data=body.encode(), description="counts by group")


def submit(
    airlock: Airlock, author: str = "alice", files: list[FileUpload] | None = None, why: str = ""
) -> ReleaseRequest:
    """A freshly submitted request by ``author`` in ``PROJECT``."""
    done = airlock.submit(
        actor(airlock, author, PROJECT),
        PROJECT,
        why or f"figures for the paper {id(files)}",
        files or [csv_file(salt=str(len(airlock.storage.list_requests())))],
    )
    assert done.created
    return done.request


def review(airlock: Airlock, request_id: str, officer: str, decision: Decision) -> ReleaseRequest:
    """One officer opens the request, decides every file alike and finishes the review."""
    who = actor(airlock, officer)
    request = airlock.view(who, request_id)
    for f in request.current_files():
        comment = "" if decision is Decision.APPROVE else f"{decision} please"
        airlock.vote(who, request_id, f.path, decision, comment)
    return airlock.complete_review(who, request_id)


def request_in(airlock: Airlock, state: State) -> ReleaseRequest:
    """A request by alice in ``state``, reached through the real transitions."""
    request = submit(airlock)
    rid = request.id
    if state is State.SUBMITTED:
        return request
    if state is State.WITHDRAWN:
        return airlock.withdraw(actor(airlock, "alice"), rid)
    if state is State.IN_REVIEW:
        return airlock.view(actor(airlock, "olga"), rid)
    if state in (State.APPROVED, State.RELEASED):
        review(airlock, rid, "olga", Decision.APPROVE)
        done = review(airlock, rid, "oscar", Decision.APPROVE)
        if state is State.RELEASED:
            done = airlock.release(actor(airlock, "olga"), rid)
        return done
    if state is State.REJECTED:
        review(airlock, rid, "olga", Decision.REJECT)
        return review(airlock, rid, "oscar", Decision.REJECT)
    if state in (State.RETURNED, State.RESUBMITTED):
        review(airlock, rid, "olga", Decision.CHANGES)
        done = review(airlock, rid, "oscar", Decision.APPROVE)
        if state is State.RESUBMITTED:
            done = airlock.resubmit(actor(airlock, "alice"), rid, "fixed the small cells")
        return done
    raise AssertionError(f"no factory path to {state}")
