"""Every role x membership combination against the rules where independence matters.

A role (officer, operator, both) never short-circuits independence: someone who wrote a
request, is a member of its project or once was, is treated as a member, whatever roles
they hold. The matrix is spelt out as data, so a new shortcut in ``permissions`` fails
here by name.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from cleanroom.airlock import permissions as perm
from cleanroom.airlock.domain import (
    OFFICER_SCOPE,
    OPERATOR_SCOPE,
    RESEARCHER_SCOPE,
    Actor,
    Decision,
    ReleaseRequest,
    State,
)
from cleanroom.airlock.exceptions import PermissionDenied
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.service import Airlock

from .factories import PROJECT, actor, request_in

ROLES: dict[str, frozenset[str]] = {
    "researcher": frozenset({RESEARCHER_SCOPE}),
    "officer": frozenset({RESEARCHER_SCOPE, OFFICER_SCOPE}),
    "operator": frozenset({RESEARCHER_SCOPE, OPERATOR_SCOPE}),
    "officer+operator": frozenset({RESEARCHER_SCOPE, OFFICER_SCOPE, OPERATOR_SCOPE}),
}
RELATIONS = ("outsider", "member", "former member", "author")


def who(role: str, relation: str, request: ReleaseRequest) -> Actor:
    """An actor with ``role``'s scopes standing in ``relation`` to ``request``."""
    name = request.author if relation == "author" else "zed"
    projects = frozenset({PROJECT}) if relation in ("member", "author") else frozenset()
    affiliations = projects | (frozenset({PROJECT}) if relation == "former member" else frozenset())
    return Actor(username=name, scopes=ROLES[role], projects=projects, affiliations=affiliations)


def independent_with(*roles: str):
    """The expectation "allowed exactly for outsiders holding one of ``roles``"."""
    return lambda role, relation: relation == "outsider" and role in roles


# rule -> (the request state it is asked in, who is allowed)
RULES = {
    "view_content": (
        State.SUBMITTED,
        independent_with("officer", "operator", "officer+operator"),
    ),
    "review": (State.SUBMITTED, independent_with("officer", "officer+operator")),
    "release": (State.APPROVED, independent_with("officer", "officer+operator")),
    # A round under review (olga opened it): only an independent operator who is not
    # also reviewing sees colleagues' votes; members and authors see them once decided.
    "see_votes_of_others": (State.IN_REVIEW, independent_with("operator")),
    # The export holds votes as they are cast: operators who are neither officers nor
    # (former) members of any project.
    "export_audit": (State.SUBMITTED, independent_with("operator")),
}


def answer(rule: str, subject: Actor, request: ReleaseRequest) -> bool:
    if rule == "export_audit":
        return perm.can_operate(subject) and _exports(subject)
    return bool(getattr(perm, f"can_{rule}")(subject, request))


def _exports(subject: Actor) -> bool:
    try:
        perm.check_can_export_audit(subject)
    except PermissionDenied:
        return False
    return True


@pytest.mark.parametrize("rule", sorted(RULES))
def test_roles_never_short_circuit_independence(airlock: Airlock, rule: str) -> None:
    state, allowed = RULES[rule]
    request = request_in(airlock, state)
    got = {
        (role, relation): answer(rule, who(role, relation, request), request)
        for role in ROLES
        for relation in RELATIONS
    }
    wanted = {(role, relation): allowed(role, relation) for role in ROLES for relation in RELATIONS}
    wrong = {k: v for k, v in got.items() if v != wanted[k]}
    assert not wrong, f"{rule}: (role, relation) -> answer that should be the opposite: {wrong}"
    # Each rule lets somebody through, so the matrix is not all refusals by accident.
    assert any(got.values())


def test_an_operator_who_is_a_member_cannot_read_unreleased_bytes(airlock: Airlock) -> None:
    rid = request_in(airlock, State.SUBMITTED).id
    membership = airlock.membership
    assert isinstance(membership, StaticMembership)
    pat = actor(airlock, "pat")
    # An operator who is independent reads the bytes (and the read is audited) ...
    f, data = airlock.file_content(pat, rid, "out/table.csv")
    assert data.startswith(b"group,count")
    membership.add("pat", PROJECT)
    member = actor(airlock, "pat")
    assert member.is_operator and PROJECT in member.projects
    # ... but not once a member of the project, nor after leaving it.
    with pytest.raises(PermissionDenied, match="member of project"):
        airlock.file_content(member, rid, f.path)
    membership.remove("pat", PROJECT)
    with pytest.raises(PermissionDenied, match="were a member"):
        airlock.file_content(actor(airlock, "pat"), rid, f.path)
    # Holding the officer role as well changes nothing.
    both = replace(actor(airlock, "pat"), scopes=member.scopes | {OFFICER_SCOPE})
    with pytest.raises(PermissionDenied, match="were a member"):
        airlock.file_content(both, rid, f.path)


def test_a_member_operator_does_not_see_votes_under_review(airlock: Airlock) -> None:
    request = request_in(airlock, State.IN_REVIEW)
    airlock.vote(actor(airlock, "olga"), request.id, "out/table.csv", Decision.REJECT, "small")
    membership = airlock.membership
    assert isinstance(membership, StaticMembership)
    request = airlock.storage.get_request(request.id)
    assert [v.officer for v in airlock.visible_votes(actor(airlock, "pat"), request)] == ["olga"]
    membership.add("pat", PROJECT)
    assert airlock.visible_votes(actor(airlock, "pat"), request) == []
