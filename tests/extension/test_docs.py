"""docs/workspace-routes.md names the tests that prove each route: they must exist."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "workspace-routes.md"


def test_every_test_named_in_the_routes_table_exists() -> None:
    named = set(re.findall(r"`((?:test_|Test)\w+)(?!\w|\.py)", DOC.read_text()))
    assert named, "the routes table names no tests"
    # The extension's tests and, for the gateway's table, the gateway's.
    files = [*HERE.glob("test_*.py"), *(HERE.parent / "gateway").glob("test_*.py")]
    source = "\n".join(p.read_text() for p in files)
    defined = set(re.findall(r"^\s*(?:def|class) ((?:test_|Test)\w+)", source, re.MULTILINE))
    assert sorted(named - defined) == []
