"""The registry journal on the shared chain: every kind of tampering is found, by entry and
kind, on SQLite and PostgreSQL; ``cleanroom journal verify`` says what and exits 1; an
existing deployment's journal gains its head without losing an entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.chain import ProblemKind
from cleanroom.cli import main as cli
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.journal import JournalUnavailable
from sqlalchemy import text

from tests.people import person
from tests.tamper import TAMPERS, Chain, Tamper

JOURNAL = Chain(
    "journal",
    ("seq", "time", "actor", "action", "subject", "detail", "prev_hash", "hash"),
    "journal_head",
)


def _fill(gov: Governance) -> int:
    person(gov.registry, "olga", ["operator"])  # images are retired by one in standing
    gov.add_user("alice", actor="olga")
    gov.add_user("bob", actor="olga")
    gov.create_project("defects", "Defects", actor="olga")
    gov.add_member("defects", "alice", actor="olga")
    gov.set_image_state("pytorch", "retired", actor="olga", reason="CVE")
    result = gov.verify_journal()
    assert result.ok, result.problems
    return result.count


def _sql(reg: Registry, *statements: str) -> None:
    with reg.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.name)
def test_every_kind_of_tampering_is_found(any_registry: Registry, tamper: Tamper) -> None:
    gov = Governance(any_registry)
    n = _fill(gov)
    _sql(any_registry, *tamper.statements(JOURNAL, n))
    result = gov.verify_journal()
    assert not result.ok
    assert (tamper.at(n), tamper.kind) in [(p.seq, p.kind) for p in result.problems]


def test_concurrent_writers_keep_one_chain(any_registry: Registry) -> None:
    import threading

    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            Governance(Registry(any_registry.url)).add_user(f"user{i}", actor="olga")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = Governance(any_registry).verify_journal()
    assert result.ok and result.count == 8


def test_journal_verify_names_the_entry_and_exits_1(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    n = _fill(Governance(registry))
    assert cli.main(["journal", "verify"]) == 0
    assert f"journal verifies: {n} entries" in capsys.readouterr().out
    _sql(registry, f"DELETE FROM journal WHERE seq = {n}")
    with pytest.raises(SystemExit) as exited:
        cli.main(["--json", "journal", "verify"])
    assert exited.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["count"] == n - 1
    assert report["problems"] == [
        {
            "seq": n,
            "kind": "truncated",
            "message": f"the head names entry {n} but the chain ends at entry {n - 1} "
            "(entries were deleted from the end)",
        }
    ]


def test_an_existing_journal_gains_its_head_and_loses_nothing(state: Path) -> None:
    reg = Registry()
    gov = Governance(reg)
    n = _fill(gov)
    before = gov.journal_entries()
    # A registry from before the head record: drop the table, as it did not exist.
    _sql(reg, "DROP TABLE journal_head")
    reg.db.engine.dispose()
    upgraded = Governance(Registry())
    after = upgraded.journal_entries()
    assert after[:n] == before
    assert [e.action for e in after[n:]] == ["journal.head_built"]
    assert after[-1].detail == {"seq": n} and after[-1].actor == "upgrade"
    assert upgraded.verify_journal().ok
    Registry()  # idempotent: a second start adds nothing
    assert len(upgraded.journal_entries()) == n + 1
    # From now on, truncation is found.
    _sql(upgraded.registry, f"DELETE FROM journal WHERE seq = {n + 1}")
    assert upgraded.verify_journal().kinds() == {ProblemKind.TRUNCATED}


def test_no_change_is_made_over_a_lost_head(registry: Registry) -> None:
    gov = Governance(registry)
    _fill(gov)
    _sql(registry, "DELETE FROM journal_head")
    with pytest.raises(JournalUnavailable, match="head record is missing"):
        gov.add_user("carol", actor="olga")
    assert "carol" not in {u.name for u in registry.list_users()}
