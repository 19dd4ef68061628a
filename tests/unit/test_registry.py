"""The registry decides who may run what; every refusal is clear and changes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance

from tests.people import in_standing


def _project_with_member(registry: Registry) -> None:
    Governance(registry).add_user("alice", ["researcher"], "correct horse battery", actor="op")
    Governance(registry).add_user("bob", ["researcher"], actor="op")
    Governance(registry).create_project("press-quality", "Press quality", actor="op")
    Governance(registry).add_member("press-quality", "alice", actor="op")


def test_member_gets_a_plan_with_images_and_datasets(registry: Registry) -> None:
    _project_with_member(registry)
    Governance(registry).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/press-line/v1", None, 3), actor="op"
    )
    Governance(registry).attach_dataset("press-quality", "press-line", actor="op")
    with pytest.raises(Forbidden, match="until its provider approves"):
        registry.workspace_plan("alice", "press-quality")
    Governance(registry).add_user("pat", ["provider"], actor="op")
    Governance(registry).add_user("op", ["operator"], actor="op")
    in_standing(registry, "op")
    in_standing(registry, "pat")
    governance = Governance(registry)
    governance.add_provider_account("Acme", "pat", actor="op")
    governance.approve_dataset_use("press-quality", "press-line", actor="pat")
    plan = registry.workspace_plan("alice", "press-quality")
    assert plan.images == ("notebook",)
    assert [(d.name, d.version) for d in plan.datasets] == [("press-line", "v1")]


def test_non_member_is_refused_by_name(registry: Registry) -> None:
    _project_with_member(registry)
    with pytest.raises(Forbidden, match="'bob' is not a member of project 'press-quality'"):
        registry.workspace_plan("bob", "press-quality")


def test_unknown_project_is_not_found(registry: Registry) -> None:
    _project_with_member(registry)
    with pytest.raises(NotFound, match="no project 'nope'"):
        registry.workspace_plan("alice", "nope")


def test_closed_and_ended_projects_refuse_spawns(registry: Registry) -> None:
    _project_with_member(registry)
    Governance(registry).set_project_status("press-quality", "suspended", actor="op")
    with pytest.raises(Forbidden, match="suspended"):
        registry.workspace_plan("alice", "press-quality")
    Governance(registry).create_project(
        "old-study", "Old", ends_on=date.today() - timedelta(days=1), actor="op"
    )
    Governance(registry).add_member("old-study", "alice", actor="op")
    with pytest.raises(Forbidden, match="ended"):
        registry.workspace_plan("alice", "old-study")
    assert registry.projects_of("alice") == []


def test_expired_membership_is_no_membership(registry: Registry) -> None:
    _project_with_member(registry)
    Governance(registry).add_member(
        "press-quality", "bob", ends_on=date.today() - timedelta(days=1), actor="op"
    )
    assert not registry.is_member("bob", "press-quality")
    with pytest.raises(Forbidden):
        registry.workspace_plan("bob", "press-quality")


def test_removed_member_loses_access_at_once(registry: Registry) -> None:
    _project_with_member(registry)
    Governance(registry).remove_member("press-quality", "alice", actor="op")
    assert [p.name for p in registry.projects_of("alice")] == []
    with pytest.raises(NotFound):
        Governance(registry).remove_member("press-quality", "alice", actor="op")


def test_former_members_stay_affiliated(registry: Registry) -> None:
    """Removed, ended and closed memberships all count against reviewing independence."""
    _project_with_member(registry)
    Governance(registry).remove_member("press-quality", "alice", actor="olive")
    Governance(registry).create_project(
        "old-study", "Old", ends_on=date.today() - timedelta(days=1), actor="op"
    )
    Governance(registry).add_member("old-study", "alice", actor="op")
    Governance(registry).create_project("paused", "Paused", actor="op")
    Governance(registry).add_member(
        "paused", "alice", ends_on=date.today() - timedelta(days=30), actor="op"
    )
    Governance(registry).set_project_status("paused", "suspended", actor="op")
    assert registry.projects_of("alice") == []
    assert registry.affiliations_of("alice") == {"press-quality", "old-study", "paused"}
    assert registry.affiliations_of("nobody") == set()
    # Added again after removal: a member now, and still one before.
    Governance(registry).add_member("press-quality", "alice", actor="op")
    assert "press-quality" in registry.affiliations_of("alice")


def test_duplicates_conflict_and_change_nothing(registry: Registry) -> None:
    _project_with_member(registry)
    with pytest.raises(Conflict):
        Governance(registry).create_project("press-quality", "Again", actor="op")
    with pytest.raises(Conflict):
        Governance(registry).add_member("press-quality", "alice", actor="op")
    with pytest.raises(Conflict):
        Governance(registry).add_user("alice", actor="op")
    assert registry.get_project("press-quality").title == "Press quality"
    assert registry.get_project("press-quality").members == ("alice",)


@pytest.mark.parametrize("name", ["", "A", "ab", "-bad", "bad-", "has space", "x" * 41, "../etc"])
def test_bad_project_names_are_refused(registry: Registry, name: str) -> None:
    with pytest.raises(InvalidInput):
        Governance(registry).create_project(name, "Title", actor="op")
    assert registry.list_projects() == []


def test_unknown_role_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="unknown role"):
        Governance(registry).add_user("carol", ["admin"], actor="op")
    assert registry.list_users() == []


def test_passwords_are_hashed_and_checked(registry: Registry) -> None:
    _project_with_member(registry)
    assert registry.check_password("alice", "correct horse battery")
    assert not registry.check_password("alice", "wrong")
    assert not registry.check_password("bob", "")  # no password set: no log-in
    assert not registry.check_password("nobody", "x")
    with pytest.raises(InvalidInput):
        Governance(registry).set_password("alice", "short", actor="op")


def test_attach_pins_the_newest_version_unless_told(registry: Registry) -> None:
    _project_with_member(registry)
    Governance(registry).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/v1", None, 1), actor="op"
    )
    Governance(registry).add_dataset(
        DatasetInfo("press-line", "v2", "Acme", "/lib/v2", None, 1), actor="op"
    )
    Governance(registry).attach_dataset("press-quality", "press-line", actor="op")
    assert registry.get_project("press-quality").datasets[0].version == "v2"
    Governance(registry).attach_dataset("press-quality", "press-line", "v1", actor="op")
    assert registry.get_project("press-quality").datasets[0].version == "v1"
    with pytest.raises(NotFound):
        Governance(registry).attach_dataset("press-quality", "press-line", "v9", actor="op")
