"""The registry has one writer: every change is journaled in its own transaction.

Structural: every public method of ``Governance`` that is not a read takes a keyword-only
``actor``; ``Registry`` offers reads only. Behavioural, for EVERY write (the recipes below
must cover them all): it adds exactly one journal entry of its kind, and when the journal
write fails, nothing of the change is left. The database itself refuses a change without
a journal entry, and any write through a read transaction.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cleanroom.identity import totp
from cleanroom.registry import DatasetInfo, Registry, journal
from cleanroom.registry.database import JournalMissing, OperationalOnly, ReadOnly
from cleanroom.registry.events import WorkspaceStopped, all_events
from cleanroom.registry.governance import READS, Governance
from cleanroom.registry.library import NewCard
from cleanroom.registry.models import Base, LoginFailures, SecondFactor, User, is_operational
from cleanroom.registry.people import READS as PEOPLE_READS
from cleanroom.registry.people import People
from sqlalchemy import select, update

from tests.people import Authenticator, in_standing, personal_token

NEXT_YEAR = date.today() + timedelta(days=365)


def _writes(cls: type = Governance, reads: tuple[str, ...] = READS) -> list[str]:
    return [
        name
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and not name.startswith(reads)
    ]


def test_every_write_names_its_actor() -> None:
    writes = _writes()
    assert len(writes) > 20  # the writer has its writes at all
    for name in writes:
        params = inspect.signature(getattr(Governance, name)).parameters
        assert "actor" in params, f"Governance.{name} writes without an actor"
        assert params["actor"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_registry_offers_reads_only() -> None:
    public = [n for n, _ in inspect.getmembers(Registry, inspect.isfunction) if n[0] != "_"]
    reads = ("get_", "list_", "is_", "projects_of", "affiliations_of", "check_", "dataset_")
    others = {"session", "workspace_plan", "unapproved_datasets", "retired_images"}
    assert [n for n in public if not n.startswith(reads) and n not in others] == []


def test_a_read_transaction_cannot_write(registry: Registry) -> None:
    with pytest.raises(ReadOnly, match="through Governance"), registry.session() as s:
        s.add(User(name="mallory", roles="operator"))
    assert registry.list_users() == []


def test_a_statement_level_write_is_held_to_the_same_rules(registry: Registry) -> None:
    Governance(registry).add_user("alice", actor="op")
    with pytest.raises(ReadOnly), registry.session() as s:
        s.execute(update(User).values(roles="operator"))
    with pytest.raises(JournalMissing), registry.db.write() as tx:
        tx.session.execute(update(User).values(roles="operator"))
    assert registry.get_user("alice").roles == frozenset({"researcher"})


def test_a_change_without_its_journal_entry_is_refused(registry: Registry) -> None:
    with pytest.raises(JournalMissing), registry.db.write() as tx:
        tx.session.add(User(name="mallory", roles="operator"))
    assert registry.list_users() == []
    assert Governance(registry).journal_entries() == []


def test_operational_state_needs_no_entry_and_is_all_an_operational_write_may_change(
    registry: Registry,
) -> None:
    with registry.db.operational() as s:
        s.add(LoginFailures(key="user:nobody", count=1))
    with registry.session() as s:
        assert s.get(LoginFailures, "user:nobody") is not None
    with pytest.raises(OperationalOnly), registry.db.operational() as s:
        s.add(SecondFactor(user_name="mallory", secret="X"))
    with pytest.raises(OperationalOnly), registry.db.operational() as s:
        s.execute(update(User).values(roles="operator"))
    with pytest.raises(ReadOnly), registry.session() as s:
        s.add(LoginFailures(key="user:someone", count=1))
    with registry.session() as s:
        assert s.get(SecondFactor, "mallory") is None
        assert s.get(LoginFailures, "user:someone") is None
    assert Governance(registry).journal_entries() == []


def test_every_event_kind_is_distinct_and_documented() -> None:
    kinds = [cls.kind for cls in all_events()]
    assert len(kinds) == len(set(kinds))
    assert all(cls.__doc__ and len(cls.__doc__) > 20 for cls in all_events())


# -- every write, for real ------------------------------------------------------------
def _seed(gov: Governance, tmp_path: Path) -> None:
    """Every precondition the recipes need, written through the writers."""
    for name, roles in [
        ("alice", ["researcher"]),
        ("bob", ["researcher"]),
        ("olga", ["operator"]),
        ("pat", ["provider"]),
        ("dora", ["provider"]),
    ]:
        gov.add_user(name, roles, actor="seed")
    # Deciders in standing (verified, trained, a second factor), through the domain.
    TOKENS["olga"] = personal_token(gov.registry, "olga", Authenticator())
    in_standing(gov.registry, "pat")
    for version in ("v1", "v2"):
        gov.add_dataset(
            DatasetInfo("press-line", version, "Acme", f"/lib/press-line/{version}", None, 3),
            actor="seed",
        )
    gov.add_provider_account("Acme", "pat", actor="olga")
    gov.register_dataset_version(
        DatasetInfo("gauges-q", "v1", "Acme", "/lib/gauges-q/v1", None, 1),
        NewCard("internal", "quarantined", quality={"summary": {"rows": 3, "errors": 2}}),
        actor="seed",
    )
    gov.create_project("defects", "Defects", actor="seed")
    gov.add_member("defects", "alice", actor="seed")
    gov.add_member("defects", "bob", actor="seed")
    gov.attach_dataset("defects", "press-line", "v1", actor="seed")
    gov.approve_dataset_use("defects", "press-line", "v1", actor="pat")
    for title in ("First", "Second"):
        gov.submit_application(
            title=title,
            purpose="find the drivers",
            ends_on=NEXT_YEAR,
            actor="alice",
            members=["alice"],
        )
        gov.sign_pledge(len(gov.list_applications()), actor="alice")
    people = People(gov.registry)
    people.record_assessment(1, reference="DPIA-1", outcome="approved", actor="olga")
    # 3: a draft to submit; 4: waiting for bob's signature; 5: waiting for its provider.
    gov.save_draft(title="Draft", purpose="p", ends_on=NEXT_YEAR, actor="alice", members=["alice"])
    gov.submit_application(
        title="Unsigned", purpose="p", ends_on=NEXT_YEAR, actor="alice", members=["bob"]
    )
    gov.submit_application(
        title="Wants data", purpose="p", ends_on=NEXT_YEAR, actor="alice", members=["alice"],
        datasets=["press-line@v1"],
    )  # fmt: skip
    gov.sign_pledge(5, actor="alice")
    people.attempt("alice", "wrong password", "", "10.0.0.9")  # a failure to unlock
    source = tmp_path / "lookup.csv"
    source.write_text("code,name\n1,press\n")
    gov.request_ingress("defects", source, actor="alice", reason="a lookup table")


RECIPES: dict[str, tuple[str, Callable[[Governance, Path], Any]]] = {
    "add_user": ("user.add", lambda g, _: g.add_user("carol", actor="olga")),
    "delete_dataset_version": (
        "dataset.deleted",
        lambda g, _: g.delete_dataset_version(
            "press-line",
            "v2",
            actor="retention",
            requested_by="pat",
            detached_from=(),
            bytes_freed=0,
        ),
    ),
    "set_password": (
        "user.password",
        lambda g, _: g.set_password("alice", "correct horse", actor="olga"),
    ),
    "set_roles": ("user.roles", lambda g, _: g.set_roles("bob", ["officer"], actor="olga")),
    "create_project": ("project.create", lambda g, _: g.create_project("new", "N", actor="olga")),
    "set_project_status": (
        "project.status",
        lambda g, _: g.set_project_status("defects", "suspended", actor="olga"),
    ),
    "add_member": ("member.add", lambda g, _: g.add_member("defects", "olga", actor="olga")),
    "remove_member": (
        "member.remove",
        lambda g, _: g.remove_member("defects", "bob", actor="olga"),
    ),
    "add_dataset": (
        "dataset.register",
        lambda g, _: g.add_dataset(
            DatasetInfo("gauges", "v1", "Acme", "/lib/g", None, 1), actor="o"
        ),
    ),
    "register_dataset_version": (
        "dataset.register",
        lambda g, _: g.register_dataset_version(
            DatasetInfo("gauges", "v2", "Acme", "/lib/g2", None, 1),
            NewCard("confidential", "verified"),
            actor="o",
        ),
    ),
    "classify_dataset": (
        "dataset.classify",
        lambda g, _: g.classify_dataset("press-line", "v1", "trade-secret", actor="pat"),
    ),
    "accept_dataset_version": (
        "dataset.accept",
        lambda g, _: g.accept_dataset_version("gauges-q", "v1", "known sensor gap", actor="pat"),
    ),
    "decline_dataset_use": (
        "dataset.decline_use",
        lambda g, _: g.decline_dataset_use(
            "defects", "press-line", "v1", "not for this purpose", actor="pat"
        ),
    ),
    "set_index_location": (
        "dataset.reindex",
        lambda g, _: g.set_index_location("press-line", "v1", "/idx", actor="olga"),
    ),
    "attach_dataset": (
        "dataset.attach",
        lambda g, _: g.attach_dataset("defects", "press-line", "v2", actor="olga"),
    ),
    "detach_dataset": (
        "dataset.detach",
        lambda g, _: g.detach_dataset("defects", "press-line", actor="olga"),
    ),
    "submit_application": (
        "application.submit",
        lambda g, _: g.submit_application(
            title="Third", purpose="p", ends_on=NEXT_YEAR, actor="bob", members=["bob"]
        ),
    ),
    "save_draft": (
        "application.draft",
        lambda g, _: g.save_draft(
            title="Another", purpose="p", ends_on=NEXT_YEAR, actor="bob", members=["bob"]
        ),
    ),
    "submit_draft": ("application.submit", lambda g, _: g.submit_draft(3, actor="alice")),
    "sign_pledge": ("application.sign", lambda g, _: g.sign_pledge(4, actor="bob")),
    "approve_application_use": (
        "application.approve_use",
        lambda g, _: g.approve_application_use(5, "press-line", actor="pat"),
    ),
    "decline_application_use": (
        "application.decline_use",
        lambda g, _: g.decline_application_use(5, "press-line", "not this purpose", actor="pat"),
    ),
    "approve_application": (
        "application.approve",
        lambda g, _: g.approve_application(1, project="first", actor="olga"),
    ),
    "decline_application": (
        "application.decline",
        lambda g, _: g.decline_application(2, actor="olga", reason="out of scope"),
    ),
    "set_project_end": (
        "project.end_date",
        lambda g, _: g.set_project_end("defects", NEXT_YEAR, actor="olga"),
    ),
    "set_access_mode": (
        "project.access_mode",
        lambda g, _: g.set_access_mode("defects", "restricted", actor="olga"),
    ),
    "set_member_end": (
        "member.end_date",
        lambda g, _: g.set_member_end("defects", "alice", NEXT_YEAR, actor="olga"),
    ),
    "name_provider_delegate": (
        "provider.delegate",
        lambda g, _: g.name_provider_delegate("Acme", "dora", actor="pat"),
    ),
    "remove_provider_account": (
        "provider.account_remove",
        lambda g, _: g.remove_provider_account("Acme", "pat", actor="olga"),
    ),
    "withdraw_application": (
        "application.withdraw",
        lambda g, _: g.withdraw_application(4, actor="alice", reason="no longer needed"),
    ),
    "add_provider_account": (
        "provider.account",
        lambda g, _: g.add_provider_account("Bolt", "pat", actor="olga"),
    ),
    "approve_dataset_use": (
        "dataset.approve_use",
        lambda g, _: g.approve_dataset_use("defects", "press-line", "v2", actor="pat"),
    ),
    "revoke_dataset_use": (
        "dataset.revoke_use",
        lambda g, _: g.revoke_dataset_use("defects", "press-line", actor="pat"),
    ),
    "set_image_state": (
        "image.retired",
        lambda g, _: g.set_image_state("pytorch", "retired", actor="olga", reason="CVE"),
    ),
    "allow_project_image": (
        "project.allow_image",
        lambda g, _: g.allow_project_image("defects", "pytorch", actor="olga"),
    ),
    "record_run": (
        "workspace.start",
        lambda g, _: g.record_run(
            actor="alice",
            user="alice",
            project="defects",
            image="cleanroom/notebook:latest",
            image_digest="sha256:abc",
            datasets=("press-line@v1",),
            container_id="c1",
        ),
    ),
    "request_ingress": (
        "ingress.request",
        lambda g, tmp: g.request_ingress(
            "defects", tmp / "lookup.csv", actor="bob", reason="the same table"
        ),
    ),
    "decide_ingress": (
        "ingress.approve",
        lambda g, _: g.decide_ingress(1, actor="olga", approve=True),
    ),
    "record": (
        "workspace.stop",
        lambda g, _: g.record(
            WorkspaceStopped(actor="enforcer", project="defects", user="alice", reason="ended"),
            actor="enforcer",
        ),
    ),
}


def test_the_recipes_cover_every_write() -> None:
    assert sorted(RECIPES) == sorted(_writes())
    assert sorted(PEOPLE_RECIPES) == sorted(_writes(People, PEOPLE_READS))


TOKENS: dict[str, str] = {}
SECRET = totp.new_secret()


def _lock(p: People) -> None:
    """Failed sign-ins until the account locks (each past the back-off before it)."""
    start = datetime.now(UTC)
    for i in range(p.policy.login.max_failures):
        p.attempt("alice", "wrong password", "", "10.0.0.7", now=start + timedelta(minutes=2 * i))


PEOPLE_RECIPES: dict[str, tuple[str, Callable[[People], Any]]] = {
    "attempt": ("login.locked", _lock),
    "unlock": ("login.unlock", lambda p: p.unlock("alice", actor="olga")),
    "enrol": ("mfa.enrol", lambda p: p.enrol("bob", SECRET, totp.current_code(SECRET))),
    "record_external_factor": (
        "mfa.external",
        lambda p: p.record_external_factor("bob", "https://idp.example", ["otp"]),
    ),
    "reset_mfa": ("mfa.reset", lambda p: p.reset_mfa("pat", actor="olga", reason="lost phone")),
    "open_cli_session": (
        "cli.login",
        lambda p: p.open_cli_session("pat", "test-password-1", CODES["pat"]),
    ),
    "close_cli_session": ("cli.logout", lambda p: p.close_cli_session(TOKENS["olga"])),
    "record_verification": (
        "person.verify",
        lambda p: p.record_verification("alice", "in-person", actor="olga"),
    ),
    "record_training": (
        "person.training",
        lambda p: p.record_training(
            "alice", "safe-researcher", passed_on=date.today(), expires_on=NEXT_YEAR, actor="olga"
        ),
    ),
    "set_disabled": (
        "account.disable",
        lambda p: p.set_disabled("alice", True, actor="olga", reason="left"),
    ),
    "set_expiry": ("account.expiry", lambda p: p.set_expiry("alice", NEXT_YEAR, actor="olga")),
    "record_assessment": (
        "application.assessment",
        lambda p: p.record_assessment(2, reference="DPIA-2", outcome="approved", actor="olga"),
    ),
}


CODES: dict[str, str] = {}
PREPARE: dict[str, Callable[[People], Any]] = {
    # Before the snapshot: a password and a fresh code the recipe signs in with.
    "open_cli_session": lambda p: CODES.__setitem__("pat", _code_of(p, "pat")),
}


def _code_of(p: People, name: str) -> str:
    """A fresh code for a seeded person: reset and enrol again with a known secret."""
    p.reset_mfa(name, actor="olga", reason="test")
    p.enrol(name, SECRET, totp.current_code(SECRET))
    app = Authenticator()
    app.add(name, SECRET)
    Governance(p.registry).set_password(name, "test-password-1", actor="olga")
    return app.code(name)


@pytest.fixture
def seeded(writer: Governance, tmp_path: Path) -> Governance:
    _seed(writer, tmp_path)
    return writer


def _everything(gov: Governance) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every journaled registry table (what "nothing changed" is checked
    against). Operational state (failure counters, the TOTP step) is not part of any
    journaled change: a sign-in that fails afterwards has still been tried."""
    with gov.db.read() as s:
        return {
            t.name: sorted((tuple(map(str, row)) for row in s.execute(select(t))), key=str)
            for t in Base.metadata.sorted_tables
            if not is_operational(t)
        }


@pytest.mark.parametrize("write", sorted(RECIPES))
def test_every_write_journals_one_entry_of_its_kind(
    seeded: Governance, tmp_path: Path, write: str
) -> None:
    kind, recipe = RECIPES[write]
    before = seeded.journal_entries()
    recipe(seeded, tmp_path)
    after = seeded.journal_entries()
    assert [e.action for e in after[len(before) :]] == [kind]
    assert after[-1].actor and after[-1].subject
    assert seeded.verify_journal().ok


@pytest.mark.parametrize("write", sorted(RECIPES))
def test_a_failing_journal_write_leaves_nothing_of_the_change(
    seeded: Governance, tmp_path: Path, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, recipe = RECIPES[write]
    before = _everything(seeded)
    incoming = sorted(p.name for p in (tmp_path / "state").rglob("incoming/*"))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(journal, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        recipe(seeded, tmp_path)
    monkeypatch.undo()
    assert _everything(seeded) == before
    # An approved ingress file is delivered only with its record.
    assert sorted(p.name for p in (tmp_path / "state").rglob("incoming/*")) == incoming


@pytest.mark.parametrize("write", sorted(PEOPLE_RECIPES))
def test_every_people_write_journals_one_entry_of_its_kind(seeded: Governance, write: str) -> None:
    kind, recipe = PEOPLE_RECIPES[write]
    people = People(seeded.registry)
    PREPARE.get(write, lambda _: None)(people)
    before = seeded.journal_entries()
    recipe(people)
    after = seeded.journal_entries()
    assert [e.action for e in after[len(before) :]] == [kind]
    assert after[-1].actor and after[-1].subject
    assert seeded.verify_journal().ok


@pytest.mark.parametrize("write", sorted(PEOPLE_RECIPES))
def test_a_failing_journal_write_leaves_nothing_of_a_people_change(
    seeded: Governance, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, recipe = PEOPLE_RECIPES[write]
    people = People(seeded.registry)
    PREPARE.get(write, lambda _: None)(people)
    before = _everything(seeded)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(journal, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        recipe(people)
    monkeypatch.undo()
    assert _everything(seeded) == before


def test_failed_sign_ins_are_operational_state_and_a_lock_is_journaled(
    seeded: Governance,
) -> None:
    people = People(seeded.registry)
    before = seeded.journal_entries()
    people.attempt("nobody-at-all", "guess", "", "10.0.0.8")
    people.attempt("alice", "guess", "", "10.0.0.8")
    assert seeded.journal_entries() == before  # counted, not journaled
    with seeded.db.read() as s:
        assert s.get(LoginFailures, "user:nobody-at-all").count == 1  # type: ignore[union-attr]
    _lock(people)
    assert [e.action for e in seeded.journal_entries()[len(before) :]] == ["login.locked"]
    assert people.is_locked("alice")
