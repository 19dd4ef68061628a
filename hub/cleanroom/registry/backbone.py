"""The registry's backbone writes: users, projects, members and datasets.

Part of the registry's one writer (:class:`cleanroom.registry.governance.Governance`
inherits these): each method validates first (a refusal writes nothing), changes rows in
one :meth:`~cleanroom.registry.database.RegistryDatabase.write` transaction and journals
its typed event in that same transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import events, names
from cleanroom.registry.database import RegistryDatabase, Write
from cleanroom.registry.models import (
    Dataset,
    DatasetFile,
    FormerMembership,
    ImageState,
    Membership,
    Project,
    ProjectDataset,
    ProjectImage,
    User,
)
from cleanroom.registry.passwords import hash_password
from cleanroom.registry.store import (
    DatasetInfo,
    UserInfo,
    dataset_row,
    project_row,
    user_row,
)
from cleanroom.workspace.quotas import load_tiers

PROJECT_STATUSES = ("approved", "suspended", "closed")
MIN_PASSWORD = 8


def actor_name(value: str) -> str:
    """The actor, stripped; every act needs one."""
    if not value or not value.strip():
        raise InvalidInput("every act needs an actor (who does it)")
    return value.strip()


def check_tier(name: str) -> None:
    """Refuse a quota tier the policy does not define, naming those it does."""
    tiers = load_tiers()
    if name not in tiers:
        raise InvalidInput(f"unknown quota tier {name!r}; known tiers: {', '.join(sorted(tiers))}")


def check_known_image(name: str) -> None:
    """Refuse an image name the image build does not define as a workspace image (the
    viewer is a service of the restricted mode), naming those it does."""
    from cleanroom.images.build import WORKSPACE_IMAGES

    if name not in WORKSPACE_IMAGES:
        raise InvalidInput(f"unknown image {name!r}; known: {', '.join(WORKSPACE_IMAGES)}")


def check_images_usable(s: Session, images: tuple[str, ...] | list[str]) -> None:
    """Refuse giving a project an unknown image, or one the deployment retired
    (``images retire``): no workspace of it could start."""
    if not images:
        raise InvalidInput("a project needs at least one image")
    for name in images:
        check_known_image(name)
    retired = set(s.scalars(select(ImageState.name).where(ImageState.status == "retired")))
    hit = [i for i in images if i in retired]
    if hit:
        raise Forbidden(
            f"image {', '.join(hit)} is retired; allow it again first (cleanroom images allow)"
        )


class BackboneWrites:
    """Writes of users, projects, members and datasets (mixed into ``Governance``)."""

    db: RegistryDatabase

    # -- users ---------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        roles: list[str] | tuple[str, ...] = ("researcher",),
        password: str | None = None,
        *,
        actor: str,
    ) -> UserInfo:
        """Create a user; an existing name is a conflict."""
        actor = actor_name(actor)
        names.user_name(name)
        role_list = names.roles(roles)
        if password is not None:
            _check_password(password)
        with self.db.write() as tx:
            if tx.session.get(User, name) is not None:
                raise Conflict(f"user {name!r} exists already")
            tx.session.add(
                User(
                    name=name,
                    roles=",".join(role_list),
                    password_hash=hash_password(password) if password else None,
                )
            )
            tx.journal(
                events.UserAdded(
                    actor=actor, user=name, roles=tuple(role_list), password=bool(password)
                )
            )
        return UserInfo(name, frozenset(role_list))

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        """Set (or replace) a user's password."""
        actor = actor_name(actor)
        _check_password(password)
        with self.db.write() as tx:
            user_row(tx.session, name).password_hash = hash_password(password)
            tx.journal(events.PasswordSet(actor=actor, user=name))

    def set_roles(self, name: str, roles: list[str], *, actor: str) -> UserInfo:
        """Replace a user's roles."""
        actor = actor_name(actor)
        role_list = names.roles(roles)
        with self.db.write() as tx:
            user = user_row(tx.session, name)
            before = tuple(r for r in user.roles.split(",") if r)
            user.roles = ",".join(role_list)
            tx.journal(
                events.RolesSet(actor=actor, user=name, before=before, after=tuple(role_list))
            )
        return UserInfo(name, frozenset(role_list))

    # -- projects ------------------------------------------------------------------
    def create_project(
        self,
        name: str,
        title: str,
        *,
        actor: str,
        images: tuple[str, ...] = ("notebook",),
        quota_tier: str = "standard",
        ends_on: date | None = None,
    ) -> None:
        """Create an approved project allowed to run ``images``.

        An unknown quota tier or a retired image is refused before anything is written
        (a project that no workspace could start is not a project).
        """
        actor = actor_name(actor)
        names.project_name(name)
        if not title.strip():
            raise InvalidInput("a project needs a title")
        check_tier(quota_tier)
        images = tuple(dict.fromkeys(images))
        with self.db.write() as tx:
            s = tx.session
            if s.get(Project, name) is not None:
                raise Conflict(f"project {name!r} exists already")
            check_images_usable(s, images)
            project = Project(
                name=name,
                title=title.strip(),
                quota_tier=quota_tier,
                ends_on=ends_on,
                created_by=actor,
            )
            project.images = [ProjectImage(image=i) for i in images]
            s.add(project)
            tx.journal(
                events.ProjectCreated(
                    actor=actor,
                    project=name,
                    title=title.strip(),
                    tier=quota_tier,
                    images=images,
                    ends_on=ends_on,
                )
            )

    def set_project_status(self, name: str, status: str, *, actor: str) -> None:
        """Approve, suspend or close a project."""
        actor = actor_name(actor)
        if status not in PROJECT_STATUSES:
            raise InvalidInput(f"unknown status {status!r}: use {', '.join(PROJECT_STATUSES)}")
        with self.db.write() as tx:
            project = project_row(tx.session, name)
            before = project.status
            project.status = status
            tx.journal(
                events.ProjectStatusSet(actor=actor, project=name, before=before, after=status)
            )

    # -- members -------------------------------------------------------------------
    def add_member(
        self, project: str, user: str, *, actor: str, ends_on: date | None = None
    ) -> None:
        """Make ``user`` a member of ``project``."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            p = project_row(tx.session, project)
            user_row(tx.session, user)
            if any(m.user_name == user for m in p.memberships):
                raise Conflict(f"{user!r} is a member of {project!r} already")
            p.memberships.append(Membership(user_name=user, added_by=actor, ends_on=ends_on))
            tx.journal(events.MemberAdded(actor=actor, project=project, user=user, ends_on=ends_on))

    def remove_member(self, project: str, user: str, *, actor: str) -> None:
        """End ``user``'s membership of ``project``, remembering that they were one."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            p = project_row(tx.session, project)
            gone = [m for m in p.memberships if m.user_name == user]
            if not gone:
                raise NotFound(f"{user!r} is not a member of {project!r}")
            p.memberships = [m for m in p.memberships if m.user_name != user]
            tx.session.add(
                FormerMembership(
                    project_name=project,
                    user_name=user,
                    added_at=gone[0].added_at,
                    removed_by=actor,
                )
            )
            tx.journal(events.MemberRemoved(actor=actor, project=project, user=user))

    # -- datasets ------------------------------------------------------------------
    def add_dataset(self, dataset: DatasetInfo, *, actor: str) -> DatasetInfo:
        """Record a dataset version whose files are already in the library."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            add_dataset_rows(tx, dataset, actor)
        return dataset

    def set_index_location(self, name: str, version: str, location: str, *, actor: str) -> None:
        """Record where a dataset version's (rebuilt) disclosure-check index lives."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            dataset_row(tx.session, name, version).index_location = location
            tx.journal(
                events.DatasetReindexed(
                    actor=actor, dataset=name, version=version, index_location=location
                )
            )

    def attach_dataset(
        self, project: str, dataset: str, version: str | None = None, *, actor: str
    ) -> None:
        """Let ``project`` mount ``dataset`` (a given version, or the newest)."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            p = project_row(tx.session, project)
            d = dataset_row(tx.session, dataset, version)
            link = next((x for x in p.datasets if x.dataset_name == dataset), None)
            before = link.dataset_version if link else None
            if link is not None:
                link.dataset_version = d.version
            else:
                p.datasets.append(ProjectDataset(dataset_name=d.name, dataset_version=d.version))
            tx.journal(
                events.DatasetAttached(
                    actor=actor, project=project, dataset=d.name, version=d.version, before=before
                )
            )

    def detach_dataset(self, project: str, dataset: str, *, actor: str) -> None:
        """Stop ``project`` mounting ``dataset``."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            p = project_row(tx.session, project)
            gone = [d for d in p.datasets if d.dataset_name == dataset]
            if not gone:
                raise NotFound(f"project {project!r} does not use dataset {dataset!r}")
            p.datasets = [d for d in p.datasets if d.dataset_name != dataset]
            tx.journal(
                events.DatasetDetached(
                    actor=actor, project=project, dataset=dataset, version=gone[0].dataset_version
                )
            )

    def delete_dataset_version(
        self,
        name: str,
        version: str,
        *,
        actor: str,
        requested_by: str,
        detached_from: tuple[str, ...],
        bytes_freed: int,
    ) -> None:
        """Remove a dataset version's rows and every project's link to it (the deletion
        its provider or an operator asked for; the library files are already gone)."""
        actor = actor_name(actor)
        with self.db.write() as tx:
            s = tx.session
            s.execute(
                delete(ProjectDataset).where(
                    ProjectDataset.dataset_name == name, ProjectDataset.dataset_version == version
                )
            )
            row = s.scalars(
                select(Dataset).where(Dataset.name == name, Dataset.version == version)
            ).first()
            if row is not None:
                s.delete(row)
            tx.journal(
                events.DatasetDeleted(
                    actor=actor, name=name, version=version, requested_by=requested_by,
                    detached_from=detached_from, bytes=bytes_freed,
                )
            )  # fmt: skip


def add_dataset_rows(
    tx: Write, dataset: DatasetInfo, actor: str, card: dict[str, Any] | None = None
) -> None:
    """Add a dataset version's rows and its ``dataset.register`` entry to ``tx`` (shared
    with the library's registration, which writes the version's card in the same
    transaction and hands its summary on as ``card``)."""
    if tx.session.get(Dataset, (dataset.name, dataset.version)) is not None:
        raise Conflict(f"dataset {dataset.name} version {dataset.version} exists already")
    tx.session.add(
        Dataset(
            name=dataset.name,
            version=dataset.version,
            provider=dataset.provider,
            location=dataset.location,
            index_location=dataset.index_location,
            total_bytes=dataset.total_bytes,
            registered_by=actor,
            files=[DatasetFile(path=p, size=n, sha256=h) for p, n, h in dataset.files],
        )
    )
    tx.journal(
        events.DatasetRegistered(
            actor=actor,
            dataset=dataset.name,
            version=dataset.version,
            provider=dataset.provider,
            files=len(dataset.files),
            total_bytes=dataset.total_bytes,
            card=card,
        )
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")


def membership_row(s: Session, project: str, user: str) -> Membership:
    """One membership's row, or NotFound."""
    m = s.scalar(
        select(Membership).where(Membership.project_name == project, Membership.user_name == user)
    )
    if m is None:
        raise NotFound(f"{user!r} is not a member of {project!r}")
    return m
