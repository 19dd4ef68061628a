"""Deleting a dataset version: asked for by its provider or an operator, done once no open
project uses it any more.

The request is journaled first (``dataset.delete.requested``, with where the files and
the index lie); every enforcer round then finishes the requests whose uses have ended:
the version is detached from every (ended) project, its registry rows go, its files and
its disclosure-check index are removed from the library, its key is destroyed
(crypto-shredding: old backups of its encrypted filesystem no longer open), and
``dataset.deleted`` is journaled. Each step can be repeated, so a round that crashed
half-way is finished by the next one from the journal. The provider's approvals and the
records of the workspaces that used the version stay: the history of where the data went.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.errors import Forbidden, InvalidInput
from cleanroom.lifecycle.keys import Keyring
from cleanroom.registry.events import DatasetDeleted, DatasetDeletionRequested

REQUESTED = DatasetDeletionRequested.kind
DELETED = DatasetDeleted.kind


@dataclass
class Pending:
    """A requested deletion and what it waits for."""

    name: str
    version: str
    by: str
    waiting_for: list[str] = field(default_factory=list)


def _subject(name: str, version: str) -> str:
    return f"dataset:{name}@{version}"


def request_deletion(registry: Any, name: str, version: str, *, actor: str) -> Pending:
    """Ask for a dataset version's deletion: ``actor`` (the authenticated person) is an
    operator or an account of its provider, in standing; else Forbidden, nothing written."""
    from cleanroom.registry.governance import Governance

    dataset = registry.get_dataset(name, version)  # NotFound for an unknown version
    governance = Governance(registry)
    if not actor or not actor.strip():
        raise InvalidInput("a deletion is asked for by a signed-in person (cleanroom login)")
    actor = actor.strip()
    roles: tuple[str, ...] = ("operator",)
    if dataset.provider in governance.providers_of(actor):
        roles = ("operator", "provider")
    try:
        # A decision: the person holds the role and is in standing (second factor,
        # verified, trained, account active), as every other decision.
        governance.people.check_may_decide(actor, roles, what=f"delete {name} {version}")
    except Forbidden as exc:
        raise Forbidden(
            f"{exc}; only an operator or an account of its provider {dataset.provider!r} "
            "in standing may delete it"
        ) from exc
    governance.record(
        DatasetDeletionRequested(
            actor=actor, name=name, version=version,
            location=dataset.location, index_location=dataset.index_location or "",
        ),
        actor=actor,
    )  # fmt: skip
    pending = finish_deletions(registry)
    return next(
        (p for p in pending if (p.name, p.version) == (name, version)),
        Pending(name, version, actor),
    )


def pending_deletions(registry: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Requested deletions not yet done, by (name, version): the request's details."""
    from cleanroom.registry.governance import Governance

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in Governance(registry).journal_entries():
        if not entry.subject.startswith("dataset:"):
            continue
        name, _, version = entry.subject.split(":", 1)[1].partition("@")
        if entry.action == REQUESTED:
            found[(name, version)] = {**entry.detail, "by": entry.actor}
        elif entry.action == DELETED:
            found.pop((name, version), None)
    return found


def _users_of(registry: Any, name: str, version: str, today: date) -> tuple[list[str], list[str]]:
    """(open projects, ended projects) that mount this version."""
    open_: list[str] = []
    ended: list[str] = []
    for project in registry.list_projects():
        if any((d.name, d.version) == (name, version) for d in project.datasets):
            (open_ if project.is_open(today) else ended).append(project.name)
    return open_, ended


def _remove(path_text: str) -> int:
    if not path_text:
        return 0
    path = Path(path_text)
    library = paths.library_dir().resolve()
    indexes = paths.index_dir().resolve()
    # Never follow a record outside the library and its indexes.
    if not any(
        root == path.resolve() or root in path.resolve().parents for root in (library, indexes)
    ):
        return 0
    if library in path.resolve().parents:
        # A library version: its encrypted filesystem (locked and detached first) and
        # any clear folder of it (cleanroom.library.at_rest).
        from cleanroom.library import at_rest

        return at_rest.discard_version(path)
    if not path.exists():
        return 0
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
    if path.is_dir():
        for p in path.rglob("*"):
            p.chmod(0o700 if p.is_dir() else 0o600)  # library files are read-only
        path.chmod(0o700)
        shutil.rmtree(path)
    else:
        path.unlink()
    return size


def finish_deletions(registry: Any, today: date | None = None) -> list[Pending]:
    """Delete every requested version no open project uses; the ones still waiting."""
    from cleanroom.registry.governance import Governance

    today = today or date.today()
    waiting = []
    for (name, version), detail in pending_deletions(registry).items():
        open_, ended = _users_of(registry, name, version, today)
        if open_:
            waiting.append(Pending(name, version, detail["by"], open_))
            continue
        # Files first: a round that fails after them finds no files and retries the rows.
        freed = _remove(detail.get("location", "")) + _remove(detail.get("index_location", ""))
        # Crypto-shredding: without its key no copy of the version (an old backup's)
        # opens again. Needs no master key, so it is done even with the key source away.
        keyring = Keyring()
        if keyring.has_dataset_key(name, version):
            keyring.shred_dataset(name, version)
        Governance(registry).delete_dataset_version(
            name, version, actor="retention", requested_by=detail["by"],
            detached_from=tuple(ended), bytes_freed=freed,
        )  # fmt: skip
    return waiting
