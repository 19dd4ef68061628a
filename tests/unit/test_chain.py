"""The shared hash chain, on plain entries: what each kind of break looks like."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cleanroom import chain
from cleanroom.chain import EMPTY, GENESIS, Head, ProblemKind


@dataclass(frozen=True)
class Entry:
    seq: int
    body: str
    prev_hash: str
    hash: str


def _digest(e: Entry) -> str:
    return chain.link_hash(e.prev_hash, e.seq, e.body)


def _chain(n: int) -> list[Entry]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        digest = chain.link_hash(prev, seq, f"act {seq}")
        out.append(Entry(seq, f"act {seq}", prev, digest))
        prev = digest
    return out


def _found(entries: list[Entry], head: Head | None) -> list[tuple[int | None, ProblemKind]]:
    return [(p.seq, p.kind) for p in chain.verify(entries, head, _digest).problems]


def test_an_intact_chain_and_an_empty_one_verify() -> None:
    entries = _chain(3)
    result = chain.verify(entries, Head(3, entries[-1].hash), _digest)
    assert result.ok and result.count == 3 and result.report() == "verifies: 3 entries"
    assert chain.verify([], EMPTY, _digest).ok
    assert chain.verify([], None, _digest).ok  # a store that never had an entry


def test_each_break_is_named_by_entry_and_kind() -> None:
    entries = _chain(4)
    head = Head(4, entries[-1].hash)
    assert _found(entries[1:], head) == [(2, ProblemKind.MISSING), (2, ProblemKind.UNLINKED)]
    assert _found(entries[:3], head) == [(4, ProblemKind.TRUNCATED)]
    assert _found(entries, None) == [(None, ProblemKind.NO_HEAD)]
    assert _found(entries, Head(3, entries[2].hash)) == [(4, ProblemKind.UNRECORDED)]
    edited = [*entries[:2], replace(entries[2], body="forged"), entries[3]]
    assert _found(edited, head) == [(3, ProblemKind.EDITED)]
    swapped = [entries[0], entries[2], entries[1], entries[3]]
    assert (2, ProblemKind.OUT_OF_ORDER) in _found(swapped, head)
    assert (4, ProblemKind.MISSING) not in _found(swapped, head)


def test_problems_read_as_one_line_each() -> None:
    entries = _chain(2)
    result = chain.verify(entries[:1], Head(2, entries[1].hash), _digest)
    assert result.report() == (
        "BROKEN:\n  - entry 2: the head names entry 2 but the chain ends at entry 1 "
        "(entries were deleted from the end) (truncated)"
    )


def test_canonical_text_is_stable() -> None:
    assert chain.canonical({"b": 1, "a": "é"}) == '{"a":"\\u00e9","b":1}'
