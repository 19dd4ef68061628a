"""The registry's writes of the data library's cards: a version registered with its card
(classification, schema, quality report), a classification changed, a quarantined version
accepted by its provider.

Part of the registry's one writer (:class:`cleanroom.registry.governance.Governance`
inherits these): each validates first (a refusal writes nothing), and changes rows and
journals its typed event in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import events
from cleanroom.registry.backbone import actor_name, add_dataset_rows
from cleanroom.registry.database import RegistryDatabase
from cleanroom.registry.models import (
    Dataset,
    DatasetApproval,
    DatasetCard,
    ProjectDataset,
    ProviderAccount,
    User,
)
from cleanroom.registry.store import DatasetInfo, dataset_row, project_row

CARD_STATUSES = ("verified", "profiled", "quarantined")
"""What registration may record; ``accepted`` is reached only by the provider's act."""


@dataclass(frozen=True)
class NewCard:
    """What registration records on a version's card."""

    classification: str
    status: str
    description: str = ""
    licence: str = ""
    table_schema: dict[str, Any] | None = None
    quality: dict[str, Any] = field(default_factory=dict)


def _classification(name: str) -> str:
    from cleanroom.library.classification import load_policy

    return load_policy().get(name).name


def _acts_for(s: Any, user: str, provider: str) -> bool:
    return (
        s.scalar(
            select(ProviderAccount).where(
                ProviderAccount.provider == provider, ProviderAccount.user_name == user
            )
        )
        is not None
    )


class LibraryWrites:
    """Writes of dataset cards (mixed into ``Governance``)."""

    db: RegistryDatabase

    if TYPE_CHECKING:

        def _decider(self, actor: str, role: str, what: str) -> str: ...

    def register_dataset_version(
        self, dataset: DatasetInfo, card: NewCard, *, actor: str
    ) -> DatasetInfo:
        """Record a dataset version (files already in the library) with its card, in one
        transaction and one ``dataset.register`` entry that carries the card's summary."""
        actor = actor_name(actor)
        classification = _classification(card.classification)
        if card.status not in CARD_STATUSES:
            raise InvalidInput(
                f"card status {card.status!r} must be one of {', '.join(CARD_STATUSES)}"
            )
        report = json.dumps(card.quality, sort_keys=True, default=str)
        schema = json.dumps(card.table_schema, sort_keys=True) if card.table_schema else ""
        summary = card.quality.get("summary", {})
        with self.db.write() as tx:
            add_dataset_rows(
                tx,
                dataset,
                actor,
                card={
                    "classification": classification,
                    "status": card.status,
                    "schema": card.table_schema is not None,
                    "rows": int(summary.get("rows", 0)),
                    "errors": int(summary.get("errors", 0)),
                },
            )
            tx.session.flush()
            tx.session.add(
                DatasetCard(
                    dataset_name=dataset.name,
                    dataset_version=dataset.version,
                    classification=classification,
                    description=card.description.strip(),
                    licence=card.licence.strip(),
                    status=card.status,
                    table_schema=schema,
                    quality_report=report,
                )
            )
        return dataset

    def classify_dataset(self, name: str, version: str, classification: str, *, actor: str) -> str:
        """Set a version's classification: by a user of its provider, or an operator, in
        standing. Returns the classification before."""
        actor = actor_name(actor)
        after = _classification(classification)
        with self.db.read() as s:
            d = dataset_row(s, name, version)
            provider = d.provider
            own = _acts_for(s, actor, provider)
            user = s.get(User, actor)
            roles = user.role_set if user else set()
        role = "provider" if own and "provider" in roles else "operator"
        if role == "operator" and "operator" not in roles:
            raise Forbidden(
                f"{actor!r} neither acts for {provider!r}, the provider of {name} version "
                f"{version}, nor is an operator, and may not classify it"
            )
        by = self._decider(actor, role, "classify a dataset version")
        with self.db.write() as tx:
            d = dataset_row(tx.session, name, version)
            row = tx.session.get(DatasetCard, (d.name, d.version))
            if row is None:
                from cleanroom.library.classification import load_policy

                row = DatasetCard(
                    dataset_name=d.name,
                    dataset_version=d.version,
                    classification=load_policy().default,
                    status="profiled",
                )
                tx.session.add(row)
            before = row.classification
            if before == after:
                raise Conflict(f"{d.name} version {d.version} is {after} already")
            row.classification = after
            tx.journal(
                events.DatasetClassified(
                    actor=by, dataset=d.name, version=d.version, before=before, after=after
                )
            )
        return before

    def accept_dataset_version(self, name: str, version: str, reason: str, *, actor: str) -> None:
        """The provider's user ``actor`` (in standing) accepts a quarantined version with
        ``reason``: from now on workspaces may mount it."""
        by = self._decider(actor, "provider", "accept a quarantined dataset version")
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("say why the version is acceptable despite its quality report")
        with self.db.write() as tx:
            s = tx.session
            d: Dataset = dataset_row(s, name, version)
            if not _acts_for(s, by, d.provider):
                raise Forbidden(
                    f"{by!r} does not act for {d.provider!r}, the provider of dataset "
                    f"{d.name} version {d.version}"
                )
            row = s.get(DatasetCard, (d.name, d.version))
            if row is None or row.status != "quarantined":
                status = row.status if row else "profiled"
                raise Conflict(f"{d.name} version {d.version} is {status}, not quarantined")
            report = json.loads(row.quality_report or "{}")
            row.status = "accepted"
            row.accepted_by, row.accepted_at, row.accept_reason = by, datetime.now(UTC), reason
            tx.journal(
                events.DatasetAccepted(
                    actor=by,
                    dataset=d.name,
                    version=d.version,
                    provider=d.provider,
                    errors=int(report.get("summary", {}).get("errors", 0)),
                    reason=reason,
                )
            )

    def decline_dataset_use(
        self, project: str, dataset: str, version: str, reason: str, *, actor: str
    ) -> bool:
        """The provider's user ``actor`` (in standing) declines ``project``'s use of a
        version it mounts or was approved for, with ``reason``; a current approval is
        withdrawn in the same act. Returns whether one was."""
        by = self._decider(actor, "provider", "decline dataset use")
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("say why the project may not use the data")
        with self.db.write() as tx:
            s = tx.session
            project_row(s, project)
            d: Dataset = dataset_row(s, dataset, version)
            if not _acts_for(s, by, d.provider):
                raise Forbidden(
                    f"{by!r} does not act for {d.provider!r}, the provider of dataset "
                    f"{d.name} version {d.version}"
                )
            link = s.scalar(
                select(ProjectDataset).where(
                    ProjectDataset.project_name == project,
                    ProjectDataset.dataset_name == d.name,
                    ProjectDataset.dataset_version == d.version,
                )
            )
            approval = s.scalar(
                select(DatasetApproval).where(
                    DatasetApproval.project_name == project,
                    DatasetApproval.dataset_name == d.name,
                    DatasetApproval.dataset_version == d.version,
                    DatasetApproval.revoked_at.is_(None),
                )
            )
            if link is None and approval is None:
                raise NotFound(f"{project!r} neither mounts nor may use {d.name} {d.version}")
            if approval is not None:
                approval.revoked_by, approval.revoked_at = by, datetime.now(UTC)
            tx.journal(
                events.DatasetUseDeclined(
                    actor=by,
                    project=project,
                    dataset=d.name,
                    version=d.version,
                    provider=d.provider,
                    reason=reason,
                    revoked=approval is not None,
                )
            )
            return approval is not None
