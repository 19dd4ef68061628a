"""Membership sources: the registry adapter and the JSON file the demo and tests use."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cleanroom.airlock.app import load_membership
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.database import open_storage
from cleanroom.airlock.domain import OFFICER_SCOPE
from cleanroom.airlock.exceptions import Misconfigured, Unavailable
from cleanroom.airlock.membership import RegistryMembership
from cleanroom.airlock.policy import Policy
from cleanroom.airlock.service import Airlock
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance


def _registry(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    registry = Registry(url)
    governance = Governance(registry)
    governance.add_user("alice", actor="op")
    governance.add_user("olga", roles=["officer"], actor="op")
    governance.create_project("press-line", "Press line defects", actor="op")
    governance.add_member("press-line", "alice", actor="op")
    return url


def test_registry_membership(tmp_path: Path) -> None:
    members = RegistryMembership(_registry(tmp_path))
    assert members.is_member("alice", "press-line")
    assert not members.is_member("olga", "press-line")
    assert members.projects_of("alice") == {"press-line"}
    assert members.projects_of("nobody") == set()
    assert members.affiliations_of("alice") == {"press-line"}


def test_a_registry_that_cannot_answer_fails_closed(tmp_path: Path) -> None:
    """A database fault is never "a member of nothing" (which would make a member look
    independent of their own project): every question raises a 503 that says why."""
    url = _registry(tmp_path)
    members = RegistryMembership(url)
    assert members.projects_of("alice") == {"press-line"}
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TABLE memberships")
    for ask in (
        lambda: members.projects_of("alice"),
        lambda: members.affiliations_of("alice"),
        lambda: members.is_member("alice", "press-line"),
    ):
        with pytest.raises(Unavailable, match="the registry cannot say") as refused:
            ask()
        assert refused.value.status == 503
    airlock = Airlock(
        storage=open_storage(f"sqlite:///{tmp_path / 'airlock.sqlite'}"),
        blobs=BlobStore(tmp_path / "blobs"),
        membership=members,
        policy=Policy(),
    )
    with pytest.raises(Unavailable):
        airlock.actor("alice", frozenset({OFFICER_SCOPE}))


def test_file_membership(tmp_path: Path) -> None:
    path = tmp_path / "members.json"
    path.write_text(json.dumps({"p": ["a", "b"]}))
    members = load_membership(f"file:{path}")
    assert members.projects_of("a") == {"p"} and not members.is_member("c", "p")


def test_bad_membership_spec() -> None:
    with pytest.raises(Misconfigured, match="registry, file:<path> or module:callable"):
        load_membership("nonsense")
    with pytest.raises(Misconfigured, match="cannot be loaded"):
        load_membership("no_such_module_here:members")
    with pytest.raises(Misconfigured, match="cannot be loaded"):
        load_membership("json:no_such_callable")


@pytest.mark.parametrize("content", ["", "[1]", '{"p": "alice"}'])
def test_bad_membership_file(tmp_path: Path, content: str) -> None:
    from cleanroom.airlock.exceptions import Misconfigured

    path = tmp_path / "members.json"
    path.write_text(content)
    with pytest.raises(Misconfigured, match="membership file"):
        load_membership(f"file:{path}")
