"""One hash chain for every append-only log: the airlock's audit and the registry's journal.

Each entry stores its sequence number, the hash of the entry before it (``prev_hash``) and
its own hash, which covers ``prev_hash`` and the entry's canonical fields. Editing an entry
breaks its hash; deleting, inserting or reordering entries breaks the sequence and the
links. What a chain alone cannot show is the loss of its last entries (a shorter chain is
still a consistent chain), so every store also keeps a **head** record (the count and the
last hash), updated in the same transaction as each append; :func:`verify` checks the
entries against it.

A store supplies its own ``digest`` (how one of its entries is hashed), because the
formats predate this module and an existing deployment's chain must keep verifying;
:func:`link_hash` is the format for new stores.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""


class Chained(Protocol):
    """What :func:`verify` reads of a stored entry (besides what its digest reads)."""

    @property
    def seq(self) -> int: ...

    @property
    def prev_hash(self) -> str: ...

    @property
    def hash(self) -> str: ...


E = TypeVar("E", bound=Chained)


@dataclass(frozen=True)
class Head:
    """The stored head: how many entries the chain has and the last one's hash."""

    seq: int
    hash: str


EMPTY = Head(0, GENESIS)


class ProblemKind(enum.StrEnum):
    """What is wrong with the chain at one place."""

    MISSING = "missing"
    """Sequence numbers are absent: entries were deleted."""
    OUT_OF_ORDER = "out_of_order"
    """A sequence number repeats or goes back: an entry was inserted or rows reordered."""
    UNLINKED = "unlinked"
    """``prev_hash`` does not name the entry before: one before it was removed or replaced."""
    EDITED = "edited"
    """The entry's content does not match its hash."""
    TRUNCATED = "truncated"
    """The head names an entry after the last one: entries were deleted from the end."""
    UNRECORDED = "unrecorded"
    """Entries follow the head's entry: they were added without the writer."""
    HEAD_MISMATCH = "head_mismatch"
    """The last entry's hash is not the head's: the last entry was replaced."""
    NO_HEAD = "no_head"
    """The head record itself is gone."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong: at which entry (``None``: the chain as a whole), what kind, why."""

    seq: int | None
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"{where}: {self.message} ({self.kind})"


@dataclass
class Verification:
    """What :func:`verify` found: how many entries it read and every problem, in order."""

    count: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact and ends where its head says."""
        return not self.problems

    def kinds(self) -> set[ProblemKind]:
        """The kinds of problem found."""
        return {p.kind for p in self.problems}

    def report(self) -> str:
        """The result as text for people: one line, or one line per problem."""
        if self.ok:
            return f"verifies: {self.count} entries"
        return "BROKEN:\n" + "\n".join(f"  - {p}" for p in self.problems)


def canonical(detail: dict[str, Any]) -> str:
    """A mapping as the exact text that is stored and hashed: sorted keys, no spaces, ASCII.

    Dates and other non-JSON values are written as their ``str()``.
    """
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def link_hash(prev_hash: str, *fields: str | int | None) -> str:
    """SHA-256 over the previous hash and the entry's fields as one JSON array.

    A JSON array keeps field boundaries (no two entries' fields can run together) and
    tells ``None`` from ``""``.
    """
    body = json.dumps([prev_hash, *fields], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def verify(entries: Iterable[E], head: Head | None, digest: Callable[[E], str]) -> Verification:
    """Check every entry (in stored sequence order) and the head; report each problem.

    ``head`` is ``None`` when the store has no head record at all.
    """
    result = Verification()
    prev_hash, expected, last = GENESIS, 1, 0
    for entry in entries:
        result.count += 1
        seq = entry.seq
        if seq > expected:
            gone = f"entry {expected}" if seq == expected + 1 else f"entries {expected}-{seq - 1}"
            result.problems.append(
                Problem(seq, ProblemKind.MISSING, f"{gone} before it are missing (deleted)")
            )
        elif seq < expected:
            result.problems.append(
                Problem(
                    seq,
                    ProblemKind.OUT_OF_ORDER,
                    f"expected entry {expected} here (an entry was inserted or rows reordered)",
                )
            )
        if entry.prev_hash != prev_hash:
            result.problems.append(
                Problem(
                    seq,
                    ProblemKind.UNLINKED,
                    "does not link to the entry before it (one was removed, inserted or replaced)",
                )
            )
        if digest(entry) != entry.hash:
            result.problems.append(
                Problem(seq, ProblemKind.EDITED, "content does not match its hash")
            )
        # After an entry that goes back, carry on from the highest one seen, so that one
        # misplaced entry is reported once, not as a gap after it too.
        prev_hash, expected, last = entry.hash, max(expected, seq + 1), max(last, seq)
    result.problems.extend(_head_problems(head, last, prev_hash, result.count))
    return result


def _head_problems(head: Head | None, last: int, last_hash: str, count: int) -> list[Problem]:
    if head is None:
        if count == 0:
            return []
        return [Problem(None, ProblemKind.NO_HEAD, "the head record is missing (deleted)")]
    if head.seq > last:
        return [
            Problem(
                head.seq,
                ProblemKind.TRUNCATED,
                f"the head names entry {head.seq} but the chain ends at entry {last} "
                "(entries were deleted from the end)",
            )
        ]
    if head.seq < last:
        return [
            Problem(
                last,
                ProblemKind.UNRECORDED,
                f"the chain ends at entry {last} but the head names entry {head.seq} "
                "(entries were added at the end without the writer)",
            )
        ]
    if head.hash != last_hash:
        return [
            Problem(
                last,
                ProblemKind.HEAD_MISMATCH,
                "the last entry's hash is not the one the head recorded (it was replaced)",
            )
        ]
    return []
