"""The registry's reads: projects, members, users, datasets and images.

:class:`Registry` only reads (its transactions cannot write, see
:mod:`cleanroom.registry.database`); every change goes through the one writer,
:class:`cleanroom.registry.governance.Governance`, journaled in the same transaction.
Reads return plain dataclasses (never live ORM rows) so that callers, the spawner in
particular, cannot keep a session open by accident.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cleanroom import paths
from cleanroom.errors import Forbidden, NotFound
from cleanroom.registry.database import RegistryDatabase
from cleanroom.registry.models import (
    Dataset,
    DatasetApproval,
    FormerMembership,
    ImageState,
    Membership,
    Project,
    ProjectDataset,
    User,
)
from cleanroom.registry.passwords import verify_password


@dataclass(frozen=True)
class UserInfo:
    """A user as the rest of the system sees it."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class DatasetMount:
    """A dataset version a workspace mounts read-only at ``/data/<name>``."""

    name: str
    version: str
    location: str
    index_location: str | None


@dataclass(frozen=True)
class ProjectInfo:
    """A project with what a workspace of it needs."""

    name: str
    title: str
    status: str
    quota_tier: str
    ends_on: date | None
    members: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    datasets: tuple[DatasetMount, ...] = ()
    access_mode: str = "standard"

    def is_open(self, today: date | None = None) -> bool:
        """Approved and not past its end date."""
        today = today or date.today()
        return self.status == "approved" and (self.ends_on is None or self.ends_on >= today)


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset version and its files."""

    name: str
    version: str
    provider: str
    location: str
    index_location: str | None
    total_bytes: int
    files: tuple[tuple[str, int, str], ...] = field(default=())


def user_row(s: Session, name: str) -> User:
    """The user's row, or NotFound."""
    user = s.get(User, name)
    if user is None:
        raise NotFound(f"there is no user {name!r}")
    return user


def project_row(s: Session, name: str) -> Project:
    """The project's row, or NotFound."""
    project = s.get(Project, name)
    if project is None:
        raise NotFound(f"there is no project {name!r}")
    return project


def dataset_row(s: Session, name: str, version: str | None) -> Dataset:
    """A dataset version's row (the newest registered when ``version`` is None)."""
    query = select(Dataset).where(Dataset.name == name)
    if version is not None:
        query = query.where(Dataset.version == version)
    found = s.scalars(query.order_by(Dataset.registered_at.desc())).first()
    if found is None:
        label = f"{name} version {version}" if version else name
        raise NotFound(f"there is no dataset {label}")
    return found


class Registry:
    """Reads of projects, memberships, users, datasets and allowed images."""

    def __init__(self, url: str | None = None) -> None:
        self.db = RegistryDatabase(url)
        self.url = self.db.url

    def session(self) -> AbstractContextManager[Session]:
        """A read-only transaction, for reads this class does not offer."""
        return self.db.read()

    # -- users ---------------------------------------------------------------------
    def check_password(self, name: str, password: str) -> bool:
        """True when the user exists and the password matches."""
        with self.session() as s:
            user = s.get(User, name)
            return user is not None and verify_password(password, user.password_hash)

    def get_user(self, name: str) -> UserInfo:
        """A user by name, or NotFound."""
        with self.session() as s:
            user = self._user(s, name)
            return UserInfo(user.name, frozenset(user.role_set))

    def list_users(self) -> list[UserInfo]:
        """Every user, by name."""
        with self.session() as s:
            rows = s.scalars(select(User).order_by(User.name))
            return [UserInfo(u.name, frozenset(u.role_set)) for u in rows]

    # -- projects ------------------------------------------------------------------
    def get_project(self, name: str) -> ProjectInfo:
        """A project by name, or NotFound."""
        with self.session() as s:
            return self._project_info(self._project(s, name))

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, by name."""
        with self.session() as s:
            rows = s.scalars(select(Project).order_by(Project.name).options(*self._eager()))
            return [self._project_info(p) for p in rows]

    # -- members -------------------------------------------------------------------
    def affiliations_of(self, user: str) -> set[str]:
        """Every project ``user`` is or ever was a member of: current, ended, of closed
        projects, removed. Whoever is in one is not independent of its requests."""
        with self.session() as s:
            current = s.scalars(select(Membership.project_name).where(Membership.user_name == user))
            former = s.scalars(
                select(FormerMembership.project_name).where(FormerMembership.user_name == user)
            )
            return set(current) | set(former)

    def is_member(self, user: str, project: str) -> bool:
        """True when ``user`` has a current membership of ``project``."""
        with self.session() as s:
            m = s.scalar(
                select(Membership).where(
                    Membership.project_name == project, Membership.user_name == user
                )
            )
            return m is not None and (m.ends_on is None or m.ends_on >= date.today())

    def projects_of(self, user: str) -> list[ProjectInfo]:
        """The open projects ``user`` is a current member of: what they may start."""
        today = date.today()
        with self.session() as s:
            rows = s.scalars(
                select(Project)
                .join(Membership)
                .where(Membership.user_name == user)
                .where((Membership.ends_on.is_(None)) | (Membership.ends_on >= today))
                .order_by(Project.name)
                .options(*self._eager())
            )
            return [info for info in map(self._project_info, rows) if info.is_open(today)]

    # -- datasets ------------------------------------------------------------------
    def dataset_exists(self, name: str, version: str) -> bool:
        """True when that dataset version is registered."""
        with self.session() as s:
            return s.get(Dataset, (name, version)) is not None

    def list_datasets(self) -> list[DatasetInfo]:
        """Every registered dataset version."""
        with self.session() as s:
            rows = s.scalars(
                select(Dataset)
                .order_by(Dataset.name, Dataset.version)
                .options(selectinload(Dataset.files))
            )
            return [self._dataset_info(d) for d in rows]

    def get_dataset(self, name: str, version: str | None = None) -> DatasetInfo:
        """A dataset version (the newest registered when ``version`` is None)."""
        with self.session() as s:
            return self._dataset_info(self._dataset(s, name, version))

    # -- spawn-time decision -------------------------------------------------------
    def workspace_plan(self, user: str, project: str) -> ProjectInfo:
        """What ``user`` may run for ``project``, or a clear refusal.

        Called by the spawner at every start, so membership, status and end dates are
        always read fresh.
        """
        with self.session() as s:
            p = s.get(Project, project)
            if p is None:
                raise NotFound(f"there is no project {project!r}")
            info = self._project_info(p)
        if user not in info.members or not self.is_member(user, project):
            raise Forbidden(f"{user!r} is not a member of project {project!r}")
        if info.status != "approved":
            raise Forbidden(f"project {project!r} is {info.status}, not approved")
        if not info.is_open():
            raise Forbidden(f"project {project!r} ended on {info.ends_on}")
        unapproved = self.unapproved_datasets(project)
        if unapproved:
            raise Forbidden(
                f"project {project!r} may not use "
                + ", ".join(f"dataset {d.name} version {d.version}" for d in unapproved)
                + " until its provider approves (cleanroom datasets approve)"
            )
        # The data's classification and quality (cleanroom.library): a quarantined
        # version, or a project short of the controls its data needs, is refused here.
        from cleanroom.library.classification import check_project

        check_project(self, project, info.quota_tier)
        retired = self.retired_images()
        usable = tuple(i for i in info.images if i not in retired)
        if not usable:
            raise Forbidden(
                f"every image project {project!r} allows is retired "
                f"({', '.join(info.images)}); an operator must allow a current one"
            )
        return replace(info, images=usable)

    def unapproved_datasets(self, project: str) -> list[DatasetMount]:
        """The dataset versions ``project`` mounts without a current provider approval."""
        with self.session() as s:
            links = s.scalars(select(ProjectDataset).where(ProjectDataset.project_name == project))
            approved = {
                (a.dataset_name, a.dataset_version)
                for a in s.scalars(
                    select(DatasetApproval).where(
                        DatasetApproval.project_name == project,
                        DatasetApproval.revoked_at.is_(None),
                    )
                )
            }
            return [
                DatasetMount(
                    d.dataset.name, d.dataset.version, d.dataset.location, d.dataset.index_location
                )
                for d in sorted(links, key=lambda link: link.dataset_name)
                if (d.dataset_name, d.dataset_version) not in approved
            ]

    def retired_images(self) -> set[str]:
        """Image names no new workspace may run."""
        with self.session() as s:
            return set(s.scalars(select(ImageState.name).where(ImageState.status == "retired")))

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _eager() -> tuple[Any, ...]:
        return (
            selectinload(Project.memberships),
            selectinload(Project.images),
            selectinload(Project.datasets).selectinload(ProjectDataset.dataset),
        )

    _user = staticmethod(user_row)
    _project = staticmethod(project_row)
    _dataset = staticmethod(dataset_row)

    @staticmethod
    def _project_info(p: Project) -> ProjectInfo:
        return ProjectInfo(
            name=p.name,
            title=p.title,
            status=p.status,
            quota_tier=p.quota_tier,
            ends_on=p.ends_on,
            access_mode=p.access_mode or "standard",
            members=tuple(sorted(m.user_name for m in p.memberships)),
            images=tuple(i.image for i in p.images),
            datasets=tuple(
                DatasetMount(
                    d.dataset.name, d.dataset.version, d.dataset.location, d.dataset.index_location
                )
                for d in sorted(p.datasets, key=lambda link: link.dataset_name)
            ),
        )

    @staticmethod
    def _dataset_info(d: Dataset) -> DatasetInfo:
        return DatasetInfo(
            name=d.name,
            version=d.version,
            provider=d.provider,
            location=d.location,
            index_location=d.index_location,
            total_bytes=d.total_bytes,
            files=tuple((f.path, f.size, f.sha256) for f in d.files),
        )


@functools.cache
def _shared(url: str) -> Registry:
    return Registry(url)


def shared_registry(url: str | None = None) -> Registry:
    """One registry (and so one connection pool) per URL for a long-running process."""
    return _shared(url or paths.registry_url())
