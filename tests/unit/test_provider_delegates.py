"""Providers' delegates: a principal (granted by an operator) names and removes delegates,
who act for the provider but name nobody; operators remove any account. Every refusal
changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from sqlalchemy import inspect

from tests.people import in_standing


def _seed(registry: Registry) -> Governance:
    gov = Governance(registry)
    for name, roles in [
        ("olga", ["operator"]),
        ("pat", ["provider"]),
        ("dora", ["provider"]),
        ("eve", ["provider"]),
        ("rita", ["provider"]),
        ("alice", ["researcher"]),
    ]:
        gov.add_user(name, roles, actor="seed")
    for name in ("olga", "pat", "dora", "eve", "rita"):
        in_standing(registry, name)
    gov.add_dataset(DatasetInfo("press-line", "v1", "Acme", "/lib/p1", None, 1), actor="seed")
    gov.create_project("defects", "Defects", actor="seed")
    gov.add_member("defects", "alice", actor="seed")
    gov.attach_dataset("defects", "press-line", "v1", actor="seed")
    gov.add_provider_account("Acme", "pat", actor="olga")
    gov.add_provider_account("Bolt", "rita", actor="olga")
    return gov


@pytest.fixture
def gov(registry: Registry) -> Governance:
    """pat acts for Acme (principal), rita for Bolt; dora and eve hold the provider role."""
    return _seed(registry)


def _unchanged(gov: Governance, act: Callable[[], Any], error: type, message: str) -> None:
    before = (gov.journal_entries(), gov.provider_accounts())
    with pytest.raises(error, match=message):
        act()
    assert (gov.journal_entries(), gov.provider_accounts()) == before


def test_a_principal_names_a_delegate_who_then_acts_for_the_provider(gov: Governance) -> None:
    gov.name_provider_delegate("Acme", " dora ", actor="pat")
    accounts = [(a.user, a.delegate, a.delegated_by) for a in gov.provider_accounts("Acme")]
    assert accounts == [("pat", False, ""), ("dora", True, "pat")]
    entry = gov.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.subject, entry.detail) == (
        "provider.delegate",
        "pat",
        "provider:Acme",
        {"provider": "Acme", "user": "dora"},
    )
    assert gov.providers_of("dora") == ["Acme"]
    # The delegate decides for the provider like a principal does.
    approval = gov.approve_dataset_use("defects", "press-line", "v1", actor="dora")
    assert approval.approved_by == "dora"
    # ... but names nobody and removes nobody.
    _unchanged(
        gov, lambda: gov.name_provider_delegate("Acme", "eve", actor="dora"), Forbidden,
        "only its principals",
    )  # fmt: skip
    gov.name_provider_delegate("Acme", "eve", actor="pat")
    _unchanged(
        gov, lambda: gov.remove_provider_account("Acme", "eve", actor="dora"), Forbidden,
        "only its principals",
    )  # fmt: skip


def test_naming_a_delegate_is_refused_clearly(gov: Governance) -> None:
    for user, actor, error, message in [
        ("dora", "rita", Forbidden, "'rita' does not act for 'Acme'"),
        ("alice", "pat", Forbidden, "'alice' does not hold the provider role"),
        ("nobody", "pat", NotFound, "no user 'nobody'"),
        ("pat", "pat", Conflict, "acts for 'Acme' already"),
        ("  ", "pat", InvalidInput, "name the person"),
        ("dora", "alice", Forbidden, "provider"),  # a researcher names nobody
        ("dora", "olga", Forbidden, "provider"),  # nor does an operator: they grant accounts
    ]:
        act = partial(gov.name_provider_delegate, "Acme", user, actor=actor)
        _unchanged(gov, act, error, message)


def test_principals_remove_their_delegates_and_operators_anyone(gov: Governance) -> None:
    gov.name_provider_delegate("Acme", "dora", actor="pat")
    _unchanged(
        gov, lambda: gov.remove_provider_account("Acme", "pat", actor="pat"), Forbidden,
        "only an operator removes them",
    )  # fmt: skip
    _unchanged(
        gov, lambda: gov.remove_provider_account("Acme", "dora", actor="rita"), Forbidden,
        "does not act for 'Acme'",
    )  # fmt: skip
    _unchanged(
        gov, lambda: gov.remove_provider_account("Acme", "eve", actor="pat"), NotFound,
        "'eve' does not act for 'Acme'",
    )  # fmt: skip
    gov.remove_provider_account("Acme", "dora", actor="pat")
    entry = gov.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.detail) == (
        "provider.account_remove",
        "pat",
        {"provider": "Acme", "user": "dora", "delegate": True},
    )
    assert gov.providers_of("dora") == []
    with pytest.raises(Forbidden, match="does not act for 'Acme'"):
        gov.approve_dataset_use("defects", "press-line", "v1", actor="dora")
    gov.name_provider_delegate("Acme", "dora", actor="pat")
    gov.remove_provider_account("Acme", "pat", actor="olga")  # an operator removes a principal
    assert [(a.user, a.delegated_by) for a in gov.provider_accounts("Acme")] == [("dora", "pat")]
    assert gov.journal_entries()[-1].detail["delegate"] is False
    assert gov.verify_journal().ok


def test_a_registry_from_before_delegates_upgrades(any_registry: Registry) -> None:
    _seed(any_registry)
    with any_registry.db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE provider_accounts DROP COLUMN delegated_by")
    upgraded = Governance(Registry(any_registry.url))
    try:
        columns = inspect(upgraded.db.engine).get_columns("provider_accounts")
        assert "delegated_by" in {c["name"] for c in columns}
        # Every account from before was an operator's grant: a principal.
        assert [(a.user, a.delegate) for a in upgraded.provider_accounts()] == [
            ("pat", False),
            ("rita", False),
        ]
        upgraded.name_provider_delegate("Acme", "dora", actor="pat")
    finally:
        upgraded.registry.db.engine.dispose()
