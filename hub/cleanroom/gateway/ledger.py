"""Records of the gateway in the registry's hash-chained journal.

The one place the gateway writes the journal, so that a change of the journal's API
needs one change here. Records are queued and written off the event loop in batches
(the journal is SQLite by default), and refusals are coalesced per researcher, project
and reason at most once a second, so a flood of refused requests cannot flood the
journal; the count says how many each record stands for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACTOR = "gateway"
log = logging.getLogger("cleanroom.gateway.ledger")


@dataclass
class Ledger:
    """A queue of journal records, flushed by :meth:`flush` (called every second)."""

    write: Callable[[list[tuple[str, str, dict[str, Any]]]], None] | None = None
    pending: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    refusals: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def record(self, action: str, subject: str, **detail: Any) -> None:
        """Queue one record (``action`` e.g. ``egress.hour``, subject ``user/project``)."""
        self.pending.append((action, subject, detail))

    def refusal(self, user: str, project: str, reason: str, **detail: Any) -> None:
        """Queue a refusal; same-kind refusals within one flush become one record."""
        key = (user, project, reason)
        entry = self.refusals.get(key)
        if entry is None:
            self.refusals[key] = {"count": 1, "reason": reason, **detail}
        else:
            entry["count"] += 1

    def take(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Everything queued, oldest first, and empty the queue."""
        batch = self.pending
        for (user, project, _), detail in self.refusals.items():
            batch.append(("egress.refused", f"{user}/{project}", detail))
        self.pending, self.refusals = [], {}
        return batch

    async def flush(self) -> None:
        """Write what is queued, in a thread; on failure keep it for the next flush."""
        batch = self.take()
        if not batch or self.write is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.write, batch)
        except Exception:
            log.exception("could not write %d gateway records; retrying", len(batch))
            self.pending[:0] = batch


def journal_writer(registry_url: str) -> Callable[[list[tuple[str, str, dict[str, Any]]]], None]:
    """A writer into the registry's journal: one typed event per record, a batch per
    transaction (the journal's one writer, ``RegistryDatabase.write``)."""
    from cleanroom.registry import shared_registry
    from cleanroom.registry.events import EGRESS_EVENTS

    registry = shared_registry(registry_url)

    def write(batch: list[tuple[str, str, dict[str, Any]]]) -> None:
        with registry.db.write() as tx:
            for action, subject, detail in batch:
                user, _, project = subject.partition("/")
                facts = dict(detail)
                # A grant is the officer's act; everything else the gateway's own record.
                actor = str(facts.pop("by", "") or ACTOR) if action == "egress.grant" else ACTOR
                tx.journal(
                    EGRESS_EVENTS[action](actor=actor, user=user, project=project, facts=facts)
                )

    return write
