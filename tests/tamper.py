"""Ways to tamper with a hash-chained table, and what ``verify`` must then report.

Shared by the airlock's audit tests and the registry journal's tests: both stores keep
their chain in a table with ``seq``, ``prev_hash`` and ``hash`` columns and a one-row head
table, on the shared :mod:`cleanroom.chain`. Each tamper is plain SQL, as an attacker with
the database file would write it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cleanroom.chain import ProblemKind


@dataclass(frozen=True)
class Chain:
    """Where a store keeps its chain: the entries' table and columns, the head's table."""

    table: str
    columns: tuple[str, ...]
    head: str

    def copy(self, seq: int, to: int) -> str:
        """An INSERT that copies entry ``seq`` as a new entry numbered ``to``."""
        names = ", ".join(self.columns)
        values = ", ".join(str(to) if c == "seq" else c for c in self.columns)
        return (
            f"INSERT INTO {self.table} ({names}) "
            f"SELECT {values} FROM {self.table} WHERE seq = {seq}"
        )


@dataclass(frozen=True)
class Tamper:
    """SQL statements over a :class:`Chain` with ``n`` entries, and the problem expected."""

    name: str
    statements: Callable[[Chain, int], list[str]]
    kind: ProblemKind
    # Which entry the problem names: a function of the number of entries.
    at: Callable[[int], int | None]


TAMPERS = [
    Tamper(
        "delete first",
        lambda c, n: [f"DELETE FROM {c.table} WHERE seq = 1"],
        ProblemKind.MISSING,
        lambda n: 2,
    ),
    Tamper(
        "delete middle",
        lambda c, n: [f"DELETE FROM {c.table} WHERE seq = 2"],
        ProblemKind.MISSING,
        lambda n: 3,
    ),
    Tamper(
        "delete last",
        lambda c, n: [f"DELETE FROM {c.table} WHERE seq = {n}"],
        ProblemKind.TRUNCATED,
        lambda n: n,
    ),
    Tamper(
        "delete the last two",
        lambda c, n: [f"DELETE FROM {c.table} WHERE seq >= {n - 1}"],
        ProblemKind.TRUNCATED,
        lambda n: n,
    ),
    Tamper(
        "edit",
        lambda c, n: [f"UPDATE {c.table} SET actor = 'mallory' WHERE seq = 2"],
        ProblemKind.EDITED,
        lambda n: 2,
    ),
    Tamper(
        "edit the last and its head",
        lambda c, n: [
            f"UPDATE {c.table} SET actor = 'mallory', hash = '{'f' * 64}' WHERE seq = {n}",
            f"UPDATE {c.head} SET hash = '{'f' * 64}'",
        ],
        ProblemKind.EDITED,
        lambda n: n,
    ),
    Tamper(
        "replace the last hash",
        lambda c, n: [f"UPDATE {c.table} SET hash = '{'e' * 64}' WHERE seq = {n}"],
        ProblemKind.HEAD_MISMATCH,
        lambda n: n,
    ),
    Tamper(
        "reorder",
        lambda c, n: [
            f"UPDATE {c.table} SET seq = -2 WHERE seq = 2",
            f"UPDATE {c.table} SET seq = 2 WHERE seq = 3",
            f"UPDATE {c.table} SET seq = 3 WHERE seq = -2",
        ],
        ProblemKind.UNLINKED,
        lambda n: 2,
    ),
    Tamper(
        "insert in the middle",
        lambda c, n: [
            *(f"UPDATE {c.table} SET seq = {s + 1} WHERE seq = {s}" for s in range(n, 1, -1)),
            c.copy(1, 2),
        ],
        ProblemKind.EDITED,
        lambda n: 2,
    ),
    Tamper(
        "insert at the end",
        lambda c, n: [c.copy(n, n + 1)],
        ProblemKind.UNRECORDED,
        lambda n: n + 1,
    ),
    Tamper(
        "delete the head",
        lambda c, n: [f"DELETE FROM {c.head}"],
        ProblemKind.NO_HEAD,
        lambda n: None,
    ),
]
