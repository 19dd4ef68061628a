"""What the operators' console shows: projects, people, images and running workspaces,
read a page at a time so that ten thousand rows never make one page slow.

Reads only. Lists are paged in the database (``LIMIT``/``OFFSET`` with a count); a
person's standing comes from the domain's own reading of it
(:meth:`cleanroom.registry.people.People.standing`), only for the people on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from cleanroom.errors import InvalidInput
from cleanroom.registry import Registry
from cleanroom.registry.models import (
    AccountState,
    ImageState,
    Membership,
    Project,
    ProjectDataset,
    User,
)
from cleanroom.registry.people import Standing, shared_people

PAGE_SIZE = 50
"""Rows on one page of a console list."""


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, how many match in all, and its number."""

    rows: list[Any]
    total: int
    number: int

    @property
    def more(self) -> bool:
        """True when a next page exists."""
        return self.number * PAGE_SIZE < self.total


def page_number(value: str) -> int:
    """``?page=`` as a number from 1 (a bad one is refused, as in the catalogue)."""
    if not value.isdecimal() or not 1 <= int(value) <= 1_000_000:
        raise InvalidInput(f"page must be a whole number from 1, not {value!r}")
    return int(value)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


@dataclass(frozen=True)
class MemberRow:
    """One membership of a project, with its end date."""

    user: str
    ends_on: date | None


@dataclass(frozen=True)
class ProjectRow:
    """A project as the console lists it."""

    name: str
    title: str
    status: str
    ends_on: date | None
    quota_tier: str
    access_mode: str
    images: tuple[str, ...]
    datasets: tuple[str, ...]
    members: tuple[MemberRow, ...]


def projects_page(registry: Registry, q: str, number: int) -> Page:
    """Projects whose name or title holds ``q``, by name, one page of them."""
    with registry.session() as s:
        where = []
        if q:
            pattern = _like(q)
            where.append(
                func.lower(Project.name).like(pattern, escape="\\")
                | func.lower(Project.title).like(pattern, escape="\\")
            )
        total = s.scalar(select(func.count()).select_from(Project).where(*where)) or 0
        rows = s.scalars(
            select(Project)
            .where(*where)
            .order_by(Project.name)
            .offset((number - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
            .options(
                selectinload(Project.memberships),
                selectinload(Project.images),
                selectinload(Project.datasets).selectinload(ProjectDataset.dataset),
            )
        )
        found = [_project_row(p) for p in rows]
    return Page(found, total, number)


def project_state(registry: Registry, name: str) -> ProjectRow | None:
    """One project's row (None when there is none: the domain refuses acts on it)."""
    with registry.session() as s:
        p = s.get(Project, name)
        return _project_row(p) if p is not None else None


def _project_row(p: Project) -> ProjectRow:
    return ProjectRow(
        name=p.name,
        title=p.title,
        status=p.status,
        ends_on=p.ends_on,
        quota_tier=p.quota_tier,
        access_mode=p.access_mode or "standard",
        images=tuple(sorted(i.image for i in p.images)),
        datasets=tuple(sorted(f"{d.dataset_name} {d.dataset_version}" for d in p.datasets)),
        members=tuple(
            MemberRow(m.user_name, m.ends_on)
            for m in sorted(p.memberships, key=lambda m: m.user_name)
        ),
    )


@dataclass(frozen=True)
class PersonRow:
    """A person as the console lists them: roles and standing, lock and expiry."""

    name: str
    standing: Standing
    locked: bool
    expires_on: date | None
    disabled_reason: str


def people_page(registry: Registry, q: str, number: int) -> Page:
    """People whose name holds ``q``, by name, one page of them with their standing."""
    people = shared_people(registry)
    with registry.session() as s:
        where = [func.lower(User.name).like(_like(q), escape="\\")] if q else []
        total = s.scalar(select(func.count()).select_from(User).where(*where)) or 0
        names = list(
            s.scalars(
                select(User.name)
                .where(*where)
                .order_by(User.name)
                .offset((number - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
        states = {
            a.user_name: a
            for a in s.scalars(select(AccountState).where(AccountState.user_name.in_(names)))
        }
    rows = []
    for name in names:
        state = states.get(name)
        rows.append(
            PersonRow(
                name=name,
                standing=people.standing(name),
                locked=people.is_locked(name),
                expires_on=state.expires_on if state else None,
                disabled_reason=state.reason if state and state.disabled else "",
            )
        )
    return Page(rows, total, number)


def person_row(registry: Registry, name: str) -> PersonRow | None:
    """One person's row (None when there is no such person)."""
    with registry.session() as s:
        if s.get(User, name) is None:
            return None
        state = s.get(AccountState, name)
    people = shared_people(registry)
    return PersonRow(
        name=name,
        standing=people.standing(name),
        locked=people.is_locked(name),
        expires_on=state.expires_on if state else None,
        disabled_reason=state.reason if state and state.disabled else "",
    )


def account_expiry(registry: Registry, name: str) -> date | None:
    """The day after which ``name`` may not sign in (None: no expiry, or no such person)."""
    with registry.session() as s:
        state = s.get(AccountState, name)
        return state.expires_on if state else None


def member_end(registry: Registry, project: str, user: str) -> tuple[bool, date | None]:
    """(is a member, their end date) of ``user`` on ``project``."""
    with registry.session() as s:
        m = s.scalar(
            select(Membership).where(
                Membership.project_name == project, Membership.user_name == user
            )
        )
        return (m is not None, m.ends_on if m else None)


@dataclass(frozen=True)
class ImageRow:
    """A workspace image and the deployment's decision on it."""

    name: str
    status: str
    changed_by: str
    reason: str
    projects: int


def images_view(registry: Registry) -> list[ImageRow]:
    """Every workspace image the build defines, with its state (allowed unless retired)
    and how many projects allow it."""
    from cleanroom.images.build import WORKSPACE_IMAGES
    from cleanroom.registry.models import ProjectImage

    with registry.session() as s:
        states = {i.name: i for i in s.scalars(select(ImageState))}
        counts = dict(
            s.execute(select(ProjectImage.image, func.count()).group_by(ProjectImage.image)).all()
        )
    rows = []
    for name in WORKSPACE_IMAGES:
        state = states.get(name)
        rows.append(
            ImageRow(
                name=name,
                status=state.status if state else "allowed",
                changed_by=state.changed_by if state else "",
                reason=state.reason if state else "",
                projects=int(counts.get(name, 0)),
            )
        )
    return rows


def image_status(registry: Registry, name: str) -> str:
    """An image's state now: ``allowed`` (the default) or ``retired``."""
    with registry.session() as s:
        row = s.get(ImageState, name)
        return row.status if row else "allowed"


def running_view(instance: str) -> dict[str, Any]:
    """What runs now on this deployment's backend: on Docker the rows ``cleanroom status``
    shows (with CPU and memory use), on Kubernetes the workspace pods (phase and limits)."""
    from cleanroom.kubernetes.hub_config import backend

    kind = backend()
    if kind == "kubernetes":
        from cleanroom.kubernetes.workloads import workspace_pods

        return {"backend": kind, "workspaces": [], "pods": workspace_pods(instance=instance)}
    from cleanroom.workspace.status import running_workspaces

    return {"backend": kind, "workspaces": running_workspaces(instance), "pods": []}
