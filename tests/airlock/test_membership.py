"""Membership sources: the registry adapter and the JSON file the demo and tests use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.airlock.app import load_membership


def test_registry_membership(tmp_path: Path) -> None:
    registry_mod = pytest.importorskip("cleanroom.registry")
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    registry = registry_mod.Registry(url)
    from cleanroom.registry.governance import Governance

    Governance(registry).add_user("alice", actor="op")
    Governance(registry).add_user("olga", roles=["officer"], actor="op")
    Governance(registry).create_project("press-line", "Press line defects", actor="op")
    Governance(registry).add_member("press-line", "alice", actor="op")
    from cleanroom.airlock.membership import RegistryMembership

    members = RegistryMembership(url)
    assert members.is_member("alice", "press-line")
    assert not members.is_member("olga", "press-line")
    assert members.projects_of("alice") == {"press-line"}
    assert members.projects_of("nobody") == set()


def test_file_membership(tmp_path: Path) -> None:
    path = tmp_path / "members.json"
    path.write_text(json.dumps({"p": ["a", "b"]}))
    members = load_membership(f"file:{path}")
    assert members.projects_of("a") == {"p"} and not members.is_member("c", "p")


def test_bad_membership_spec() -> None:
    with pytest.raises(SystemExit, match="registry, file:<path> or module:callable"):
        load_membership("nonsense")


@pytest.mark.parametrize("content", ["", "[1]", '{"p": "alice"}'])
def test_bad_membership_file(tmp_path: Path, content: str) -> None:
    from cleanroom.airlock.exceptions import Misconfigured

    path = tmp_path / "members.json"
    path.write_text(content)
    with pytest.raises(Misconfigured, match="membership file"):
        load_membership(f"file:{path}")
