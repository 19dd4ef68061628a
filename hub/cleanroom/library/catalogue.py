"""Reads of the data library's cards: what the catalogue shows of each dataset version
(never the data), and what the spawner asks of the versions a project mounts.

A version registered before cards existed has no card row: it reads as the policy's
default classification, ``profiled`` with an empty report, so that it stays usable as it
was (nothing about it was ever verified, and the card says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import selectinload

from cleanroom.registry.models import Dataset, DatasetCard, ProjectDataset
from cleanroom.registry.store import Registry, dataset_row

STATUSES = ("verified", "profiled", "quarantined", "accepted")
"""A card's status: ``quarantined`` is the only one no workspace may mount."""
UNUSABLE = frozenset({"quarantined"})


@dataclass(frozen=True)
class CardInfo:
    """A dataset version's card as the catalogue shows it."""

    name: str
    version: str
    provider: str
    classification: str
    description: str
    licence: str
    status: str
    total_bytes: int
    registered_at: datetime | None
    registered_by: str
    files: tuple[tuple[str, int, str], ...]
    table_schema: dict[str, Any] | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    accepted_by: str | None = None
    accept_reason: str = ""

    @property
    def usable(self) -> bool:
        """Whether a workspace may mount this version."""
        return self.status not in UNUSABLE


def _default_classification() -> str:
    from cleanroom.library.classification import load_policy

    return load_policy().default


def _card(d: Dataset, row: DatasetCard | None, default: str) -> CardInfo:
    return CardInfo(
        name=d.name,
        version=d.version,
        provider=d.provider,
        classification=row.classification if row else default,
        description=(row.description if row else "") or d.description,
        licence=row.licence if row else "",
        status=row.status if row else "profiled",
        total_bytes=d.total_bytes,
        registered_at=d.registered_at,
        registered_by=d.registered_by,
        files=tuple((f.path, f.size, f.sha256) for f in d.files),
        table_schema=json.loads(row.table_schema) if row and row.table_schema else None,
        quality=json.loads(row.quality_report) if row else {},
        accepted_by=row.accepted_by if row else None,
        accept_reason=row.accept_reason if row else "",
    )


def get_card(registry: Registry, name: str, version: str | None = None) -> CardInfo:
    """The card of ``name`` ``version`` (the newest when None), or NotFound."""
    with registry.session() as s:
        d = dataset_row(s, name, version)
        row = s.get(DatasetCard, (d.name, d.version))
        return _card(d, row, row.classification if row else _default_classification())


def list_cards(registry: Registry) -> list[CardInfo]:
    """Every version's card, by dataset name and version."""
    return find_cards(registry, limit=None)[0]


def _like(word: str) -> str:
    """``word`` as a LIKE pattern that matches it anywhere, its wildcards taken literally."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_cards(
    registry: Registry,
    q: str = "",
    *,
    offset: int = 0,
    limit: int | None = 100,
    usable_only: bool = False,
    providers: list[str] | None = None,
) -> tuple[list[CardInfo], int]:
    """One page of cards, by dataset name and version, and how many match in all.

    ``q``: words that must each appear in the name, provider, description or
    classification (case-insensitive); ``usable_only``: leave quarantined versions out;
    ``providers``: only theirs. Filtered, counted and paged by the database, so a page
    costs the same with ten versions stored or ten thousand.
    """
    default = _default_classification()
    card_of = and_(
        DatasetCard.dataset_name == Dataset.name, DatasetCard.dataset_version == Dataset.version
    )
    text = func.lower(
        Dataset.name
        + " "
        + Dataset.provider
        + " "
        + func.coalesce(func.nullif(DatasetCard.description, ""), Dataset.description, "")
        + " "
        + func.coalesce(DatasetCard.classification, literal(default))
    )
    query = select(Dataset, DatasetCard).outerjoin(DatasetCard, card_of)
    for word in q.lower().split():
        query = query.where(text.like(_like(word), escape="\\"))
    if usable_only:
        query = query.where(
            or_(DatasetCard.status.is_(None), DatasetCard.status.not_in(sorted(UNUSABLE)))
        )
    if providers is not None:
        query = query.where(Dataset.provider.in_(providers))
    with registry.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        page = (
            query.order_by(Dataset.name, Dataset.version)
            .offset(offset)
            .limit(limit)
            .options(selectinload(Dataset.files))
        )
        cards = [
            _card(d, row, row.classification if row else default) for d, row in s.execute(page)
        ]
        return cards, int(total)


def versions_of(registry: Registry, name: str) -> list[str]:
    """The versions of dataset ``name``, in order."""
    with registry.session() as s:
        return list(
            s.scalars(select(Dataset.version).where(Dataset.name == name).order_by(Dataset.version))
        )


def _mounted(registry: Registry, project: str) -> list[tuple[str, str, DatasetCard | None]]:
    with registry.session() as s:
        links = s.scalars(
            select(ProjectDataset)
            .where(ProjectDataset.project_name == project)
            .order_by(ProjectDataset.dataset_name)
        )
        return [
            (
                link.dataset_name,
                link.dataset_version,
                s.get(DatasetCard, (link.dataset_name, link.dataset_version)),
            )
            for link in links
        ]


def project_classifications(registry: Registry, project: str) -> list[tuple[str, str, str]]:
    """``(dataset, version, classification)`` of every version ``project`` mounts."""
    mounted = _mounted(registry, project)
    if not mounted:
        return []
    default = _default_classification() if any(card is None for _, _, card in mounted) else ""
    return [(d, v, card.classification if card else default) for d, v, card in mounted]


def quarantined_versions(registry: Registry, project: str) -> list[tuple[str, str]]:
    """The versions ``project`` mounts that no workspace may mount yet."""
    return [
        (d, v)
        for d, v, card in _mounted(registry, project)
        if card is not None and card.status in UNUSABLE
    ]
