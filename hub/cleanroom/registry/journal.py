"""The registry's journal: an append-only, hash-chained record of every registry change
and every operator, provider and ingress act, on the shared chain (:mod:`cleanroom.chain`).

Entries are written only by :meth:`cleanroom.registry.database.Write.journal`, in the same
transaction as the change they describe, and the head row (``journal_head``) moves with
each append, so ``verify`` finds edited, deleted (the last ones included), inserted and
reordered entries. The airlock keeps its own chain for release requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanroom import chain
from cleanroom.errors import CleanroomError
from cleanroom.registry.events import JournalEvent
from cleanroom.registry.models import JournalEntry, JournalHead

GENESIS = chain.GENESIS
HEAD_ID = 1
Verification = chain.Verification


class JournalUnavailable(CleanroomError):
    """The journal cannot take an entry (its head record is gone): nothing is changed."""


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


canonical = chain.canonical


def entry_hash(
    prev: str, seq: int, time: str, actor: str, action: str, subject: str, detail: str
) -> str:
    """SHA-256 over the previous hash and every field, each followed by a unit separator.

    The journal's format since its first release (kept so existing journals verify).
    """
    h = hashlib.sha256()
    for part in (prev, str(seq), time, actor, action, subject, detail):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def row_hash(row: JournalEntry) -> str:
    """The hash a stored entry should carry."""
    return entry_hash(
        row.prev_hash, row.seq, row.time, row.actor, row.action, row.subject, row.detail
    )


def append(session: Session, event: JournalEvent) -> Entry:
    """Add ``event`` in ``session``'s transaction (so it commits with the change).

    The head row is locked (PostgreSQL) and moved with the entry; on SQLite the write
    transaction already holds the database's write lock.
    """
    if not event.actor or not event.actor.strip():
        raise JournalUnavailable("every act needs an actor (who does it)")
    head = session.execute(
        select(JournalHead).where(JournalHead.id == HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        # Starting a fresh chain here would hide that the head was deleted.
        raise JournalUnavailable(
            "the journal's head record is missing; run cleanroom journal verify"
        )
    seq = head.seq + 1
    time = datetime.now(UTC).isoformat(timespec="microseconds")
    detail = event.detail()
    body = canonical(detail)
    digest = entry_hash(head.hash, seq, time, event.actor, event.kind, event.subject, body)
    session.add(
        JournalEntry(
            seq=seq,
            time=time,
            actor=event.actor,
            action=event.kind,
            subject=event.subject,
            detail=body,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    head.seq, head.hash = seq, digest
    # Flush now: a second writer that read the same head fails on the primary key here,
    # inside its transaction, instead of forking the chain.
    session.flush()
    return Entry(seq, time, event.actor, event.kind, event.subject, json.loads(body), digest)


def build_head(session: Session) -> int | None:
    """Upgrade step: create the head row from the journal's last entry, if it has none.

    Returns the last entry's sequence number when a head was built over existing entries
    (the caller journals that), else ``None``.
    """
    if session.get(JournalHead, HEAD_ID) is not None:
        return None
    last = session.scalars(select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)).first()
    session.add(
        JournalHead(id=HEAD_ID, seq=last.seq if last else 0, hash=last.hash if last else GENESIS)
    )
    session.flush()
    return last.seq if last else None


def entries(
    session: Session, *, subject: str | None = None, action: str | None = None
) -> list[Entry]:
    """Entries oldest first, optionally only those about one subject (prefix match) or
    of one action."""
    query = select(JournalEntry).order_by(JournalEntry.seq)
    if subject:
        query = query.where(JournalEntry.subject.startswith(subject))
    if action:
        query = query.where(JournalEntry.action == action)
    return [
        Entry(e.seq, e.time, e.actor, e.action, e.subject, json.loads(e.detail), e.hash)
        for e in session.scalars(query)
    ]


def head(session: Session) -> chain.Head | None:
    """The stored head, or ``None`` when the row is gone."""
    row = session.get(JournalHead, HEAD_ID)
    return chain.Head(row.seq, row.hash) if row else None


def verify(rows: Iterable[JournalEntry], stored_head: chain.Head | None) -> chain.Verification:
    """Recompute every hash and link and compare the end with the head."""
    return chain.verify(rows, stored_head, row_hash)
