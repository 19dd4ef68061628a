"""The hash-chained audit log: how entries are hashed, verified and exported.

Each entry's hash covers its own fields and the previous entry's hash, so editing,
inserting or deleting any entry breaks every hash after it. Deleting entries at the end
leaves a consistent shorter chain, so storage also keeps a separate head record (the
last sequence number and hash), updated in the same transaction as each append;
``verify`` checks the chain against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

GENESIS = "0" * 64


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


def canonical_detail(detail: dict) -> str:
    """The detail mapping as the exact text that is stored and hashed."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


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
    """The hash of one entry, chained to the one before."""
    body = json.dumps(
        [prev_hash, seq, time, actor, action, request_id, file_sha256, detail],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode("ascii")).hexdigest()


@dataclass
class VerifyResult:
    """What ``verify`` found: the count checked and every problem, by sequence number."""

    count: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def verify(records: Iterable[AuditRecord], head: tuple[int, str] | None) -> VerifyResult:
    """Check every entry's hash, the links between them, gaps, and the stored head."""
    result = VerifyResult()
    prev_hash = GENESIS
    expected_seq = 1
    for rec in records:
        result.count += 1
        if rec.seq != expected_seq:
            result.problems.append(
                f"entry {rec.seq}: expected sequence {expected_seq} (an entry was deleted "
                "or inserted)"
            )
        if rec.prev_hash != prev_hash:
            result.problems.append(f"entry {rec.seq}: does not link to the entry before it")
        recomputed = entry_hash(
            rec.prev_hash,
            rec.seq,
            rec.time,
            rec.actor,
            rec.action,
            rec.request_id,
            rec.file_sha256,
            rec.detail,
        )
        if recomputed != rec.hash:
            result.problems.append(f"entry {rec.seq}: content does not match its hash (edited)")
        prev_hash = rec.hash
        expected_seq = rec.seq + 1
    head_seq, head_hash = head or (0, GENESIS)
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        result.problems.append(
            f"the chain ends at entry {expected_seq - 1} but the recorded head is entry "
            f"{head_seq} (entries were deleted from or added to the end)"
        )
    return result


def export_lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    """The log as JSON lines, one entry per line, in sequence order."""
    for rec in records:
        yield rec.to_json() + "\n"
