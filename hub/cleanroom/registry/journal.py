"""The registry's journal: an append-only, hash-chained record of every operator,
provider and ingress act.

Each entry's hash covers the previous entry's hash and its own fields, so editing or
deleting a past entry breaks every hash after it; ``verify`` finds the first break. The
airlock keeps its own chain for release requests; this one covers what happens around
projects (applications, approvals, end dates, images, ingress), written in the same
transaction as the change it describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanroom.registry.models import JournalEntry

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One journal entry as callers see it."""

    seq: int
    time: str
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    hash: str


@dataclass
class Verification:
    """The outcome of checking the chain: how many entries, and what is wrong."""

    count: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every entry verifies."""
        return not self.problems


def canonical(detail: dict[str, Any]) -> str:
    """The detail as canonical JSON: the same dict always hashes the same."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    prev: str, seq: int, time: str, actor: str, action: str, subject: str, detail: str
) -> str:
    """SHA-256 over the previous hash and every field, separated so fields cannot run together."""
    h = hashlib.sha256()
    for part in (prev, str(seq), time, actor, action, subject, detail):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def append(session: Session, actor: str, action: str, subject: str = "", **detail: Any) -> Entry:
    """Add one entry in ``session``'s transaction (so it commits with the change)."""
    last = session.scalars(select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)).first()
    seq = (last.seq if last else 0) + 1
    prev = last.hash if last else GENESIS
    time = datetime.now(UTC).isoformat(timespec="microseconds")
    body = canonical(detail)
    digest = entry_hash(prev, seq, time, actor, action, subject, body)
    session.add(
        JournalEntry(
            seq=seq,
            time=time,
            actor=actor,
            action=action,
            subject=subject,
            detail=body,
            prev_hash=prev,
            hash=digest,
        )
    )
    # Flush now: a second writer that read the same head fails on the primary key here,
    # inside its transaction, instead of forking the chain.
    session.flush()
    return Entry(seq, time, actor, action, subject, detail, digest)


def entries(session: Session, *, subject: str | None = None) -> list[Entry]:
    """Entries oldest first, optionally only those about one subject (prefix match)."""
    query = select(JournalEntry).order_by(JournalEntry.seq)
    if subject:
        query = query.where(JournalEntry.subject.startswith(subject))
    return [
        Entry(e.seq, e.time, e.actor, e.action, e.subject, json.loads(e.detail), e.hash)
        for e in session.scalars(query)
    ]


def verify(rows: Iterable[JournalEntry]) -> Verification:
    """Recompute every hash and link; a gap, an edit or a reordering is a problem."""
    result = Verification()
    prev, expected_seq = GENESIS, 1
    for row in rows:
        result.count += 1
        if row.seq != expected_seq:
            result.problems.append(f"entry {row.seq}: expected sequence {expected_seq}")
        if row.prev_hash != prev:
            result.problems.append(f"entry {row.seq}: does not link to the entry before it")
        digest = entry_hash(
            row.prev_hash, row.seq, row.time, row.actor, row.action, row.subject, row.detail
        )
        if digest != row.hash:
            result.problems.append(f"entry {row.seq}: content does not match its hash")
        prev, expected_seq = row.hash, row.seq + 1
    return result
