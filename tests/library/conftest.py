"""Fixtures of the library's page tests: one hub with the library service for the
module, over a registry seeded through the domain (people in standing, providers,
dataset versions registered with their quality report, a project that wants one)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cleanroom.library.register import register_dataset
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.ci import skip_or_fail
from tests.people import in_standing

from .hub import LibraryHub, start_library_hub, stop_library_hub

MARK = "LOT-SECRET-7731"
"""A cell value of the registered data: no page or export may show it."""
SCHEMA = {
    "fields": [
        {"name": "stroke", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "force_kn", "type": "number", "constraints": {"maximum": 500}},
        {"name": "batch", "type": "string"},
    ],
    "primaryKey": ["stroke"],
}


@dataclass
class Library:
    """The running hub and the registry behind it."""

    hub: LibraryHub
    registry: Registry
    governance: Governance


def _table(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "strokes.csv").write_text("stroke,force_kn,batch\n" + "\n".join(rows) + "\n")
    return folder


def _seed(registry: Registry, tmp: Path) -> Governance:
    gov = Governance(registry)
    for name, roles in [
        ("alice", ["researcher"]),
        ("bob", ["researcher"]),
        ("carol", ["researcher"]),
        ("pat", ["provider"]),
        ("rita", ["provider"]),
        ("dora", ["provider"]),
        ("olga", ["operator"]),
    ]:
        gov.add_user(name, roles, actor="seed")
    for name in ("pat", "rita", "dora", "olga"):
        in_standing(registry, name)
    gov.add_provider_account("Acme", "pat", actor="olga")
    gov.add_provider_account("Bolt", "rita", actor="olga")
    good = _table(
        tmp / "good", [f"{i},{200 + i % 5},{MARK if i == 2 else 'L1'}" for i in range(1, 30)]
    )
    register_dataset(
        registry, good, name="strokes", version="v1", provider="Acme", actor="olga",
        build_index=False, schema=SCHEMA, classification="confidential",
        description="Press strokes of line 3", licence="Acme data agreement 7",
    )  # fmt: skip
    bad = _table(tmp / "bad", ["1,200,L1", "1,900,L2", f",12,{MARK}"])
    register_dataset(
        registry, bad, name="gauges", version="v1", provider="Acme", actor="olga",
        build_index=False, schema=SCHEMA,
    )  # fmt: skip
    # A second quarantined version, for the page tests (the browser test accepts gauges).
    register_dataset(
        registry, bad, name="valves", version="v1", provider="Acme", actor="olga",
        build_index=False, schema=SCHEMA,
    )  # fmt: skip
    other = _table(tmp / "other", ["1,3,A"])
    register_dataset(
        registry, other, name="bolts", version="v1", provider="Bolt", actor="olga",
        build_index=False,
    )  # fmt: skip
    gov.create_project("defects", "Defects", quota_tier="small", actor="olga")
    for member in ("alice", "bob"):
        gov.add_member("defects", member, actor="olga")
    gov.attach_dataset("defects", "strokes", "v1", actor="olga")
    gov.attach_dataset("defects", "bolts", "v1", actor="olga")
    # The browser test's own project, so that the page tests' decisions never meet it.
    gov.create_project("furnace", "Furnace", quota_tier="small", actor="olga")
    gov.add_member("furnace", "bob", actor="olga")
    gov.attach_dataset("furnace", "strokes", "v1", actor="olga")
    return gov


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    """The hub with the library service over a freshly seeded registry, shared by the
    library's tests (each decides on its own project or version)."""
    if shutil.which("configurable-http-proxy") is None:
        skip_or_fail("configurable-http-proxy is not installed")
    root = tmp_path_factory.mktemp("library")
    state = root / "state"
    url = f"sqlite:///{root / 'registry.sqlite'}"
    saved = {k: os.environ.get(k) for k in ("CLEANROOM_STATE_DIR", "CLEANROOM_REGISTRY_URL")}
    os.environ["CLEANROOM_STATE_DIR"] = str(state)
    os.environ["CLEANROOM_REGISTRY_URL"] = url
    try:
        registry = Registry(url)
        governance = _seed(registry, root)
        hub = start_library_hub(root / "hub", state, url)
        try:
            yield Library(hub, registry, governance)
        finally:
            stop_library_hub(hub)
            print(hub.log_tail())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
