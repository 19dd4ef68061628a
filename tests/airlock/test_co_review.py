"""Providers' co-review of releases: every transition it adds and every refusal.

The test deployment (``factories``): project kiln uses Acme's recipes (co-review
``required``) and Boreal's sensor logs (``notify``); paul and kim act for Acme (kim is a
member of kiln), nina for Boreal, fred for Fjord (whose data asks nothing).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cleanroom.airlock import permissions as perm
from cleanroom.airlock.app import AirlockSettings, load_data_owners
from cleanroom.airlock.co_review import DataUse, StaticDataOwners, co_reviewers, merge
from cleanroom.airlock.domain import (
    Action,
    CoReview,
    CoReviewer,
    Decision,
    ProviderDecision,
    State,
)
from cleanroom.airlock.exceptions import (
    BadRequest,
    InvalidTransition,
    Misconfigured,
    NotFound,
    PermissionDenied,
)
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.service import Airlock

from .factories import (
    CO_PROJECT,
    DATA_USES,
    MEMBERS,
    PROJECT,
    PROVIDER_ACCOUNTS,
    actor,
    approved_by_officers,
    review,
    submit,
)

APPROVE, DECLINE = ProviderDecision.APPROVE, ProviderDecision.DECLINE


def audit(airlock: Airlock, request_id: str) -> list[tuple[str, str, dict]]:
    """(action, actor, detail) of every audit entry about one request, in order."""
    return [
        (r.action, r.actor, json.loads(r.detail))
        for r in airlock.storage.audit_records()
        if r.request_id == request_id
    ]


def unchanged_but_refused(airlock: Airlock, request_id: str, who: str, before) -> None:
    """The refusal changed nothing of the request and is the last audit entry."""
    after = airlock.storage.get_request(request_id)
    assert (after.state, after.round, after.provider_votes) == (
        before.state,
        before.round,
        before.provider_votes,
    )
    last = list(airlock.storage.audit_records())[-1]
    assert (last.action, last.actor, last.request_id) == (Action.REFUSAL, who, request_id)


# -- who is asked ----------------------------------------------------------------------


def test_a_submission_records_the_providers_asked_and_tells_them(airlock: Airlock) -> None:
    request = submit(airlock, project=CO_PROJECT)
    assert request.co_reviewers == [
        CoReviewer("Acme", CoReview.REQUIRED, ("recipes@v1",)),
        CoReviewer("Boreal", CoReview.NOTIFY, ("sensors@v2",)),
    ]
    notices = [(a, d) for a, _, d in audit(airlock, request.id) if a == Action.NOTIFY_PROVIDER]
    assert notices == [
        ("notify_provider", {"provider": "Acme", "level": "required", "datasets": ["recipes@v1"]}),
        ("notify_provider", {"provider": "Boreal", "level": "notify", "datasets": ["sensors@v2"]}),
    ]


def test_data_that_asks_nothing_changes_nothing(airlock: Airlock) -> None:
    """press-line's only dataset is co-review ``none``: the officers' approval is final."""
    request = submit(airlock)
    assert request.co_reviewers == []
    rid = request.id
    review(airlock, rid, "olga", Decision.APPROVE)
    assert review(airlock, rid, "oscar", Decision.APPROVE).state is State.APPROVED
    assert airlock.release(actor(airlock, "olga"), rid).state is State.RELEASED
    assert not [a for a, _, _ in audit(airlock, rid) if a == Action.NOTIFY_PROVIDER]


def test_the_strictest_level_of_each_provider_counts() -> None:
    uses = [
        DataUse("a", "v1", "Acme", CoReview.NOTIFY),
        DataUse("b", "v3", "Acme", CoReview.REQUIRED),
        DataUse("c", "v1", "Boreal", CoReview.NONE),
    ]
    assert co_reviewers(uses) == [CoReviewer("Acme", CoReview.REQUIRED, ("a@v1", "b@v3"))]
    assert merge(
        [CoReviewer("Acme", CoReview.REQUIRED, ("a@v1",))],
        [
            CoReviewer("Acme", CoReview.NOTIFY, ("z@v9",)),
            CoReviewer("Boreal", CoReview.NOTIFY, ("c@v1",)),
        ],
    ) == [
        CoReviewer("Acme", CoReview.REQUIRED, ("a@v1", "z@v9")),
        CoReviewer("Boreal", CoReview.NOTIFY, ("c@v1",)),
    ]


def test_data_linked_after_submission_is_asked_at_the_officers_decision(
    airlock: Airlock,
) -> None:
    rid = submit(airlock).id
    assert airlock.storage.get_request(rid).co_reviewers == []
    airlock.data_owners = StaticDataOwners(
        {PROJECT: [DataUse("recipes", "v1", "Acme", CoReview.REQUIRED)]}, PROVIDER_ACCOUNTS
    )
    review(airlock, rid, "olga", Decision.APPROVE)
    done = review(airlock, rid, "oscar", Decision.APPROVE)
    assert done.state is State.PROVIDER_REVIEW
    assert done.co_reviewers == [CoReviewer("Acme", CoReview.REQUIRED, ("recipes@v1",))]
    last = audit(airlock, rid)[-1]
    assert last == (
        "notify_provider",
        "oscar",
        {"provider": "Acme", "level": "required", "datasets": ["recipes@v1"]},
    )


def test_static_data_owners_refuse_a_malformed_file() -> None:
    with pytest.raises(ValueError, match="accounts must map"):
        StaticDataOwners.from_json({"accounts": ["paul"]})
    with pytest.raises(ValueError, match="a dataset use needs"):
        StaticDataOwners.from_json({"uses": {"kiln": [{"dataset": "r", "co_review": "x"}]}})
    with pytest.raises(ValueError, match="expected"):
        StaticDataOwners.from_json({"providers": {}})
    owners = StaticDataOwners.from_json(
        {
            "accounts": {"Acme": ["paul"]},
            "uses": {
                "kiln": [
                    {"dataset": "r", "version": "v1", "provider": "Acme", "co_review": "required"}
                ]
            },
        }
    )
    assert owners.uses_of("kiln") == [DataUse("r", "v1", "Acme", CoReview.REQUIRED)]
    assert owners.providers_of("paul") == {"Acme"}
    assert owners.provider_problem("nobody") == "nobody does not act for any data provider"


# -- the transitions -------------------------------------------------------------------


def test_officers_approval_waits_for_the_provider_then_the_release_completes(
    airlock: Airlock,
) -> None:
    request = approved_by_officers(airlock)
    rid = request.id
    assert request.state is State.PROVIDER_REVIEW
    # The officers' final release cannot come before the provider's vote.
    with pytest.raises(InvalidTransition, match="not approved"):
        airlock.release(actor(airlock, "olga"), rid)
    done = airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 1)
    assert done.state is State.APPROVED
    assert [(v.provider, v.voter, v.decision, v.round) for v in done.provider_votes] == [
        ("Acme", "paul", APPROVE, 1)
    ]
    entries = audit(airlock, rid)
    assert entries[-2] == (
        "provider_vote",
        "paul",
        {"provider": "Acme", "decision": "approve", "round": 1, "reason": ""},
    )
    assert entries[-1] == (
        "decide",
        "paul",
        {"state": "approved", "round": 1, "provider": "Acme"},
    )
    assert airlock.release(actor(airlock, "olga"), rid).state is State.RELEASED
    # The officers' decision that started it: in review -> provider review, by oscar.
    assert ("decide", "oscar", {"state": "provider_review", "round": 1}) in entries


def test_a_providers_decline_stops_the_release_with_its_reason(airlock: Airlock) -> None:
    rid = approved_by_officers(airlock).id
    done = airlock.provider_vote(
        actor(airlock, "paul"), rid, "Acme", DECLINE, "the oven curve shows the recipe", 1
    )
    assert done.state is State.DECLINED
    cast = done.provider_vote("Acme")
    assert cast is not None and cast.reason == "the oven curve shows the recipe"
    assert audit(airlock, rid)[-2][2]["reason"] == "the oven curve shows the recipe"
    for move in (
        lambda: airlock.release(actor(airlock, "olga"), rid),
        lambda: airlock.withdraw(actor(airlock, "alice"), rid),
        lambda: airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 1),
    ):
        with pytest.raises(InvalidTransition):
            move()
    assert airlock.storage.get_request(rid).state is State.DECLINED
    # The author learns why: the provider's vote is part of what they see.
    alice = actor(airlock, "alice")
    seen = airlock.view(alice, rid)
    assert seen.provider_votes[0].reason == "the oven curve shows the recipe"


def test_a_decline_needs_a_reason(airlock: Airlock) -> None:
    request = approved_by_officers(airlock)
    with pytest.raises(BadRequest, match="declining a release needs a reason"):
        airlock.provider_vote(actor(airlock, "paul"), request.id, "Acme", DECLINE, "  ", 1)
    unchanged_but_refused(airlock, request.id, "paul", request)


def test_every_provider_asked_must_approve(airlock: Airlock) -> None:
    """Two providers must vote: the first approval leaves it waiting for the second."""
    airlock.data_owners = StaticDataOwners(
        {
            CO_PROJECT: [
                DataUse("recipes", "v1", "Acme", CoReview.REQUIRED),
                DataUse("sensors", "v2", "Boreal", CoReview.REQUIRED),
            ]
        },
        {**PROVIDER_ACCOUNTS, "Acme": ["paul", "pia"]},
    )
    rid = approved_by_officers(airlock).id
    first = airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 1)
    assert first.state is State.PROVIDER_REVIEW
    assert first.providers_awaited() == ["Boreal"]
    # Double vote: nobody votes for Acme again, paul or another Acme person.
    for who in ("paul", "pia"):
        with pytest.raises(InvalidTransition, match="Acme already voted on round 1"):
            airlock.provider_vote(actor(airlock, who), rid, "Acme", DECLINE, "changed mind", 1)
        unchanged_but_refused(airlock, rid, who, first)
    done = airlock.provider_vote(actor(airlock, "nina"), rid, "Boreal", APPROVE, "fine", 1)
    assert done.state is State.APPROVED


# -- refusals --------------------------------------------------------------------------


def test_a_provider_who_is_a_member_of_the_project_may_not_vote(airlock: Airlock) -> None:
    request = approved_by_officers(airlock)
    kim = actor(airlock, "kim")
    assert kim.acts_for == {"Acme"}
    with pytest.raises(PermissionDenied, match="a provider's vote on its releases must come"):
        airlock.provider_vote(kim, request.id, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, request.id, "kim", request)
    assert not perm.can_provider_vote(kim, request, "Acme")


def test_a_former_member_of_the_project_may_not_vote(airlock: Airlock) -> None:
    membership = StaticMembership(MEMBERS)
    membership.add("paul", CO_PROJECT)
    membership.remove("paul", CO_PROJECT)
    airlock.membership = membership
    request = approved_by_officers(airlock)
    with pytest.raises(PermissionDenied, match="you are or were a member of project 'kiln'"):
        airlock.provider_vote(actor(airlock, "paul"), request.id, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, request.id, "paul", request)


def test_the_author_may_not_vote_as_a_provider(airlock: Airlock) -> None:
    airlock.data_owners = StaticDataOwners(DATA_USES, {**PROVIDER_ACCOUNTS, "Acme": ["alice"]})
    request = approved_by_officers(airlock)
    with pytest.raises(PermissionDenied, match="your own request"):
        airlock.provider_vote(actor(airlock, "alice"), request.id, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, request.id, "alice", request)


def test_the_wrong_provider_may_not_vote(airlock: Airlock) -> None:
    request = approved_by_officers(airlock)
    rid = request.id
    # nina acts for Boreal, which is only told: she sees the request, but has no vote.
    nina = actor(airlock, "nina")
    with pytest.raises(PermissionDenied, match="'Boreal' is not asked to vote"):
        airlock.provider_vote(nina, rid, "Boreal", APPROVE, "", 1)
    unchanged_but_refused(airlock, rid, "nina", request)
    with pytest.raises(PermissionDenied, match="you do not act for 'Acme'"):
        airlock.provider_vote(nina, rid, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, rid, "nina", request)
    # fred's provider is not asked at all: for him the request does not exist.
    with pytest.raises(NotFound):
        airlock.provider_vote(actor(airlock, "fred"), rid, "Fjord", APPROVE, "", 1)
    unchanged_but_refused(airlock, rid, "fred", request)
    # An officer is no provider either.
    with pytest.raises(PermissionDenied, match="you do not act for 'Acme'"):
        airlock.provider_vote(actor(airlock, "olga"), rid, "Acme", APPROVE, "", 1)


def test_a_provider_out_of_standing_may_not_vote(airlock: Airlock) -> None:
    class Lapsed(StaticDataOwners):
        def provider_problem(self, user: str) -> str:
            return f"{user}'s training expired"

    airlock.data_owners = Lapsed(DATA_USES, PROVIDER_ACCOUNTS)
    request = approved_by_officers(airlock)
    paul = actor(airlock, "paul")
    with pytest.raises(PermissionDenied, match="paul's training expired"):
        airlock.provider_vote(paul, request.id, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, request.id, "paul", request)
    assert not perm.can_view_content(paul, request)


def test_a_vote_on_a_stale_request_is_refused(airlock: Airlock) -> None:
    # Before the officers decided: nothing to vote on yet.
    rid = submit(airlock, project=CO_PROJECT).id
    airlock.view(actor(airlock, "olga"), rid)
    early = airlock.storage.get_request(rid)
    with pytest.raises(InvalidTransition, match="is in_review, not waiting for a provider"):
        airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, rid, "paul", early)
    # Returned, resubmitted and approved again: a vote on the old round is refused.
    review(airlock, rid, "olga", Decision.CHANGES)
    review(airlock, rid, "oscar", Decision.APPROVE)
    airlock.resubmit(actor(airlock, "alice"), rid, "smaller cells suppressed")
    review(airlock, rid, "olga", Decision.APPROVE)
    again = review(airlock, rid, "oscar", Decision.APPROVE)
    assert (again.state, again.round) == (State.PROVIDER_REVIEW, 2)
    with pytest.raises(InvalidTransition, match=r"round 1 .* now in round 2: reload"):
        airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 1)
    unchanged_but_refused(airlock, rid, "paul", again)
    assert airlock.provider_vote(actor(airlock, "paul"), rid, "Acme", APPROVE, "", 2).state is (
        State.APPROVED
    )


def test_release_refuses_a_request_approved_without_its_providers_approval(
    airlock: Airlock,
) -> None:
    """The release checks the providers' votes itself, not only the state."""
    request = approved_by_officers(airlock)
    forged = replace(request, state=State.APPROVED)
    with pytest.raises(InvalidTransition, match="still needs the approval of provider"):
        perm.check_can_release(actor(airlock, "olga"), forged)


# -- what the provider sees ------------------------------------------------------------


def test_the_voter_sees_what_officers_see_and_the_told_provider_less(airlock: Airlock) -> None:
    request = approved_by_officers(airlock)
    rid = request.id
    paul, nina, fred = (actor(airlock, n) for n in ("paul", "nina", "fred"))
    assert perm.can_view(paul, request) and perm.can_view_content(paul, request)
    _file, data = airlock.file_content(paul, rid, "out/table.csv")
    assert data.startswith(b"group,count")
    # The officers' votes and comments of the decided round, as an officer sees them.
    assert {v.officer for v in airlock.visible_votes(paul, request)} == {"olga", "oscar"}
    assert perm.can_view(nina, request) and not perm.can_view_content(nina, request)
    with pytest.raises(PermissionDenied):
        airlock.file_content(nina, rid, "out/table.csv")
    assert not perm.can_view(fred, request)


def test_the_providers_page_lists_what_waits_for_them(airlock: Airlock) -> None:
    waiting_id = approved_by_officers(airlock).id
    told_id = submit(airlock, project=CO_PROJECT).id
    plain = submit(airlock).id
    waiting, page = airlock.provider_requests(actor(airlock, "paul"))
    assert [r.id for r in waiting] == [waiting_id]
    assert {r.id for r in page.requests} == {waiting_id, told_id}
    assert plain not in {r.id for r in page.requests}
    # kim acts for Acme but is a member of kiln: nothing waits for her vote.
    kim_waiting, _ = airlock.provider_requests(actor(airlock, "kim"))
    assert kim_waiting == []
    nina_waiting, nina_page = airlock.provider_requests(actor(airlock, "nina"))
    assert nina_waiting == [] and {r.id for r in nina_page.requests} == {waiting_id, told_id}
    with pytest.raises(PermissionDenied, match="acts for no data provider"):
        airlock.provider_requests(actor(airlock, "olga"))


# -- the setting -----------------------------------------------------------------------


def test_the_data_owners_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "owners.json"
    good.write_text(json.dumps({"accounts": {"Acme": ["paul"]}}))
    assert load_data_owners(f"file:{good}").providers_of("paul") == {"Acme"}
    assert load_data_owners("none").uses_of(CO_PROJECT) == []
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(Misconfigured, match=r"data owners file .*bad\.json: expected"):
        load_data_owners(f"file:{bad}")
    with pytest.raises(Misconfigured, match="use registry, file:<path> or none"):
        load_data_owners("ldap")
    # The registry's data goes with the registry's membership; other memberships have no
    # data library behind them unless the setting names one.
    monkeypatch.delenv("CLEANROOM_AIRLOCK_DATA_OWNERS", raising=False)
    assert AirlockSettings(membership="registry").data_owners == "registry"
    assert AirlockSettings(membership=f"file:{good}").data_owners == "none"
    monkeypatch.setenv("CLEANROOM_AIRLOCK_DATA_OWNERS", f"file:{good}")
    assert AirlockSettings(membership="registry").data_owners == f"file:{good}"
