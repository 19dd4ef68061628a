"""The registry: projects, members, users, datasets and images, behind one class.

Reads return plain dataclasses (never live ORM rows) so that callers, the spawner in
particular, cannot keep a session open by accident. Every write validates first and
changes nothing on a refusal.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from cleanroom import paths
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import names
from cleanroom.registry.models import (
    Base,
    Dataset,
    DatasetApproval,
    DatasetFile,
    FormerMembership,
    ImageState,
    Membership,
    Project,
    ProjectDataset,
    ProjectImage,
    User,
)
from cleanroom.registry.passwords import hash_password, verify_password


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


def _enable_sqlite_pragmas(engine: Engine) -> None:
    # WAL lets the hub read while the command line writes; foreign keys keep rows whole.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


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
    """Projects, memberships, users, datasets and allowed images."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or paths.registry_url()
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            _enable_sqlite_pragmas(self.engine)
        had_approvals = inspect(self.engine).has_table("dataset_approvals")
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if not had_approvals:
            self._grandfather_dataset_links()

    def _grandfather_dataset_links(self) -> None:
        """Upgrade step, run once when provider approvals are introduced.

        Links made before providers approved each use were made by an operator on the
        provider's behalf; recording them as approved (by ``upgrade``, visibly) keeps a
        running deployment's workspaces starting, while every new link needs a provider.
        """
        from cleanroom.registry import journal

        with self.session() as s:
            links = list(s.scalars(select(ProjectDataset)))
            for link in links:
                s.add(
                    DatasetApproval(
                        project_name=link.project_name,
                        dataset_name=link.dataset_name,
                        dataset_version=link.dataset_version,
                        approved_by="upgrade",
                    )
                )
            if links:
                journal.append(
                    s,
                    "upgrade",
                    "dataset.approvals.grandfathered",
                    "registry",
                    links=[f"{x.project_name}:{x.dataset_name}@{x.dataset_version}" for x in links],
                )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    # -- users ---------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        roles: list[str] | tuple[str, ...] = ("researcher",),
        password: str | None = None,
    ) -> UserInfo:
        """Create a user; an existing name is a conflict."""
        names.user_name(name)
        role_list = names.roles(roles)
        with self.session() as s:
            if s.get(User, name) is not None:
                raise Conflict(f"user {name!r} exists already")
            s.add(
                User(
                    name=name,
                    roles=",".join(role_list),
                    password_hash=hash_password(password) if password else None,
                )
            )
        return UserInfo(name, frozenset(role_list))

    def set_password(self, name: str, password: str) -> None:
        """Set (or replace) a user's password."""
        if len(password) < 8:
            raise InvalidInput("a password needs at least 8 characters")
        with self.session() as s:
            user = self._user(s, name)
            user.password_hash = hash_password(password)

    def set_roles(self, name: str, roles: list[str]) -> UserInfo:
        """Replace a user's roles."""
        role_list = names.roles(roles)
        with self.session() as s:
            self._user(s, name).roles = ",".join(role_list)
        return UserInfo(name, frozenset(role_list))

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
    def create_project(
        self,
        name: str,
        title: str,
        *,
        images: tuple[str, ...] = ("notebook",),
        quota_tier: str = "standard",
        ends_on: date | None = None,
        created_by: str = "",
    ) -> ProjectInfo:
        """Create an approved project allowed to run ``images``."""
        names.project_name(name)
        if not title.strip():
            raise InvalidInput("a project needs a title")
        with self.session() as s:
            if s.get(Project, name) is not None:
                raise Conflict(f"project {name!r} exists already")
            project = Project(
                name=name,
                title=title.strip(),
                quota_tier=quota_tier,
                ends_on=ends_on,
                created_by=created_by,
            )
            project.images = [ProjectImage(image=i) for i in dict.fromkeys(images)]
            s.add(project)
        return self.get_project(name)

    def get_project(self, name: str) -> ProjectInfo:
        """A project by name, or NotFound."""
        with self.session() as s:
            return self._project_info(self._project(s, name))

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, by name."""
        with self.session() as s:
            rows = s.scalars(select(Project).order_by(Project.name).options(*self._eager()))
            return [self._project_info(p) for p in rows]

    def set_project_status(self, name: str, status: str) -> ProjectInfo:
        """Approve, suspend or close a project (``approved``, ``suspended``, ``closed``)."""
        if status not in {"approved", "suspended", "closed"}:
            raise InvalidInput(f"unknown status {status!r}: use approved, suspended or closed")
        with self.session() as s:
            self._project(s, name).status = status
        return self.get_project(name)

    def allow_image(self, project: str, image: str) -> None:
        """Let a project's workspaces run ``image``."""
        with self.session() as s:
            p = self._project(s, project)
            if image not in {i.image for i in p.images}:
                p.images.append(ProjectImage(image=image))

    # -- members -------------------------------------------------------------------
    def add_member(
        self, project: str, user: str, *, added_by: str = "", ends_on: date | None = None
    ) -> None:
        """Make ``user`` a member of ``project``."""
        with self.session() as s:
            p = self._project(s, project)
            self._user(s, user)
            if any(m.user_name == user for m in p.memberships):
                raise Conflict(f"{user!r} is a member of {project!r} already")
            p.memberships.append(Membership(user_name=user, added_by=added_by, ends_on=ends_on))

    def remove_member(self, project: str, user: str, *, removed_by: str = "") -> None:
        """End ``user``'s membership of ``project``, remembering that they were one."""
        with self.session() as s:
            p = self._project(s, project)
            gone = [m for m in p.memberships if m.user_name == user]
            if not gone:
                raise NotFound(f"{user!r} is not a member of {project!r}")
            p.memberships = [m for m in p.memberships if m.user_name != user]
            s.add(
                FormerMembership(
                    project_name=project,
                    user_name=user,
                    added_at=gone[0].added_at,
                    removed_by=removed_by,
                )
            )

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
    def add_dataset(self, dataset: DatasetInfo, *, registered_by: str = "") -> DatasetInfo:
        """Record a dataset version whose files are already in the library."""
        with self.session() as s:
            if s.get(Dataset, (dataset.name, dataset.version)) is not None:
                raise Conflict(f"dataset {dataset.name} version {dataset.version} exists already")
            s.add(
                Dataset(
                    name=dataset.name,
                    version=dataset.version,
                    provider=dataset.provider,
                    location=dataset.location,
                    index_location=dataset.index_location,
                    total_bytes=dataset.total_bytes,
                    registered_by=registered_by,
                    files=[DatasetFile(path=p, size=n, sha256=h) for p, n, h in dataset.files],
                )
            )
        return dataset

    def set_index_location(self, name: str, version: str, location: str) -> None:
        """Record where a dataset version's disclosure-check index lives."""
        with self.session() as s:
            self._dataset(s, name, version).index_location = location

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

    def attach_dataset(self, project: str, dataset: str, version: str | None = None) -> None:
        """Let ``project`` mount ``dataset`` (a given version, or the newest)."""
        with self.session() as s:
            p = self._project(s, project)
            d = self._dataset(s, dataset, version)
            for link in p.datasets:
                if link.dataset_name == dataset:
                    link.dataset_version = d.version
                    return
            p.datasets.append(ProjectDataset(dataset_name=d.name, dataset_version=d.version))

    def detach_dataset(self, project: str, dataset: str) -> None:
        """Stop ``project`` mounting ``dataset``."""
        with self.session() as s:
            p = self._project(s, project)
            kept = [d for d in p.datasets if d.dataset_name != dataset]
            if len(kept) == len(p.datasets):
                raise NotFound(f"project {project!r} does not use dataset {dataset!r}")
            p.datasets = kept

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
