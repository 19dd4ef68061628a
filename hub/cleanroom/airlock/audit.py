"""The airlock's audit log on the shared hash chain (:mod:`cleanroom.chain`).

Each entry's hash covers the previous entry's hash and its own fields; storage keeps a
head record (the last sequence number and hash) updated in the same transaction as each
append, so editing, inserting, reordering or deleting any entry, the last ones included,
is found by ``verify``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from cleanroom import chain

VerifyResult = chain.Verification
canonical_detail = chain.canonical


@dataclass(frozen=True)
class AuditRecord:
    """One stored audit entry, exactly as hashed."""

    seq: int
    time: str
    actor: str
    action: str
    request_id: str | None
    file_sha256: str | None
    detail: str
    prev_hash: str
    hash: str

    def to_json(self) -> str:
        """One JSON line for export (``detail`` is decoded so the line reads naturally)."""
        data = asdict(self)
        data["detail"] = json.loads(self.detail)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def entry_hash(
    prev_hash: str,
    seq: int,
    time: str,
    actor: str,
    action: str,
    request_id: str | None,
    file_sha256: str | None,
    detail: str,
) -> str:
    """The hash of one entry, chained to the one before (the format since the first release)."""
    return chain.link_hash(prev_hash, seq, time, actor, action, request_id, file_sha256, detail)


def record_hash(rec: AuditRecord) -> str:
    """The hash a stored record should carry."""
    return entry_hash(
        rec.prev_hash,
        rec.seq,
        rec.time,
        rec.actor,
        rec.action,
        rec.request_id,
        rec.file_sha256,
        rec.detail,
    )


def verify(records: Iterable[AuditRecord], head: chain.Head | None) -> chain.Verification:
    """Check every entry's hash, the links between them, gaps, and the stored head."""
    return chain.verify(records, head, record_hash)


def export_lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    """The log as JSON lines, one entry per line, in sequence order."""
    for rec in records:
        yield rec.to_json() + "\n"
