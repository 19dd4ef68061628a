"""Applications in the domain: a draft only its applicant sees and changes, members who
sign for themselves, providers who decide each wanted use, the stage its authors read,
and the upgrade of a registry made before any of it. Every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.applications import (
    PLEDGE_SHA256,
    STAGE_MOVES,
    STAGES,
    STATUS_TRANSITIONS,
    can_see,
)
from cleanroom.registry.governance import Governance
from cleanroom.registry.library import NewCard
from sqlalchemy import inspect

from tests.people import in_standing

NEXT_YEAR = date.today() + timedelta(days=365)


def _people(registry: Registry) -> Governance:
    gov = Governance(registry)
    for name, roles in [
        ("alice", ["researcher"]),
        ("bob", ["researcher"]),
        ("carol", ["researcher"]),
        ("olga", ["operator"]),
        ("pat", ["provider"]),
        ("rita", ["provider"]),
    ]:
        gov.add_user(name, roles, actor="seed")
    for name in ("olga", "pat", "rita"):
        in_standing(registry, name)
    return gov


@pytest.fixture
def gov(registry: Registry) -> Governance:
    """alice and bob (researchers), olga (operator), pat for Acme, rita for Bolt; Acme's
    press-line v1 and v2, Bolt's bolts v1, a quarantined gauges v1."""
    g = _people(registry)
    for name, version, provider in [
        ("press-line", "v1", "Acme"),
        ("press-line", "v2", "Acme"),
        ("bolts", "v1", "Bolt"),
    ]:
        g.add_dataset(
            DatasetInfo(name, version, provider, f"/lib/{name}/{version}", None, 1), actor="seed"
        )
    g.register_dataset_version(
        DatasetInfo("gauges", "v1", "Acme", "/lib/gauges/v1", None, 1),
        NewCard("internal", "quarantined"),
        actor="seed",
    )
    g.add_provider_account("Acme", "pat", actor="olga")
    g.add_provider_account("Bolt", "rita", actor="olga")
    return g


FIELDS: dict[str, Any] = {
    "title": "Defect drivers",
    "purpose": "Which press settings drive defects",
    "members": ["alice", "bob"],
    "datasets": ["press-line@v1", "bolts"],
    "ends_on": NEXT_YEAR,
    "assessment_reference": "DPIA-2026-014",
}


def _unchanged(gov: Governance, act: Callable[[], Any], error: type, message: str) -> None:
    """``act`` raises ``error`` matching ``message``, and the registry is as before."""
    before = (gov.journal_entries(), gov.list_applications(), gov.approvals())
    with pytest.raises(error, match=message):
        act()
    assert (gov.journal_entries(), gov.list_applications(), gov.approvals()) == before


def test_an_application_goes_through_every_stage(gov: Governance) -> None:
    draft = gov.save_draft(**{**FIELDS, "datasets": ["press-line"]}, actor="alice")
    assert (draft.status, draft.stage) == ("draft", "draft")
    assert [(u.dataset, u.version) for u in draft.uses] == [("press-line", "v2")]  # the newest
    # Changed while a draft: the same dataset at another version, and another dataset.
    draft = gov.save_draft(**FIELDS, application=draft.id, actor="alice")
    assert [(u.dataset, u.version, u.provider) for u in draft.uses] == [
        ("bolts", "v1", "Bolt"),
        ("press-line", "v1", "Acme"),
    ]
    assert draft.datasets == ("press-line", "bolts")
    app = gov.submit_draft(draft.id, actor="alice")
    assert (app.status, app.stage, app.unsigned) == (
        "pending",
        "waiting for signatures",
        ("alice", "bob"),
    )
    gov.sign_pledge(app.id, actor="bob")
    app = gov.sign_pledge(app.id, actor="alice")
    assert app.pledge_signed_by == ("bob", "alice") and app.stage == "waiting for providers"
    gov.approve_application_use(app.id, "press-line", actor="pat")
    assert gov.get_application(app.id).stage == "waiting for providers"  # Bolt's still waits
    app = gov.approve_application_use(app.id, "bolts", actor="rita")
    assert app.stage == "waiting for the operator"
    assert [(u.status, u.decided_by) for u in app.uses] == [
        ("approved", "rita"),
        ("approved", "pat"),
    ]
    gov.people.record_assessment(
        app.id, reference="DPIA-2026-014", outcome="approved", actor="olga"
    )
    app = gov.approve_application(app.id, project="defects", actor="olga")
    assert app.stage == "approved" and app.project == "defects"
    project = gov.registry.get_project("defects")
    assert project.members == ("alice", "bob")
    assert sorted(
        (a.dataset, a.version, a.approved_by, a.current) for a in gov.approvals("defects")
    ) == [
        ("bolts", "v1", "rita", True),
        ("press-line", "v1", "pat", True),
    ]
    plan = gov.registry.workspace_plan("alice", "defects")
    assert sorted((d.name, d.version) for d in plan.datasets) == [
        ("bolts", "v1"),
        ("press-line", "v1"),
    ]
    entries = [e for e in gov.journal_entries() if e.subject == f"application:{app.id}"]
    assert [(e.actor, e.action) for e in entries] == [
        ("alice", "application.draft"),
        ("alice", "application.draft"),
        ("alice", "application.submit"),
        ("bob", "application.sign"),
        ("alice", "application.sign"),
        ("pat", "application.approve_use"),
        ("rita", "application.approve_use"),
        ("olga", "application.assessment"),
        ("olga", "application.approve"),
    ]
    assert entries[2].detail["assessment"] == "DPIA-2026-014"
    assert entries[2].detail["versions"] == ["bolts@v1", "press-line@v1"]
    assert entries[3].detail["pledge"] == PLEDGE_SHA256


def test_a_draft_is_its_applicants_alone(gov: Governance) -> None:
    draft = gov.save_draft(**FIELDS, actor="alice")
    roles = frozenset({"operator"})
    assert can_see(draft, "alice", frozenset({"researcher"}), [])
    assert can_see(draft, "bob", frozenset({"researcher"}), [])  # a named member
    assert not can_see(draft, "olga", roles, [])
    assert not can_see(draft, "pat", frozenset({"provider"}), ["Acme"])
    _unchanged(
        gov,
        lambda: gov.save_draft(**FIELDS, application=draft.id, actor="bob"),
        Forbidden,
        f"application {draft.id} is not yours",
    )
    _unchanged(gov, lambda: gov.submit_draft(draft.id, actor="bob"), Forbidden, "is not yours")
    _unchanged(gov, lambda: gov.sign_pledge(draft.id, actor="bob"), Conflict, "is a draft")
    _unchanged(
        gov,
        lambda: gov.people.record_assessment(
            draft.id, reference="R", outcome="approved", actor="olga"
        ),
        Conflict,
        "is a draft",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application(draft.id, project="defects", actor="olga"),
        Conflict,
        "is a draft",
    )
    submitted = gov.submit_draft(draft.id, actor="alice")
    assert can_see(submitted, "olga", roles, [])
    assert can_see(submitted, "pat", frozenset({"provider"}), ["Acme"])
    assert not can_see(submitted, "carol", frozenset({"researcher"}), [])
    assert not can_see(submitted, "pat", frozenset({"provider"}), ["Zeta"])


def test_a_double_submission_is_refused_and_changes_nothing(gov: Governance) -> None:
    draft = gov.save_draft(**FIELDS, actor="alice")
    gov.submit_draft(draft.id, actor="alice")
    _unchanged(
        gov,
        lambda: gov.submit_draft(draft.id, actor="alice"),
        Conflict,
        f"application {draft.id} was submitted already",
    )
    _unchanged(
        gov,
        lambda: gov.save_draft(**FIELDS, application=draft.id, actor="alice"),
        Conflict,
        "was submitted already",
    )
    # The same form sent again: one open application of that title per applicant.
    _unchanged(
        gov,
        lambda: gov.submit_application(**FIELDS, actor="alice"),
        Conflict,
        f"your application {draft.id} has the title 'Defect drivers' and is open",
    )
    _unchanged(gov, lambda: gov.save_draft(**FIELDS, actor="alice"), Conflict, "is open already")
    gov.submit_application(**FIELDS, actor="bob")  # another applicant's is theirs


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"members": ["alice", "olga"]}, InvalidInput, "'olga' is not a known researcher"),
        ({"members": [" "]}, InvalidInput, "at least one member"),
        ({"datasets": ["gauges"]}, InvalidInput, "gauges version v1 is quarantined"),
        ({"datasets": ["nothing"]}, NotFound, "there is no dataset nothing"),
        ({"starts_on": NEXT_YEAR + timedelta(days=1)}, InvalidInput, "starts .* after it ends"),
        ({"title": "x" * 201}, InvalidInput, "at most 200 characters"),
    ],
)
def test_a_bad_draft_is_refused_and_changes_nothing(
    gov: Governance, change: dict, error: type, message: str
) -> None:
    _unchanged(gov, lambda: gov.save_draft(**{**FIELDS, **change}, actor="alice"), error, message)


def test_a_draft_is_checked_again_when_submitted(gov: Governance) -> None:
    draft = gov.save_draft(**FIELDS, actor="alice")
    gov.set_roles("bob", ["officer"], actor="olga")
    _unchanged(
        gov,
        lambda: gov.submit_draft(draft.id, actor="alice"),
        InvalidInput,
        "'bob' is not a known researcher",
    )
    assert gov.get_application(draft.id).status == "draft"


def test_only_a_named_member_signs_and_only_once(gov: Governance) -> None:
    app = gov.submit_application(**FIELDS, actor="alice")
    _unchanged(
        gov,
        lambda: gov.sign_pledge(app.id, actor="carol"),
        Forbidden,
        f"'carol' is not named on application {app.id}",
    )
    _unchanged(gov, lambda: gov.sign_pledge(99, actor="alice"), NotFound, "no application 99")
    gov.sign_pledge(app.id, actor="alice")
    _unchanged(
        gov,
        lambda: gov.sign_pledge(app.id, actor="alice"),
        Conflict,
        f"alice signed application {app.id}'s pledge already",
    )


def test_providers_decide_only_their_own_data_after_the_signatures(gov: Governance) -> None:
    app = gov.submit_application(**FIELDS, actor="alice")
    gov.sign_pledge(app.id, actor="alice")
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "press-line", actor="pat"),
        Conflict,
        "waits for its members' signatures first: bob",
    )
    gov.sign_pledge(app.id, actor="bob")
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "press-line", actor="rita"),
        Forbidden,
        "'rita' does not act for 'Acme'",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "press-line", actor="alice"),
        Forbidden,
        "'alice' does not hold the provider role",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "gauges", actor="pat"),
        NotFound,
        f"application {app.id} does not want dataset gauges",
    )
    _unchanged(
        gov,
        lambda: gov.decline_application_use(app.id, "press-line", " ", actor="pat"),
        InvalidInput,
        "say why",
    )
    gov.approve_application_use(app.id, "press-line", actor="pat")
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "press-line", actor="pat"),
        Conflict,
        "the use of press-line v1 .* is approved already",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application(app.id, project="defects", actor="olga"),
        Forbidden,
        r"waits for its providers' decisions on: bolts v1 \(Bolt\)",
    )


def test_a_providers_decline_declines_the_application(gov: Governance) -> None:
    app = gov.submit_application(**FIELDS, actor="alice")
    for member in ("alice", "bob"):
        gov.sign_pledge(app.id, actor=member)
    app = gov.decline_application_use(app.id, "bolts", "not for this purpose", actor="rita")
    assert (app.status, app.stage, app.decided_by) == ("declined", "declined", "rita")
    assert app.reason == "Bolt declined the use of bolts v1: not for this purpose"
    assert next((u.dataset, u.status, u.reason) for u in app.uses) == (
        "bolts",
        "declined",
        "not for this purpose",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application_use(app.id, "press-line", actor="pat"),
        Conflict,
        "is declined already",
    )
    _unchanged(
        gov,
        lambda: gov.approve_application(app.id, project="defects", actor="olga"),
        Conflict,
        "is declined already",
    )
    with pytest.raises(NotFound):
        gov.registry.get_project("defects")


def test_only_its_applicant_withdraws_an_undecided_application(gov: Governance) -> None:
    app = gov.submit_application(**FIELDS, actor="alice")
    gov.sign_pledge(app.id, actor="bob")
    for who in ("bob", "olga", "pat"):  # a member, an operator, a provider: not theirs
        _unchanged(
            gov,
            partial(gov.withdraw_application, app.id, actor=who),
            Forbidden,
            "only its applicant",
        )
    _unchanged(gov, lambda: gov.withdraw_application(999, actor="alice"), NotFound, "999")
    gone = gov.withdraw_application(app.id, actor="alice", reason="  funding ended ")
    assert (gone.status, gone.stage, gone.reason, gone.decided_by) == (
        "withdrawn",
        "withdrawn",
        "funding ended",
        "alice",
    )
    assert gone.pledge_signed_by == ("bob",)  # what happened stays on record
    entry = gov.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.detail["reason"]) == (
        "application.withdraw",
        "alice",
        "funding ended",
    )
    # Final: no second withdrawal, no signature, no provider's or operator's decision.
    for act, message in [
        (lambda: gov.withdraw_application(app.id, actor="alice"), "withdrawn already"),
        (lambda: gov.sign_pledge(app.id, actor="alice"), "withdrawn"),
        (lambda: gov.approve_application_use(app.id, "bolts", actor="rita"), "withdrawn"),
        (lambda: gov.decline_application(app.id, actor="olga", reason="x"), "withdrawn"),
    ]:
        _unchanged(gov, act, Conflict, message)
    assert app.id not in {a.id for a in gov.list_applications("pending")}
    decided = gov.submit_application(**{**FIELDS, "members": ["alice"], "datasets": []},
                                     actor="alice")  # fmt: skip
    gov.decline_application(decided.id, actor="olga", reason="no")
    _unchanged(
        gov, lambda: gov.withdraw_application(decided.id, actor="alice"), Conflict, "declined"
    )


def test_every_stored_status_and_stage_is_accounted_for() -> None:
    final = {"approved", "declined", "withdrawn"}
    assert set(STATUS_TRANSITIONS) == {"draft", "pending"} | final
    reached = {s for targets in STATUS_TRANSITIONS.values() for s in targets} | {"draft"}
    assert reached == set(STATUS_TRANSITIONS)
    assert not any(STATUS_TRANSITIONS[s] for s in final)
    waiting = {"waiting for signatures", "waiting for providers", "waiting for the operator"}
    assert set(STAGES) - waiting == {"draft"} | final


def test_a_registry_from_before_upgrades(any_registry: Registry) -> None:
    """Pending applications made before providers decided uses get waiting uses at the
    newest version (journaled); the new column gets its default; SQLite and PostgreSQL."""
    gov = _people(any_registry)
    gov.add_dataset(DatasetInfo("press-line", "v1", "Acme", "/lib/p1", None, 1), actor="seed")
    gov.add_dataset(DatasetInfo("bolts", "v1", "Bolt", "/lib/b1", None, 1), actor="seed")
    app = gov.submit_application(**{**FIELDS, "datasets": ["press-line", "bolts"]}, actor="alice")
    engine = any_registry.db.engine
    with engine.begin() as conn:  # the shape before: no uses, no reference, bolts gone
        conn.exec_driver_sql("DROP TABLE application_uses")
        conn.exec_driver_sql("ALTER TABLE applications DROP COLUMN assessment_reference")
        conn.exec_driver_sql("DELETE FROM datasets WHERE name = 'bolts'")
    assert "application_uses" not in inspect(engine).get_table_names()
    upgraded = Governance(Registry(any_registry.url))
    try:
        after = upgraded.get_application(app.id)
        assert [(u.dataset, u.version, u.status) for u in after.uses] == [
            ("press-line", "v1", "waiting")
        ]
        assert after.assessment_reference == "" and after.stage == "waiting for signatures"
        entry = upgraded.journal_entries()[-1]
        assert (entry.actor, entry.action) == ("upgrade", "application.uses_built")
        assert entry.detail == {"uses": [f"{app.id}:press-line@v1"], "missing": [f"{app.id}:bolts"]}
        assert upgraded.verify_journal().ok
        count = len(upgraded.journal_entries())
        Registry(any_registry.url)  # once only
        assert len(upgraded.journal_entries()) == count
    finally:
        upgraded.registry.db.engine.dispose()


def test_the_domain_moves_exactly_as_the_stage_table_says(gov: Governance) -> None:
    """Every act, in every stage it may happen in: the move it makes and the journal
    action it writes are a row of STAGE_MOVES, and every row is made."""
    seen: set[tuple[str, str, str, str]] = set()
    roles = {"alice": "applicant", "olga": "operator", "pat": "provider", "rita": "provider"}

    def act(who: str, app_id: int | None, do: Callable[[], Any], role: str = "") -> int:
        before = gov.get_application(app_id).stage if app_id else "[*]"
        result = do()
        after = gov.get_application(result.id).stage if result else ""
        seen.add((before, after, role or roles[who], gov.journal_entries()[-1].action))
        return int(result.id)

    def assess(app_id: int) -> Any:
        gov.people.record_assessment(app_id, reference="R-1", outcome="approved", actor="olga")
        return gov.get_application(app_id)

    a = act("alice", None, lambda: gov.save_draft(**FIELDS, actor="alice"))
    act("alice", a, lambda: gov.save_draft(**FIELDS, application=a, actor="alice"))
    act("alice", a, lambda: gov.submit_draft(a, actor="alice"))
    act("alice", a, lambda: gov.sign_pledge(a, actor="alice"), "member")
    act("olga", a, lambda: assess(a))
    act("bob", a, lambda: gov.sign_pledge(a, actor="bob"), "member")
    act("olga", a, lambda: assess(a))
    act("pat", a, lambda: gov.approve_application_use(a, "press-line", actor="pat"))
    act("rita", a, lambda: gov.approve_application_use(a, "bolts", actor="rita"))
    act("olga", a, lambda: assess(a))
    act("olga", a, lambda: gov.approve_application(a, project="defects", actor="olga"))

    def submit(title: str, datasets: list[str], members: tuple[str, ...] = ("alice",)) -> int:
        fields = {**FIELDS, "title": title, "datasets": datasets, "members": list(members)}
        return act("alice", None, lambda: gov.submit_application(**fields, actor="alice"))

    def decline(app_id: int) -> None:
        act("olga", app_id, lambda: gov.decline_application(app_id, actor="olga", reason="no"))

    no_data = submit("No data", [])
    act("alice", no_data, lambda: gov.sign_pledge(no_data, actor="alice"), "member")
    decline(no_data)
    decline(submit("Unsigned", ["bolts"], ("alice", "bob")))
    by_operator, by_provider = submit("Operator says no", ["bolts"]), submit("Rita: no", ["bolts"])
    act("alice", by_operator, lambda: gov.sign_pledge(by_operator, actor="alice"), "member")
    act("alice", by_provider, lambda: gov.sign_pledge(by_provider, actor="alice"), "member")
    decline(by_operator)
    act(
        "rita",
        by_provider,
        lambda: gov.decline_application_use(by_provider, "bolts", "no", actor="rita"),
    )

    def withdraw(app_id: int) -> None:
        act("alice", app_id, lambda: gov.withdraw_application(app_id, actor="alice"))

    withdraw(act("alice", None, lambda: gov.save_draft(**FIELDS, actor="alice")))
    withdraw(submit("Unsigned, withdrawn", ["bolts"], ("alice", "bob")))
    for title, datasets in (("Providers wait", ["bolts"]), ("Operator waits", [])):
        waits = submit(title, datasets)
        act("alice", waits, partial(gov.sign_pledge, waits, actor="alice"), "member")
        withdraw(waits)
    assert seen == set(STAGE_MOVES)


def test_the_committed_stage_diagram_is_current() -> None:
    from cleanroom.registry.application_diagram import DOC, render

    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/application-states.md is stale: run python -m cleanroom.registry.application_diagram"
    )
    for src, dst, who, action in STAGE_MOVES:
        assert f"| {who} | `{action}` |" in render() and dst in STAGES
        assert src == "[*]" or src in STAGES
