"""Reach a release request in any state by driving the real airlock, never by writing rows."""

from __future__ import annotations

from cleanroom.airlock.co_review import DataUse, StaticDataOwners
from cleanroom.airlock.domain import (
    OFFICER_SCOPE,
    OPERATOR_SCOPE,
    RESEARCHER_SCOPE,
    Actor,
    CoReview,
    Decision,
    FileUpload,
    ProviderDecision,
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
# A project whose data needs its provider's vote on releases (and tells a second one).
CO_PROJECT = "kiln"

# project -> members
MEMBERS = {
    PROJECT: {"alice", "bob", "otto"},
    OTHER_PROJECT: {"eve"},
    CO_PROJECT: {"alice", "kim"},
}
# Acme's recipes need Acme's vote; Boreal's sensor logs only tell Boreal. paul and kim act
# for Acme (kim is a member of kiln: never its voter), nina for Boreal, fred for Fjord
# (whose data no project here uses).
PROVIDER_ACCOUNTS = {"Acme": ["paul", "kim"], "Boreal": ["nina"], "Fjord": ["fred"]}
DATA_USES = {
    CO_PROJECT: [
        DataUse("recipes", "v1", "Acme", CoReview.REQUIRED),
        DataUse("sensors", "v2", "Boreal", CoReview.NOTIFY),
    ],
    PROJECT: [DataUse("strokes", "v1", "Fjord", CoReview.NONE)],
}


def data_owners() -> StaticDataOwners:
    """The test deployment's data owners (a fresh copy: tests may add uses)."""
    return StaticDataOwners({p: list(u) for p, u in DATA_USES.items()}, PROVIDER_ACCOUNTS)


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
    airlock: Airlock,
    author: str = "alice",
    files: list[FileUpload] | None = None,
    why: str = "",
    project: str = PROJECT,
) -> ReleaseRequest:
    """A freshly submitted request by ``author`` in ``project``."""
    done = airlock.submit(
        actor(airlock, author, project),
        project,
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


def approved_by_officers(airlock: Airlock, project: str = CO_PROJECT) -> ReleaseRequest:
    """A request by alice in ``project`` that both officers approved."""
    rid = submit(airlock, project=project).id
    review(airlock, rid, "olga", Decision.APPROVE)
    return review(airlock, rid, "oscar", Decision.APPROVE)


def request_in(airlock: Airlock, state: State) -> ReleaseRequest:
    """A request by alice in ``state``, reached through the real transitions (those
    past the providers' vote in ``CO_PROJECT``, the others in ``PROJECT``)."""
    if state is State.PROVIDER_REVIEW:
        return approved_by_officers(airlock)
    if state is State.DECLINED:
        rid = approved_by_officers(airlock).id
        return airlock.provider_vote(
            actor(airlock, "paul"), rid, "Acme", ProviderDecision.DECLINE, "recipe visible", 1
        )
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
