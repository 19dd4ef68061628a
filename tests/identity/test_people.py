"""People's standing and sign-in decisions, figure by figure: TOTP codes and their replay
guard, recovery codes, back-off and lock-out, the same answer for unknown users, the
identity policy's validation, verification, training, account state, who may decide,
and data processing assessments before approval."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cleanroom.errors import Conflict, Forbidden, InvalidInput
from cleanroom.hub.auth import CleanroomAuthenticator, hub_roles
from cleanroom.identity import throttle, totp
from cleanroom.identity.policy import IdentityPolicy, LoginPolicy, load_policy, parse_policy
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry import people as people_module
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People

from tests.people import in_standing

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
POLICY = IdentityPolicy(
    login=LoginPolicy(
        backoff_base_seconds=1,
        backoff_max_seconds=8,
        max_failures=5,
        lock_minutes=15,
        address_max_failures=3,
        window_minutes=60,
    ),
    training={"researcher": ("safe-researcher",), "operator": ("safe-researcher",)},
)


@pytest.fixture
def people(registry: Registry) -> People:
    Governance(registry).add_user("alice", ["researcher"], "alice-password", actor="seed")
    Governance(registry).add_user("olga", ["operator"], "olga-password", actor="seed")
    return People(registry, POLICY)


def _enrol(people: People, name: str, at: datetime = T0) -> str:
    secret = totp.new_secret()
    people.enrol(name, secret, totp.current_code(secret, at.timestamp()), now=at)
    return secret


# -- TOTP and recovery codes ------------------------------------------------------------
def test_totp_matches_its_window_and_never_a_spent_step() -> None:
    secret = totp.new_secret()
    now = T0.timestamp()
    step = int(now // totp.PERIOD)
    assert totp.matching_step(secret, totp.current_code(secret, now), at=now) == step
    # One step of clock drift either side is accepted; two are not.
    later = totp.current_code(secret, now + totp.PERIOD)
    assert totp.matching_step(secret, later, at=now) == step + 1
    assert (
        totp.matching_step(secret, totp.current_code(secret, now - 2 * totp.PERIOD), at=now) is None
    )
    # A spent step never matches again.
    assert (
        totp.matching_step(secret, totp.current_code(secret, now), after_step=step, at=now) is None
    )
    assert totp.matching_step(secret, "12345", at=now) is None
    assert totp.matching_step(secret, "abcdef", at=now) is None


def test_recovery_codes_are_random_hashed_and_forgiving_in_form() -> None:
    codes = totp.new_recovery_codes(10)
    assert len(set(codes)) == 10 and all(len(c) == 23 for c in codes)
    code = codes[0]
    spaced = code.upper().replace("-", " ")
    assert totp.hash_recovery_code(spaced) == totp.hash_recovery_code(code)
    assert totp.hash_recovery_code(code) != totp.hash_recovery_code(codes[1])
    assert code not in totp.hash_recovery_code(code)


def test_log_in_needs_the_code_after_enrolment_and_spends_it(people: People) -> None:
    first = people.attempt("alice", "alice-password", "", "10.0.0.1", now=T0)
    assert first.ok and first.needs_enrolment
    secret = _enrol(people, "alice")
    assert people.attempt("alice", "alice-password", "", "10.0.0.1", now=T0).message == (
        "Enter the code from your authenticator app."
    )
    # The enrolment's code is spent; the next step's code signs in, once.
    next_code = totp.current_code(secret, T0.timestamp() + totp.PERIOD)
    assert people.attempt("alice", "alice-password", next_code, "10.0.0.1", now=T0).ok
    again = people.attempt(
        "alice", "alice-password", next_code, "10.0.0.1", now=T0 + timedelta(seconds=5)
    )
    assert not again.ok and again.message == throttle.INVALID


def test_recovery_codes_work_once_and_an_operator_reset_is_journaled(people: People) -> None:
    people.attempt("alice", "alice-password", "", "10.0.0.1", now=T0)
    secret = totp.new_secret()
    codes = people.enrol("alice", secret, totp.current_code(secret, T0.timestamp()), now=T0)
    assert len(codes) == POLICY.recovery_codes == people.recovery_codes_left("alice")
    outcome = people.attempt("alice", "alice-password", codes[2], "10.0.0.1", now=T0)
    assert outcome.ok and outcome.used_recovery_code
    assert people.recovery_codes_left("alice") == 9
    later = T0 + timedelta(seconds=30)
    assert not people.attempt("alice", "alice-password", codes[2], "10.0.0.1", now=later).ok
    with pytest.raises(InvalidInput, match="needs a reason"):
        people.reset_mfa("alice", actor="olga", reason=" ")
    people.reset_mfa("alice", actor="olga", reason="lost phone")
    assert not people.mfa_enrolled("alice") and people.recovery_codes_left("alice") == 0
    with pytest.raises(Conflict, match="no second factor"):
        people.reset_mfa("alice", actor="olga", reason="again")
    entries = Governance(people.registry).journal_entries("user:alice")
    assert [(e.actor, e.action) for e in entries][-1] == ("olga", "mfa.reset")


def test_enrolment_needs_a_matching_code(people: People) -> None:
    secret = totp.new_secret()
    wrong = "000000" if totp.current_code(secret, T0.timestamp()) != "000000" else "111111"
    with pytest.raises(InvalidInput, match="does not match"):
        people.enrol("alice", secret, wrong, now=T0)
    assert not people.mfa_enrolled("alice")


# -- throttling -------------------------------------------------------------------------
def test_back_off_doubles_to_its_cap() -> None:
    policy = POLICY.login
    assert [throttle.backoff_seconds(n, policy) for n in range(6)] == [0, 1, 2, 4, 8, 8]


def test_failures_back_off_then_lock_and_the_right_password_is_refused(people: People) -> None:
    secret = _enrol(people, "alice")
    at = T0
    for n in range(1, 5):
        assert not people.attempt("alice", "wrong", "", f"10.0.1.{n}", now=at).ok
        wait = people.throttle_verdict("alice", "10.9.9.9", now=at + timedelta(seconds=0.5))
        assert not wait.allowed and wait.wait_seconds == int(2 ** (n - 1) - 0.5 + 0.999)
        assert "Try again in" in wait.message
        # During the back-off, the right password and code are refused without a check.
        code = totp.current_code(secret, (at + timedelta(seconds=0.5)).timestamp() + 30)
        early = people.attempt(
            "alice", "alice-password", code, "10.9.9.9", now=at + timedelta(seconds=0.5)
        )
        assert not early.ok and "Try again in" in early.message
        at += timedelta(seconds=2 ** (n - 1))
    assert not people.attempt("alice", "wrong", "", "10.0.1.5", now=at).ok
    assert people.is_locked("alice", now=at)
    code = totp.current_code(secret, at.timestamp() + 30)
    locked = people.attempt(
        "alice", "alice-password", code, "10.9.9.9", now=at + timedelta(minutes=1)
    )
    assert not locked.ok and locked.message == throttle.LOCKED
    # The lock ends by time...
    after = at + timedelta(minutes=15, seconds=1)
    fresh = totp.current_code(secret, after.timestamp())
    assert people.attempt("alice", "alice-password", fresh, "10.9.9.9", now=after).ok
    actions = [e.action for e in Governance(people.registry).journal_entries("user:alice")]
    assert actions.count("login.locked") == 1


def test_an_operator_unlocks_and_it_is_journaled(people: People) -> None:
    in_standing(people.registry, "olga")
    with pytest.raises(Conflict, match="not locked"):
        people.unlock("alice", actor="olga")
    at = T0
    for _ in range(5):
        people.attempt("alice", "wrong", "", "10.0.2.1", now=at)
        at += timedelta(seconds=10)
    assert people.is_locked("alice", now=at)
    with pytest.raises(Forbidden, match="does not hold the operator role"):
        people.unlock("alice", actor="alice")
    people.unlock("alice", actor="olga")
    assert not people.is_locked("alice", now=at)
    entry = Governance(people.registry).journal_entries("user:alice")[-1]
    assert (entry.actor, entry.action) == ("olga", "login.unlock")


def test_unknown_users_get_the_same_answer_and_the_same_work(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str | None] = []
    real = people_module.verify_password

    def counting(password: str, stored: str | None) -> bool:
        checked.append(stored)
        return real(password, stored)

    monkeypatch.setattr(people_module, "verify_password", counting)
    unknown = people.attempt("nobody", "whatever", "", "10.0.3.1", now=T0)
    wrong = people.attempt("alice", "whatever", "", "10.0.3.2", now=T0)
    assert unknown == wrong
    assert unknown.message == throttle.INVALID
    # An unknown name is checked against a real scrypt hash too (same cost, same time).
    assert len(checked) == 2 and all(h and h.startswith("scrypt$") for h in checked)
    # And it is throttled the same way.
    assert not people.throttle_verdict("nobody", "10.0.3.9", now=T0).allowed


def test_one_address_failing_over_many_accounts_backs_off(people: People) -> None:
    for n in range(3):
        people.attempt(f"guess{n}", "x", "", "10.0.4.1", now=T0)
    verdict = people.throttle_verdict("alice", "10.0.4.1", now=T0)
    assert not verdict.allowed
    assert people.throttle_verdict("alice", "10.0.4.2", now=T0).allowed


# -- the policy -------------------------------------------------------------------------
def test_the_shipped_policy_loads() -> None:
    policy = load_policy(Path(__file__).resolve().parents[2] / "policies" / "identity.yaml")
    assert policy.login.max_failures == 5
    assert policy.courses_for({"officer"}) == ["safe-researcher", "output-checking"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"login": {"max_failures": 0}}, "max_failures must be a number of at least 1"),
        ({"login": {"lock_minutes": "soon"}}, "lock_minutes must be a number"),
        ({"login": {"tries": 3}}, "unknown login key(s) tries"),
        ({"logins": {}}, "unknown section(s) logins"),
        ({"training": {"wizard": ["x"]}}, "unknown role(s) wizard"),
        ({"training": {"officer": "output-checking"}}, "training.officer must be a list"),
        ({"mfa": {"issuer": "a:b"}}, "mfa.issuer must be a name"),
        ([1, 2], "must hold a mapping"),
    ],
)
def test_a_bad_policy_is_refused_with_its_fault(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_policy(raw, "identity.yaml")
    assert message in str(refused.value)


# -- standing ---------------------------------------------------------------------------
def test_standing_names_every_problem_and_blocks_starts(people: People) -> None:
    with pytest.raises(Forbidden) as refused:
        people.check_may_start("alice")
    assert "not been verified" in str(refused.value)
    assert "has not passed the training 'safe-researcher'" in str(refused.value)
    people.record_verification("alice", "document-check", actor="olga", reference="passport")
    with pytest.raises(InvalidInput, match="unknown verification method"):
        people.record_verification("alice", "telepathy", actor="olga")
    people.record_training(
        "alice",
        "safe-researcher",
        passed_on=date.today() - timedelta(days=400),
        expires_on=date.today() - timedelta(days=1),
        actor="olga",
    )
    with pytest.raises(Forbidden, match="training 'safe-researcher' expired on"):
        people.check_may_start("alice")
    people.record_training(
        "alice", "safe-researcher", passed_on=date.today(), expires_on=None, actor="olga"
    )
    people.check_may_start("alice")
    people.set_expiry("alice", date.today() - timedelta(days=1), actor="olga")
    with pytest.raises(Forbidden, match="account expired on"):
        people.check_may_start("alice")
    people.set_expiry("alice", None, actor="olga")
    people.set_disabled("alice", True, actor="olga", reason="left")
    with pytest.raises(Forbidden, match="disabled: left"):
        people.check_may_start("alice")
    with pytest.raises(Conflict, match="disabled already"):
        people.set_disabled("alice", True, actor="olga", reason="left")
    actions = [e.action for e in Governance(people.registry).journal_entries("user:alice")]
    assert actions == [
        "user.add",
        "person.verify",
        "person.training",
        "person.training",
        "account.expiry",
        "account.expiry",
        "account.disable",
    ]


def test_nobody_verifies_themselves_and_after_the_bootstrap_only_operators_record(
    people: People,
) -> None:
    with pytest.raises(Forbidden, match="own identity"):
        people.record_verification("alice", "in-person", actor="alice")
    in_standing(people.registry, "olga")  # the bootstrap: the first operator in standing
    with pytest.raises(Forbidden, match="'bob' is not a registered person"):
        people.record_verification("alice", "in-person", actor="bob")
    with pytest.raises(Forbidden, match="does not hold the operator role"):
        people.record_training(
            "olga", "safe-researcher", passed_on=date.today(), expires_on=None, actor="alice"
        )


def test_privileged_roles_need_a_second_factor_to_act_and_to_hold_hub_roles(
    people: People,
) -> None:
    in_standing(people.registry, "olga", enrol=False)
    with pytest.raises(Forbidden, match="olga has no second factor enrolled"):
        people.check_may_act("olga", "operator")
    assert hub_roles({"operator"}, mfa=False) == ["user"]
    assert hub_roles({"officer", "researcher"}, mfa=True) == ["cleanroom-officer", "user"][::-1]
    _enrol(people, "olga", datetime.now(UTC))
    people.check_may_act("olga", "operator")


async def test_managed_roles_leave_out_officers_without_a_second_factor(
    registry: Registry,
) -> None:
    Governance(registry).add_user("olivia", ["officer"], "password-1", actor="seed")
    Governance(registry).add_user("oscar", ["officer"], "password-2", actor="seed")
    people = People(registry)
    secret = totp.new_secret()
    people.enrol("oscar", secret, totp.current_code(secret))
    auth = CleanroomAuthenticator(registry_url=registry.url)
    roles = {r["name"]: r["users"] for r in await auth.load_managed_roles()}
    assert roles["cleanroom-officer"] == ["oscar"]
    assert sorted(roles["user"]) == ["olivia", "oscar"]


# -- decisions --------------------------------------------------------------------------
@pytest.fixture
def gov(people: People) -> Governance:
    reg = people.registry
    Governance(reg).add_user("bob", ["researcher"], actor="seed")
    Governance(reg).add_user("owen", ["operator", "researcher"], actor="seed")
    Governance(reg).add_user("pat", ["provider"], actor="seed")
    for name in ("olga", "owen", "pat"):
        in_standing(reg, name)
    Governance(reg).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/press-line/v1", None, 3), actor="seed"
    )
    return Governance(reg, people)


def _application(gov: Governance, applicant: str, members: list[str]) -> int:
    """An application wanting no data (so no provider decides), signed by its members."""
    app_id = gov.submit_application(
        title="Defects",
        purpose="Which settings drive defects",
        members=members,
        ends_on=date.today() + timedelta(days=90),
        actor=applicant,
    ).id
    for member in members:
        gov.sign_pledge(app_id, actor=member)
    return app_id


def test_approval_needs_an_approving_assessment(gov: Governance) -> None:
    app_id = _application(gov, "alice", ["alice", "bob"])
    with pytest.raises(Forbidden, match="no data processing assessment"):
        gov.approve_application(app_id, project="defects", actor="olga")
    gov.people.record_assessment(app_id, reference="DPIA-9", outcome="rejected", actor="olga")
    with pytest.raises(Forbidden, match="outcome 'rejected', which does not allow approval"):
        gov.approve_application(app_id, project="defects", actor="olga")
    with pytest.raises(InvalidInput, match="needs a reference"):
        gov.people.record_assessment(app_id, reference=" ", outcome="approved", actor="olga")
    with pytest.raises(Forbidden, match="does not hold the operator role"):
        gov.people.record_assessment(app_id, reference="DPIA-9", outcome="approved", actor="pat")
    gov.people.record_assessment(app_id, reference="DPIA-9", outcome="approved", actor="olga")
    assert gov.approve_application(app_id, project="defects", actor="olga").status == "approved"
    assert gov.people.assessment(app_id) == ("DPIA-9", "approved")


def test_the_applicant_a_member_or_the_wrong_role_cannot_decide(gov: Governance) -> None:
    own = _application(gov, "owen", ["bob"])
    gov.people.record_assessment(own, reference="DPIA-1", outcome="approved", actor="olga")
    with pytest.raises(Forbidden, match="nobody decides on their own application"):
        gov.approve_application(own, project="own-work", actor="owen")
    with pytest.raises(Forbidden, match="nobody decides on their own application"):
        gov.decline_application(own, actor="owen", reason="no")
    member = _application(gov, "alice", ["owen", "alice"])
    gov.people.record_assessment(member, reference="DPIA-2", outcome="approved", actor="olga")
    with pytest.raises(Forbidden, match="'owen' is a member of application"):
        gov.approve_application(member, project="member-work", actor="owen")
    with pytest.raises(Forbidden, match="'pat' does not hold the operator role"):
        gov.approve_application(member, project="member-work", actor="pat")
    with pytest.raises(Forbidden, match="'alice' does not hold the operator role"):
        gov.approve_application(member, project="member-work", actor="alice")
    assert [a.status for a in gov.list_applications()] == ["pending", "pending"]


def test_a_provider_without_standing_or_for_another_provider_cannot_approve(
    gov: Governance,
) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="seed")
    Governance(reg).attach_dataset("defects", "press-line", actor="seed")
    Governance(reg).add_user("quinn", ["provider"], actor="seed")
    gov.add_provider_account("Acme", "quinn", actor="olga")
    with pytest.raises(Forbidden, match="quinn has no second factor enrolled"):
        gov.approve_dataset_use("defects", "press-line", actor="quinn")
    gov.add_provider_account("Acme", "pat", actor="olga")
    Governance(reg).add_dataset(
        DatasetInfo("furnace", "v1", "Other", "/lib/furnace/v1", None, 3), actor="seed"
    )
    Governance(reg).attach_dataset("defects", "furnace", actor="seed")
    with pytest.raises(Forbidden, match="'pat' does not act for 'Other'"):
        gov.approve_dataset_use("defects", "furnace", actor="pat")
    assert gov.approve_dataset_use("defects", "press-line", actor="pat").approved_by == "pat"


def test_an_officer_out_of_standing_may_not_review(registry: Registry) -> None:
    from cleanroom.airlock import permissions as permissions
    from cleanroom.airlock.domain import OFFICER_SCOPE, Actor
    from cleanroom.airlock.exceptions import PermissionDenied
    from cleanroom.airlock.membership import RegistryMembership

    Governance(registry).add_user("olivia", ["officer"], "password-1", actor="seed")
    membership = RegistryMembership(registry.url)
    in_standing(registry, "olivia")
    assert membership.standing_problem("olivia", "officer") == ""
    People(registry).record_training(
        "olivia",
        "output-checking",
        passed_on=date.today() - timedelta(days=800),
        expires_on=date.today() - timedelta(days=70),
        actor="test-verifier",
    )
    # The policy's officer courses: the newest pass counts, an older expired one does not.
    assert membership.standing_problem("olivia", "officer") == ""
    Governance(registry).add_user("oona", ["officer"], "password-2", actor="seed")
    problem = membership.standing_problem("oona", "officer")
    assert "not been verified" in problem and "no second factor" in problem
    actor = Actor("oona", scopes=frozenset({OFFICER_SCOPE}), standing_problem=problem)
    with pytest.raises(PermissionDenied, match=r"you may not review now: .*not been verified"):
        permissions.check_in_standing(actor)


# Acts a person does for themselves, or that are not decisions (no role to check).
SELF_ACTS = {
    "submit_application",
    "request_ingress",
    "record",
    "enrol",
    "open_cli_session",
    "close_cli_session",
    "record_external_factor",
    "_fail",
    "_use_recovery_code",
}


@pytest.mark.parametrize("cls", [Governance, People])
def test_every_journaled_decision_checks_who_decides(cls: type) -> None:
    """A structural guard: a new decision method that journals without checking its
    actor's role and standing fails here."""
    import inspect

    unchecked = []
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        source = inspect.getsource(member)
        if "journal.append" not in source or name in SELF_ACTS:
            continue
        if not any(
            check in source for check in ("self._decider(", "check_may_act(", "lifecycle_actor(")
        ):
            unchecked.append(name)
    assert unchecked == []
