"""Every transition and permission of the airlock, through the real business logic.

Each refusal is checked for its error, for leaving the request unchanged, and for being
recorded in the audit log.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from cleanroom.airlock import permissions as perm
from cleanroom.airlock.domain import (
    OFFICER_SCOPE,
    RESEARCHER_SCOPE,
    TRANSITIONS,
    Action,
    Decision,
    FileUpload,
    State,
)
from cleanroom.airlock.exceptions import (
    BadRequest,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    PermissionDenied,
)
from cleanroom.airlock.membership import StaticMembership
from cleanroom.airlock.policy import Limits, Policy
from cleanroom.airlock.service import Airlock

from .factories import OTHER_PROJECT, PROJECT, actor, csv_file, request_in, review, submit


def last_action(airlock: Airlock) -> tuple[str, str]:
    rec = list(airlock.storage.audit_records())[-1]
    return rec.action, rec.actor


def assert_refused(airlock: Airlock, who: str) -> None:
    assert last_action(airlock) == (Action.REFUSAL, who)


# -- the state table is what the code follows ---------------------------------------------


def test_every_state_is_reached_through_the_real_logic(airlock: Airlock) -> None:
    """The factories reach each state by calling the airlock, never by writing rows."""
    reached = {s: request_in(airlock, s).state for s in State if s is not State.DRAFT}
    assert reached == {s: s for s in State if s is not State.DRAFT}
    assert len(TRANSITIONS) == 16


MOVES = {
    State.WITHDRAWN: lambda a, rid: a.withdraw(actor(a, "alice"), rid),
    State.RESUBMITTED: lambda a, rid: a.resubmit(actor(a, "alice"), rid, "changed"),
    State.RELEASED: lambda a, rid: a.release(actor(a, "olga"), rid),
}


@pytest.mark.parametrize("state", [s for s in State if s is not State.DRAFT])
@pytest.mark.parametrize("dst", list(MOVES))
def test_moves_the_table_does_not_allow_are_refused_from_every_state(
    airlock: Airlock, state: State, dst: State
) -> None:
    """Every act that moves a request, from every state: refused where the table says no,
    changing nothing but the refusal's audit entry."""
    if (state, dst) in TRANSITIONS:
        return  # allowed moves are exercised by the tests of each act
    rid = request_in(airlock, state).id
    before = airlock.storage.get_request(rid)
    entries = airlock.verify_audit().count
    with pytest.raises(InvalidTransition):
        MOVES[dst](airlock, rid)
    after = airlock.storage.get_request(rid)
    assert (after.state, after.round, after.files) == (state, before.round, before.files)
    assert airlock.verify_audit().count == entries + 1
    assert last_action(airlock)[0] == Action.REFUSAL


@pytest.mark.parametrize(
    "state", [State.SUBMITTED, State.IN_REVIEW, State.RETURNED, State.RESUBMITTED]
)
def test_author_withdraws_before_a_decision(airlock: Airlock, state: State) -> None:
    rid = request_in(airlock, state).id
    assert airlock.withdraw(actor(airlock, "alice"), rid).state is State.WITHDRAWN
    assert last_action(airlock) == (Action.WITHDRAW, "alice")


@pytest.mark.parametrize("state", [State.APPROVED, State.REJECTED, State.RELEASED, State.WITHDRAWN])
def test_withdraw_refused_after_decision(airlock: Airlock, state: State) -> None:
    rid = request_in(airlock, state).id
    with pytest.raises(InvalidTransition):
        airlock.withdraw(actor(airlock, "alice"), rid)
    assert airlock.storage.get_request(rid).state is state
    assert_refused(airlock, "alice")


def test_only_the_author_withdraws(airlock: Airlock) -> None:
    rid = submit(airlock).id
    with pytest.raises(PermissionDenied):
        airlock.withdraw(actor(airlock, "bob"), rid)
    assert_refused(airlock, "bob")


def test_first_officer_look_opens_review(airlock: Airlock) -> None:
    rid = submit(airlock).id
    assert airlock.view(actor(airlock, "olga"), rid).state is State.IN_REVIEW
    assert airlock.view(actor(airlock, "oscar"), rid).state is State.IN_REVIEW
    actions = [r.action for r in airlock.storage.audit_records() if r.request_id == rid]
    assert actions.count(Action.OPEN_REVIEW) == 1


def test_author_look_does_not_open_review(airlock: Airlock) -> None:
    rid = submit(airlock).id
    assert airlock.view(actor(airlock, "alice"), rid).state is State.SUBMITTED
    assert airlock.view(actor(airlock, "bob"), rid).state is State.SUBMITTED


def test_two_approvals_approve_and_release_makes_downloadable(airlock: Airlock) -> None:
    rid = submit(airlock).id
    assert review(airlock, rid, "olga", Decision.APPROVE).state is State.IN_REVIEW
    assert review(airlock, rid, "oscar", Decision.APPROVE).state is State.APPROVED
    with pytest.raises(PermissionDenied):
        airlock.download(actor(airlock, "alice"), rid, "out/table.csv")
    airlock.release(actor(airlock, "oscar"), rid)
    f, data = airlock.download(actor(airlock, "bob"), rid, "out/table.csv")
    assert data.startswith(b"group,count")
    assert last_action(airlock) == (Action.DOWNLOAD, "bob")
    assert list(airlock.storage.audit_records())[-1].file_sha256 == f.sha256


def test_quorum_follows_policy(make_airlock, sqlite_url: str) -> None:
    airlock = make_airlock(sqlite_url, policy=Policy(approvals_required=3))
    rid = submit(airlock).id
    review(airlock, rid, "olga", Decision.APPROVE)
    assert review(airlock, rid, "oscar", Decision.APPROVE).state is State.IN_REVIEW
    assert review(airlock, rid, "omar", Decision.APPROVE).state is State.APPROVED


def test_one_rejection_among_approvals_rejects(airlock: Airlock) -> None:
    rid = submit(airlock).id
    review(airlock, rid, "olga", Decision.APPROVE)
    assert review(airlock, rid, "oscar", Decision.REJECT).state is State.REJECTED


def test_changes_requested_returns_then_resubmission_starts_a_new_round(airlock: Airlock) -> None:
    rid = request_in(airlock, State.RETURNED).id
    new = FileUpload("out/table.csv", b"group,count\ng1,50\ng2,60\n", "suppressed")
    alice = actor(airlock, "alice", PROJECT)
    done = airlock.resubmit(alice, rid, "suppressed small cells", [new])
    assert (done.state, done.round) == (State.RESUBMITTED, 2)
    assert done.current_files()[0].size == len(new.data)
    # Round two needs fresh votes from both officers.
    assert review(airlock, rid, "olga", Decision.APPROVE).state is State.IN_REVIEW
    assert review(airlock, rid, "oscar", Decision.APPROVE).state is State.APPROVED


def test_resubmit_only_by_author_and_only_when_returned(airlock: Airlock) -> None:
    rid = request_in(airlock, State.RETURNED).id
    with pytest.raises(PermissionDenied):
        airlock.resubmit(actor(airlock, "bob"), rid, "x")
    rid2 = submit(airlock).id
    with pytest.raises(InvalidTransition):
        airlock.resubmit(actor(airlock, "alice"), rid2, "x")
    assert_refused(airlock, "alice")


# -- independence and roles ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "error"),
    [
        ("alice", PermissionDenied),  # the author, even holding the officer role below
        ("otto", PermissionDenied),  # an officer who is a member of the project
        ("bob", PermissionDenied),  # a member without the officer role
        ("eve", PermissionDenied),  # an outsider researcher
    ],
)
def test_who_may_not_review(airlock: Airlock, who: str, error: type) -> None:
    rid = request_in(airlock, State.IN_REVIEW).id
    person = actor(airlock, who)
    person = replace(person, scopes=person.scopes | {OFFICER_SCOPE}) if who == "alice" else person
    with pytest.raises((error, NotFound)):
        airlock.vote(person, rid, "out/table.csv", Decision.APPROVE)
    with pytest.raises((error, NotFound)):
        airlock.complete_review(person, rid)
    assert_refused(airlock, who)
    assert airlock.storage.get_request(rid).votes == []


def test_officer_reviews_once_per_round(airlock: Airlock) -> None:
    rid = submit(airlock).id
    review(airlock, rid, "olga", Decision.APPROVE)
    with pytest.raises(InvalidTransition, match="already finished"):
        airlock.vote(actor(airlock, "olga"), rid, "out/table.csv", Decision.REJECT, "no")


def test_review_needs_a_vote_on_every_file(airlock: Airlock) -> None:
    rid = submit(airlock, files=[csv_file("a.csv"), csv_file("b.csv", salt="b")]).id
    olga = actor(airlock, "olga")
    airlock.view(olga, rid)
    airlock.vote(olga, rid, "a.csv", Decision.APPROVE)
    with pytest.raises(BadRequest, match=r"b\.csv"):
        airlock.complete_review(olga, rid)


def test_vote_needs_open_review_and_reasons(airlock: Airlock) -> None:
    rid = submit(airlock).id
    olga = actor(airlock, "olga")
    with pytest.raises(InvalidTransition, match="open"):
        airlock.vote(olga, rid, "out/table.csv", Decision.APPROVE)
    airlock.view(olga, rid)
    with pytest.raises(BadRequest, match="comment"):
        airlock.vote(olga, rid, "out/table.csv", Decision.REJECT)
    with pytest.raises(NotFound):
        airlock.vote(olga, rid, "nope.csv", Decision.APPROVE)


def test_release_only_by_independent_officer_when_approved(airlock: Airlock) -> None:
    rid = request_in(airlock, State.APPROVED).id
    for who in ("alice", "bob", "otto", "pat"):
        with pytest.raises(PermissionDenied):
            airlock.release(actor(airlock, who), rid)
    rid2 = request_in(airlock, State.IN_REVIEW).id
    with pytest.raises(InvalidTransition):
        airlock.release(actor(airlock, "olga"), rid2)


def test_blind_review(airlock: Airlock) -> None:
    rid = submit(airlock).id
    olga, oscar = actor(airlock, "olga"), actor(airlock, "oscar")
    review(airlock, rid, "olga", Decision.CHANGES)
    request = airlock.view(oscar, rid)
    assert airlock.visible_votes(oscar, request) == []
    assert all(c.author != "olga" for c in airlock.visible_comments(oscar, request))
    # The author sees nothing of the votes until the round is decided.
    alice = actor(airlock, "alice")
    assert airlock.visible_votes(alice, airlock.storage.get_request(rid)) == []
    airlock.vote(oscar, rid, "out/table.csv", Decision.APPROVE)
    airlock.complete_review(oscar, rid)
    decided = airlock.storage.get_request(rid)
    assert {v.officer for v in airlock.visible_votes(oscar, decided)} == {"olga", "oscar"}
    assert {v.officer for v in airlock.visible_votes(olga, decided)} == {"olga", "oscar"}
    texts = [c.text for c in airlock.visible_comments(alice, decided)]
    assert "changes: changes please" in texts


@pytest.mark.parametrize("state", [s for s in State if s is not State.DRAFT])
def test_nothing_unreleased_is_downloadable(airlock: Airlock, state: State) -> None:
    rid = request_in(airlock, state).id
    for who in ("alice", "bob", "olga", "pat", "eve"):
        if state is State.RELEASED and who in ("alice", "bob"):
            assert airlock.download(actor(airlock, who), rid, "out/table.csv")[1]
            continue
        with pytest.raises(PermissionDenied):
            airlock.download(actor(airlock, who), rid, "out/table.csv")


def test_researchers_never_see_unreleased_content(airlock: Airlock) -> None:
    rid = request_in(airlock, State.IN_REVIEW).id
    for who in ("alice", "bob"):
        with pytest.raises(PermissionDenied):
            airlock.file_content(actor(airlock, who), rid, "out/table.csv")
    assert airlock.file_content(actor(airlock, "oscar"), rid, "out/table.csv")[1]
    assert airlock.file_content(actor(airlock, "pat"), rid, "out/table.csv")[1]


def test_outsiders_get_not_found(airlock: Airlock) -> None:
    rid = submit(airlock).id
    with pytest.raises(NotFound):
        airlock.view(actor(airlock, "eve"), rid)
    with pytest.raises(NotFound):
        airlock.view(replace(actor(airlock, "eve"), scopes=frozenset()), rid)


def test_visibility_by_role(airlock: Airlock) -> None:
    rid = submit(airlock).id
    assert airlock.view(actor(airlock, "bob"), rid)  # a member
    assert airlock.view(actor(airlock, "pat"), rid)  # an operator
    assert [r.id for r in airlock.queue(actor(airlock, "olga")).requests] == [rid]
    # A member-officer: not in their queue.
    assert airlock.queue(actor(airlock, "otto")).requests == []
    assert airlock.queue(actor(airlock, "otto")).total == 0
    with pytest.raises(PermissionDenied):
        airlock.queue(actor(airlock, "bob"))
    assert [r.id for r in airlock.project_requests(actor(airlock, "bob")).requests] == [rid]
    assert airlock.project_requests(actor(airlock, "eve")).total == 0


def test_comments(airlock: Airlock) -> None:
    rid = request_in(airlock, State.IN_REVIEW).id
    airlock.comment(actor(airlock, "alice"), rid, "the counts are rounded to 5")
    airlock.comment(actor(airlock, "olga"), rid, "looking", file="out/table.csv")
    with pytest.raises(PermissionDenied):
        airlock.comment(actor(airlock, "bob"), rid, "me too")
    with pytest.raises(BadRequest):
        airlock.comment(actor(airlock, "alice"), rid, "   ")
    request = airlock.storage.get_request(rid)
    assert [c.author for c in airlock.visible_comments(actor(airlock, "alice"), request)] == [
        "alice"
    ]


# -- submission: token rule, limits, duplicates ------------------------------------------


def test_token_must_name_exactly_the_project(airlock: Airlock) -> None:
    wrong = actor(airlock, "alice", OTHER_PROJECT)
    with pytest.raises(PermissionDenied, match="only the workspace server token"):
        airlock.submit(wrong, PROJECT, "why", [csv_file()])
    broad = replace(actor(airlock, "alice"), scopes=frozenset({RESEARCHER_SCOPE, "access:servers"}))
    with pytest.raises(PermissionDenied):
        airlock.submit(broad, PROJECT, "why", [csv_file()])
    other_user = actor(airlock, "bob", PROJECT)
    other_user = replace(other_user, username="alice")  # bob's server scope, alice's name
    with pytest.raises(PermissionDenied):
        airlock.submit(other_user, PROJECT, "why", [csv_file()])
    assert airlock.storage.list_requests() == []
    assert_refused(airlock, "alice")


def test_non_member_may_not_submit(airlock: Airlock) -> None:
    eve = actor(airlock, "eve", PROJECT)
    with pytest.raises(PermissionDenied, match="not a member"):
        airlock.submit(eve, PROJECT, "why", [csv_file()])


def test_researcher_role_needed(airlock: Airlock) -> None:
    alice = actor(airlock, "alice", PROJECT)
    alice = replace(alice, scopes=alice.scopes - {RESEARCHER_SCOPE})
    with pytest.raises(PermissionDenied, match="researcher"):
        airlock.submit(alice, PROJECT, "why", [csv_file()])


@pytest.mark.parametrize(
    ("limits", "files", "limit"),
    [
        (Limits(files_per_request=1), [csv_file("a.csv"), csv_file("b.csv")], "files_per_request"),
        (Limits(bytes_per_file=10, bytes_per_request=100), [csv_file()], "bytes_per_file"),
        (
            Limits(bytes_per_file=25, bytes_per_request=30),
            [csv_file("a.csv", rows=1), csv_file("b.csv", rows=1, salt="x")],
            "bytes_per_request",
        ),
    ],
)
def test_limits_name_the_limit(make_airlock, sqlite_url, limits, files, limit) -> None:
    airlock = make_airlock(sqlite_url, policy=Policy(limits=limits))
    with pytest.raises(LimitExceeded, match=limit) as info:
        airlock.submit(actor(airlock, "alice", PROJECT), PROJECT, "why", files)
    assert info.value.limit == limit
    assert airlock.storage.list_requests() == []
    assert_refused(airlock, "alice")


def test_daily_limit(make_airlock, sqlite_url, clock) -> None:
    airlock = make_airlock(sqlite_url, policy=Policy(limits=Limits(requests_per_user_per_day=2)))
    submit(airlock)
    submit(airlock)
    with pytest.raises(LimitExceeded, match="requests_per_user_per_day") as info:
        submit(airlock)
    assert info.value.status == 429
    clock.advance(hours=25)
    assert submit(airlock).state is State.SUBMITTED


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "at least one file"),
        ([FileUpload("../etc/passwd", b"x")], "inside the workspace"),
        ([FileUpload("/abs.csv", b"x")], "inside the workspace"),
        ([FileUpload("a.csv", b"")], "empty"),
        ([FileUpload("a.csv", b"x"), FileUpload("./a.csv", b"y")], "twice"),
    ],
)
def test_bad_submissions(airlock: Airlock, files, message) -> None:
    with pytest.raises(BadRequest, match=message):
        airlock.submit(actor(airlock, "alice", PROJECT), PROJECT, "why", files)


def test_justification_required(airlock: Airlock) -> None:
    with pytest.raises(BadRequest, match="justification"):
        airlock.submit(actor(airlock, "alice", PROJECT), PROJECT, "  ", [csv_file()])


def test_idempotency_key_returns_the_first_request(airlock: Airlock) -> None:
    alice = actor(airlock, "alice", PROJECT)
    first = airlock.submit(alice, PROJECT, "why", [csv_file()], idempotency_key="k1")
    again = airlock.submit(alice, PROJECT, "other why", [csv_file(salt="z")], idempotency_key="k1")
    assert (first.created, again.created) == (True, False)
    assert again.request.id == first.request.id
    assert len(airlock.storage.list_requests()) == 1


def test_identical_repeat_within_window_is_one_request(airlock: Airlock, clock) -> None:
    alice = actor(airlock, "alice", PROJECT)
    first = airlock.submit(alice, PROJECT, "why", [csv_file()])
    again = airlock.submit(alice, PROJECT, "why", [csv_file()])
    assert not again.created and again.request.id == first.request.id
    clock.advance(seconds=Policy().duplicate_window_seconds + 1)
    assert airlock.submit(alice, PROJECT, "why", [csv_file()]).created


def test_submission_snapshots_bytes_and_detects_type(airlock: Airlock) -> None:
    png = FileUpload("fig.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "a figure")
    request = submit(airlock, files=[png])
    f = request.current_files()[0]
    assert f.content_type == "image/png"
    assert airlock.blobs.get(f.sha256) == png.data
    assert f.checks["verdict"] == "pass"


def test_missing_checks_never_lose_a_submission(make_airlock, sqlite_url, monkeypatch) -> None:
    from cleanroom.airlock.checks_adapter import DisclosureChecks

    # A None entry in sys.modules makes the import itself fail, as a missing package would.
    monkeypatch.setitem(sys.modules, "cleanroom.checks", None)
    airlock = make_airlock(sqlite_url, checks=DisclosureChecks())
    checks = submit(airlock).current_files()[0].checks
    assert checks["verdict"] == "review"
    assert checks["unavailable"].startswith("checks unavailable: ModuleNotFoundError")


def test_crashing_checks_never_lose_a_submission(make_airlock, sqlite_url) -> None:
    from cleanroom.airlock.checks_adapter import DisclosureChecks

    def crash(data: bytes, filename: str, context: object) -> None:
        raise RuntimeError("parser exploded")

    checker = DisclosureChecks(datasets_of=lambda project: ())
    checker._load = lambda project: (crash, None)  # type: ignore[method-assign]
    airlock = make_airlock(sqlite_url, checks=checker)
    checks = submit(airlock).current_files()[0].checks
    assert checks["unavailable"] == "checks unavailable: RuntimeError: parser exploded"


def test_real_checks_run_on_submission(make_airlock, sqlite_url) -> None:
    from cleanroom.airlock.checks_adapter import DisclosureChecks

    airlock = make_airlock(sqlite_url, checks=DisclosureChecks(datasets_of=lambda project: ()))
    checks = submit(airlock).current_files()[0].checks
    assert checks["verdict"] in {"pass", "review", "warn", "fail"}
    assert "unavailable" not in checks, checks


def test_every_act_is_audited_and_the_chain_verifies(airlock: Airlock) -> None:
    request_in(airlock, State.RELEASED)
    airlock.download(
        actor(airlock, "alice"), airlock.storage.list_requests()[0].id, "out/table.csv"
    )
    actions = {r.action for r in airlock.storage.audit_records()}
    assert {
        "submit",
        "view",
        "open_review",
        "vote",
        "complete_review",
        "decide",
        "release",
        "download",
    } <= actions
    result = airlock.verify_audit()
    assert result.ok, result.problems


def test_queue_pages_hold_what_each_reader_may_see(airlock: Airlock) -> None:
    ids = [submit(airlock, "alice" if i % 2 else "bob").id for i in range(7)]
    other = airlock.submit(
        actor(airlock, "eve", OTHER_PROJECT), OTHER_PROJECT, "furnace figures", [csv_file()]
    ).request.id
    for reader, expected in (("olga", [*ids, other]), ("otto", [other]), ("pat", [*ids, other])):
        who = actor(airlock, reader)
        pages = [airlock.queue(who, limit=3, offset=o) for o in (0, 3, 6, 9)]
        assert [r.id for p in pages for r in p.requests] == expected, reader
        assert {p.total for p in pages} == {len(expected)}
    olga = actor(airlock, "olga")
    assert [r.id for r in airlock.queue(olga, author="alice").requests] == ids[1::2]
    assert airlock.queue(olga, project=OTHER_PROJECT).total == 1
    assert airlock.queue(olga, [State.RELEASED]).total == 0


def test_former_members_are_not_independent(airlock: Airlock) -> None:
    rid = request_in(airlock, State.SUBMITTED).id
    membership = airlock.membership
    assert isinstance(membership, StaticMembership)
    membership.add("omar", PROJECT)
    membership.remove("omar", PROJECT)  # omar, an officer, left the project
    omar = actor(airlock, "omar")
    assert PROJECT not in omar.projects and PROJECT in omar.affiliations
    with pytest.raises(PermissionDenied, match="were a member"):
        airlock.vote(omar, rid, "out/table.csv", Decision.APPROVE)
    with pytest.raises(PermissionDenied):
        airlock.file_content(omar, rid, "out/table.csv")
    page = airlock.queue(omar)
    assert rid not in [r.id for r in page.requests] and page.total == 0
    # Another officer, never a member, reviews as before.
    assert [r.id for r in airlock.queue(actor(airlock, "olga")).requests] == [rid]


def test_operators_who_review_may_not_export_the_votes(airlock: Airlock) -> None:
    pat = actor(airlock, "pat")
    perm.check_can_export_audit(pat)
    both = replace(pat, scopes=pat.scopes | {OFFICER_SCOPE})
    with pytest.raises(PermissionDenied, match="officer role too"):
        perm.check_can_export_audit(both)
    with pytest.raises(PermissionDenied, match="operator role"):
        perm.check_can_export_audit(actor(airlock, "olga"))


def test_researchers_page_their_projects_requests_newest_first(airlock: Airlock) -> None:
    ids = [submit(airlock, "alice" if i % 2 else "bob").id for i in range(5)]
    other = airlock.submit(
        actor(airlock, "eve", OTHER_PROJECT), OTHER_PROJECT, "furnace figures", [csv_file()]
    ).request.id
    bob = actor(airlock, "bob")
    pages = [airlock.project_requests(bob, limit=2, offset=o) for o in (0, 2, 4)]
    assert [r.id for p in pages for r in p.requests] == ids[::-1]
    assert {p.total for p in pages} == {5}
    eve = actor(airlock, "eve")
    assert [r.id for r in airlock.project_requests(eve).requests] == [other]
    # One's own requests stay visible after leaving the project.
    membership = airlock.membership
    assert isinstance(membership, StaticMembership)
    membership.remove("bob", PROJECT)
    mine = airlock.project_requests(actor(airlock, "bob"))
    assert [r.id for r in mine.requests] == ids[0::2][::-1] and mine.total == 3
