"""The committed state diagram is generated from the current state table."""

from __future__ import annotations

from cleanroom.airlock.diagram import DOC, render


def test_committed_diagram_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/airlock-states.md is stale: run python -m cleanroom.airlock.diagram"
    )
