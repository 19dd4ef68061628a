"""The registry's one writer, and the governed acts around projects: applications and
decisions, provider approvals of dataset use, end dates, image states, workspace runs and
ingress requests (users, projects, members and datasets: :mod:`.backbone`).

Every method that changes something takes the ``actor`` (keyword-only) and writes its
typed journal event (:mod:`.events`) in the same transaction as the change, so no change
exists without its record (who, when, why) and no record describes a change that did not
happen; the database refuses to commit a change without one (:mod:`.database`). Every
refusal raises before any write. Reads are named ``get_``, ``list_``, ... (``READS``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanroom import paths
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import events, journal
from cleanroom.registry.access import check_access_mode
from cleanroom.registry.applications import ApplicationWrites
from cleanroom.registry.backbone import (
    BackboneWrites,
    actor_name,
    check_images_usable,
    check_known_image,
    membership_row,
)
from cleanroom.registry.delegates import DelegateWrites
from cleanroom.registry.events import JournalEvent
from cleanroom.registry.library import LibraryWrites
from cleanroom.registry.models import (
    Dataset,
    DatasetApproval,
    ImageState,
    IngressRequest,
    JournalEntry,
    ProjectDataset,
    ProjectImage,
    ProviderAccount,
    User,
    WorkspaceRun,
)
from cleanroom.registry.people import People, shared_people
from cleanroom.registry.store import Registry, dataset_row, project_row, user_row

INGRESS_MAX_BYTES = 50 * 1024**2
"""Ingress is for code and reference tables, not data sets: bigger files are refused."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApprovalInfo:
    """A provider's approval of one project's use of one dataset version."""

    project: str
    dataset: str
    version: str
    approved_by: str
    approved_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None

    @property
    def current(self) -> bool:
        """True while not revoked."""
        return self.revoked_at is None


@dataclass(frozen=True)
class RunInfo:
    """One workspace start, with the exact image it ran."""

    user: str
    project: str
    image: str
    image_digest: str
    datasets: str
    container_id: str
    started_at: datetime


@dataclass(frozen=True)
class IngressInfo:
    """A request to bring one file into a project, and its review."""

    id: int
    project: str
    requester: str
    filename: str
    sha256: str
    size: int
    reason: str
    submitted_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


def _approval_info(a: DatasetApproval) -> ApprovalInfo:
    return ApprovalInfo(
        a.project_name,
        a.dataset_name,
        a.dataset_version,
        a.approved_by,
        a.approved_at,
        a.revoked_by,
        a.revoked_at,
    )


def _ingress_info(r: IngressRequest) -> IngressInfo:
    return IngressInfo(
        r.id,
        r.project_name,
        r.requester,
        r.filename,
        r.sha256,
        r.size,
        r.reason,
        r.submitted_at,
        r.status,
        r.decided_by,
        r.decided_at,
        r.decision_reason,
    )


_actor = actor_name

READS = (
    "get_",
    "list_",
    "approvals",
    "providers_of",
    "provider_usage",
    "provider_accounts",
    "runs",
    "ingress_",
    "journal_",
    "verify_",
)
"""Prefixes of the public methods that only read; every other public method is a write
and takes a keyword-only ``actor`` (a test holds every write to it)."""


class Governance(ApplicationWrites, BackboneWrites, DelegateWrites, LibraryWrites):
    """The registry's one writer: every change, journaled in its own transaction."""

    def __init__(self, registry: Registry | None = None, people: People | None = None) -> None:
        self.registry = registry or Registry()
        self.db = self.registry.db
        self._people = people

    @property
    def people(self) -> People:
        """Who may decide: role, second factor, verification, training, account state."""
        if self._people is None:
            self._people = shared_people(self.registry)
        return self._people

    def _decider(self, actor: str, role: str, what: str) -> str:
        """The actor, once they may take decisions of ``role`` (else Forbidden)."""
        actor = _actor(actor)
        self.people.check_may_act(actor, role, what=what)
        return actor

    # -- helpers -------------------------------------------------------------------
    _user = staticmethod(user_row)
    _project = staticmethod(project_row)
    _dataset = staticmethod(dataset_row)

    # -- end dates -----------------------------------------------------------------
    def set_project_end(self, project: str, ends_on: date | None, *, actor: str) -> None:
        """Move a project's end date (None: no end). Enforcement stops what outlives it."""
        actor = self._decider(actor, "operator", "change end dates")
        with self.db.write() as tx:
            p = self._project(tx.session, project)
            before = p.ends_on
            p.ends_on = ends_on
            tx.journal(
                events.ProjectEndSet(actor=actor, project=project, before=before, after=ends_on)
            )

    def set_access_mode(self, project: str, mode: str, *, actor: str) -> None:
        """Set a project's access mode (``standard`` or ``restricted``); effective at each
        workspace's next start (see cleanroom.registry.access)."""
        actor = self._decider(actor, "operator", "change access modes")
        check_access_mode(mode)
        with self.db.write() as tx:
            p = self._project(tx.session, project)
            before = p.access_mode or "standard"
            p.access_mode = mode
            tx.journal(
                events.ProjectAccessModeSet(actor=actor, project=project, before=before, after=mode)
            )

    def set_member_end(self, project: str, user: str, ends_on: date | None, *, actor: str) -> None:
        """Move one membership's end date."""
        actor = self._decider(actor, "operator", "change end dates")
        with self.db.write() as tx:
            m = membership_row(tx.session, project, user)
            before = m.ends_on
            m.ends_on = ends_on
            tx.journal(
                events.MemberEndSet(
                    actor=actor, project=project, user=user, before=before, after=ends_on
                )
            )

    # -- data providers ------------------------------------------------------------
    def add_provider_account(self, provider: str, user: str, *, actor: str) -> None:
        """Let ``user`` (role provider) act for ``provider``."""
        actor = self._decider(actor, "operator", "grant provider accounts")
        if not provider.strip():
            raise InvalidInput("a provider needs a name")
        with self.db.write() as tx:
            s = tx.session
            u = self._user(s, user)
            if "provider" not in u.role_set:
                raise Forbidden(f"{user!r} does not have the provider role")
            exists = s.scalar(
                select(ProviderAccount).where(
                    ProviderAccount.provider == provider, ProviderAccount.user_name == user
                )
            )
            if exists is not None:
                raise Conflict(f"{user!r} acts for {provider!r} already")
            s.add(ProviderAccount(provider=provider, user_name=user, added_by=actor))
            tx.journal(events.ProviderAccountAdded(actor=actor, provider=provider, user=user))

    def providers_of(self, user: str) -> list[str]:
        """The providers ``user`` acts for."""
        with self.db.read() as s:
            return sorted(
                s.scalars(select(ProviderAccount.provider).where(ProviderAccount.user_name == user))
            )

    def _check_provider(self, s: Session, user: str, dataset: Dataset) -> None:
        account = s.scalar(
            select(ProviderAccount).where(
                ProviderAccount.provider == dataset.provider, ProviderAccount.user_name == user
            )
        )
        if account is None:
            raise Forbidden(
                f"{user!r} does not act for {dataset.provider!r}, the provider of dataset "
                f"{dataset.name} version {dataset.version}"
            )

    def approve_dataset_use(
        self, project: str, dataset: str, version: str | None = None, *, actor: str
    ) -> ApprovalInfo:
        """The provider's user ``actor`` approves ``project``'s use of a dataset version
        (default: the version the project mounts, else the newest). Only a provider in
        standing who acts for that dataset's provider approves."""
        by = self._decider(actor, "provider", "approve dataset use")
        with self.db.write() as tx:
            s = tx.session
            self._project(s, project)
            if version is None:
                link = s.scalar(
                    select(ProjectDataset).where(
                        ProjectDataset.project_name == project,
                        ProjectDataset.dataset_name == dataset,
                    )
                )
                version = link.dataset_version if link else None
            d = self._dataset(s, dataset, version)
            self._check_provider(s, by, d)
            row = s.scalar(
                select(DatasetApproval).where(
                    DatasetApproval.project_name == project,
                    DatasetApproval.dataset_name == d.name,
                    DatasetApproval.dataset_version == d.version,
                )
            )
            if row is not None and row.revoked_at is None:
                raise Conflict(f"{project!r} may use {d.name} version {d.version} already")
            if row is None:
                row = DatasetApproval(
                    project_name=project, dataset_name=d.name, dataset_version=d.version
                )
                s.add(row)
            row.approved_by, row.approved_at = by, _now()
            row.revoked_by, row.revoked_at = None, None
            s.flush()
            tx.journal(
                events.DatasetUseApproved(
                    actor=by,
                    project=project,
                    dataset=d.name,
                    version=d.version,
                    provider=d.provider,
                )
            )
            return _approval_info(row)

    def revoke_dataset_use(
        self, project: str, dataset: str, version: str | None = None, *, actor: str
    ) -> list[ApprovalInfo]:
        """Withdraw approvals (of one version, or all versions of ``dataset``)."""
        by = self._decider(actor, "provider", "revoke dataset use")
        with self.db.write() as tx:
            s = tx.session
            query = select(DatasetApproval).where(
                DatasetApproval.project_name == project,
                DatasetApproval.dataset_name == dataset,
                DatasetApproval.revoked_at.is_(None),
            )
            if version:
                query = query.where(DatasetApproval.dataset_version == version)
            rows = list(s.scalars(query))
            if not rows:
                raise NotFound(f"{project!r} has no current approval to use {dataset}")
            for row in rows:
                self._check_provider(s, by, self._dataset(s, dataset, row.dataset_version))
                row.revoked_by, row.revoked_at = by, _now()
            tx.journal(
                events.DatasetUseRevoked(
                    actor=by,
                    project=project,
                    dataset=dataset,
                    versions=tuple(r.dataset_version for r in rows),
                )
            )
            return [_approval_info(r) for r in rows]

    def approvals(self, project: str | None = None) -> list[ApprovalInfo]:
        """Approvals (current and revoked), optionally of one project."""
        with self.db.read() as s:
            query = select(DatasetApproval).order_by(
                DatasetApproval.project_name, DatasetApproval.dataset_name
            )
            if project:
                query = query.where(DatasetApproval.project_name == project)
            return [_approval_info(a) for a in s.scalars(query)]

    def provider_usage(
        self, provider: str, versions: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        """What a provider's datasets are used for: per dataset version (all, or those of
        ``versions``, ``(name, version)`` pairs), the projects that mount or were
        approved to use it, and the workspaces that ran with it."""
        with self.db.read() as s:
            query = select(Dataset).where(Dataset.provider == provider)
            if versions is not None:
                query = query.where(Dataset.name.in_(sorted({n for n, _ in versions})))
            datasets = list(s.scalars(query.order_by(Dataset.name, Dataset.version)))
            if versions is not None:
                wanted = set(versions)
                datasets = [d for d in datasets if (d.name, d.version) in wanted]
            if not datasets and versions is None:
                raise NotFound(f"provider {provider!r} has no registered dataset")
            out: dict[str, Any] = {"provider": provider, "datasets": [], "projects": []}
            projects: set[str] = set()
            for d in datasets:
                links = s.scalars(
                    select(ProjectDataset.project_name).where(
                        ProjectDataset.dataset_name == d.name,
                        ProjectDataset.dataset_version == d.version,
                    )
                )
                grants = s.scalars(
                    select(DatasetApproval).where(
                        DatasetApproval.dataset_name == d.name,
                        DatasetApproval.dataset_version == d.version,
                    )
                )
                mounted_by = sorted(links)
                approvals = [_approval_info(g) for g in grants]
                # The query narrows by substring; the exact match is on whole items, or
                # press-line@v1 would also match press-line@v10.
                key = f"{d.name}@{d.version}"
                runs = s.scalars(select(WorkspaceRun).where(WorkspaceRun.datasets.contains(key)))
                run_list = [
                    (r.project_name, r.user_name, r.started_at)
                    for r in runs
                    if key in r.datasets.split(",")
                ]
                projects.update(mounted_by)
                projects.update(a.project for a in approvals)
                projects.update(r[0] for r in run_list)
                out["datasets"].append(
                    {
                        "name": d.name,
                        "version": d.version,
                        "mounted_by": mounted_by,
                        "approvals": approvals,
                        "runs": [
                            {"project": p, "user": u, "started_at": t} for p, u, t in run_list
                        ],
                    }
                )
            out["projects"] = sorted(projects)
            return out

    # -- images --------------------------------------------------------------------
    def set_image_state(self, image: str, status: str, *, actor: str, reason: str = "") -> None:
        """Allow or retire an image name for the whole deployment."""
        actor = self._decider(actor, "operator", "allow or retire images")
        if status not in {"allowed", "retired"}:
            raise InvalidInput(f"unknown image status {status!r}: use allowed or retired")
        check_known_image(image)
        with self.db.write() as tx:
            row = tx.session.get(ImageState, image)
            if row is None:
                row = ImageState(name=image)
                tx.session.add(row)
            row.status, row.changed_by, row.changed_at, row.reason = status, actor, _now(), reason
            kind = events.ImageAllowed if status == "allowed" else events.ImageRetired
            tx.journal(kind(actor=actor, image=image, reason=reason))

    def allow_project_image(self, project: str, image: str, *, actor: str) -> None:
        """Let one project's workspaces run ``image`` (refused while it is retired)."""
        actor = self._decider(actor, "operator", "allow images")
        with self.db.write() as tx:
            p = self._project(tx.session, project)
            check_images_usable(tx.session, [image])
            if image in {i.image for i in p.images}:
                raise Conflict(f"{project!r} may run {image!r} already")
            p.images.append(ProjectImage(image=image))
            tx.journal(events.ProjectImageAllowed(actor=actor, project=project, image=image))

    # -- workspace runs ------------------------------------------------------------
    def record_run(
        self,
        *,
        actor: str,
        user: str,
        project: str,
        image: str,
        image_digest: str,
        datasets: tuple[str, ...],
        container_id: str,
    ) -> None:
        """Record a workspace that started and the exact image it runs (reproducibility).

        ``datasets`` are ``name@version`` each.
        """
        actor = _actor(actor)
        with self.db.write() as tx:
            tx.session.add(
                WorkspaceRun(
                    user_name=user,
                    project_name=project,
                    image=image,
                    image_digest=image_digest,
                    datasets=",".join(datasets),
                    container_id=container_id,
                )
            )
            tx.journal(
                events.WorkspaceStarted(
                    actor=actor,
                    user=user,
                    project=project,
                    image=image,
                    image_digest=image_digest,
                    datasets=tuple(datasets),
                    container_id=container_id,
                )
            )

    def runs(self, project: str | None = None, user: str | None = None) -> list[RunInfo]:
        """Workspace starts, newest first."""
        with self.db.read() as s:
            query = select(WorkspaceRun).order_by(WorkspaceRun.id.desc())
            if project:
                query = query.where(WorkspaceRun.project_name == project)
            if user:
                query = query.where(WorkspaceRun.user_name == user)
            return [
                RunInfo(
                    r.user_name,
                    r.project_name,
                    r.image,
                    r.image_digest,
                    r.datasets,
                    r.container_id,
                    r.started_at,
                )
                for r in s.scalars(query)
            ]

    # -- ingress -------------------------------------------------------------------
    @staticmethod
    def ingress_dir() -> Path:
        """Where files wait for review, outside every workspace."""
        return paths.state_dir() / "ingress"

    def request_ingress(
        self, project: str, source: Path, *, actor: str, reason: str
    ) -> IngressInfo:
        """The member ``actor`` asks to bring ``source`` into ``project``; the bytes are held
        for review."""
        requester = _actor(actor)
        if not reason.strip():
            raise InvalidInput("say what the file is and why the project needs it")
        if source.is_symlink() or not source.is_file():
            raise InvalidInput(f"{source} is not a regular file")
        size = source.stat().st_size
        if size > INGRESS_MAX_BYTES:
            raise InvalidInput(
                f"{source.name} has {size} bytes; ingress takes files up to "
                f"{INGRESS_MAX_BYTES} bytes (data sets are registered by providers)"
            )
        filename = source.name
        if filename.startswith(".") or "/" in filename:
            raise InvalidInput(f"{filename!r} is not an acceptable file name")
        if not self.registry.is_member(requester, project):
            raise Forbidden(f"{requester!r} is not a current member of {project!r}")
        # Held sealed at rest (cleanroom.workspace.ingress_holds); at most
        # INGRESS_MAX_BYTES, so read whole.
        from cleanroom.workspace import ingress_holds

        with source.open("rb") as src:
            data = src.read(INGRESS_MAX_BYTES + 1)
        if len(data) > INGRESS_MAX_BYTES:
            raise InvalidInput(f"{source.name} grew past {INGRESS_MAX_BYTES} bytes; refused")
        size = len(data)
        digest = hashlib.sha256(data)
        ingress_holds.hold(self.ingress_dir(), project, data)
        with self.db.write() as tx:
            s = tx.session
            self._project(s, project)
            row = IngressRequest(
                project_name=project,
                requester=requester,
                filename=filename,
                sha256=digest.hexdigest(),
                size=size,
                reason=reason.strip(),
            )
            s.add(row)
            s.flush()
            tx.journal(
                events.IngressRequested(
                    actor=requester,
                    project=project,
                    ingress=row.id,
                    filename=filename,
                    sha256=row.sha256,
                    size=size,
                )
            )
            return _ingress_info(row)

    def decide_ingress(
        self, request_id: int, *, actor: str, approve: bool, reason: str = ""
    ) -> IngressInfo:
        """An operator, or a provider of one of the project's datasets, decides. An approved
        file is copied (exactly the reviewed bytes) into the project's incoming folder."""
        actor = _actor(actor)
        delivered: list[tuple[str, str]] = []
        try:
            return self._decide_ingress(request_id, actor, approve, reason, delivered)
        except BaseException:
            from cleanroom.workspace import incoming

            for project, filename in delivered:  # the commit failed: nothing may stay
                with incoming.opened(project) as folder:
                    (folder / filename).unlink(missing_ok=True)
            raise

    def _decide_ingress(
        self,
        request_id: int,
        actor: str,
        approve: bool,
        reason: str,
        delivered: list[tuple[str, str]],
    ) -> IngressInfo:
        with self.db.write() as tx:
            s = tx.session
            row = s.get(IngressRequest, request_id)
            if row is None:
                raise NotFound(f"there is no ingress request {request_id}")
            if row.status != "pending":
                raise Conflict(f"ingress request {request_id} is {row.status} already")
            if actor == row.requester:
                raise Forbidden("nobody decides on their own ingress request")
            user = s.get(User, actor)
            roles = user.role_set if user else set()
            # Role, second factor, verification, training: read apart, before any write.
            self.people.check_may_act(
                actor,
                "operator" if "operator" in roles else "provider",
                what="decide on ingress requests",
            )
            if "operator" not in roles:
                providers = set(
                    s.scalars(
                        select(ProviderAccount.provider).where(ProviderAccount.user_name == actor)
                    )
                )
                used = set(
                    s.scalars(
                        select(Dataset.provider)
                        .join(
                            ProjectDataset,
                            (ProjectDataset.dataset_name == Dataset.name)
                            & (ProjectDataset.dataset_version == Dataset.version),
                        )
                        .where(ProjectDataset.project_name == row.project_name)
                    )
                )
                if not providers & used:
                    raise Forbidden(
                        f"{actor!r} is neither an operator nor a provider of "
                        f"{row.project_name!r}'s data"
                    )
            if not approve and not reason.strip():
                raise InvalidInput("declining an ingress request needs a reason")
            row.status = "approved" if approve else "declined"
            row.decided_by, row.decided_at, row.decision_reason = actor, _now(), reason
            decided = events.IngressApproved if approve else events.IngressDeclined
            tx.journal(
                decided(
                    actor=actor,
                    project=row.project_name,
                    ingress=row.id,
                    filename=row.filename,
                    sha256=row.sha256,
                    reason=reason,
                )
            )
            # Last, after the journal entry: a refusal or a failed journal write delivers
            # nothing; a failed commit takes the delivered file back (below).
            if approve:
                self._deliver(row)
                delivered.append((row.project_name, row.filename))
            info = _ingress_info(row)
        return info

    def _deliver(self, row: IngressRequest) -> None:
        # The incoming folder is encrypted at rest (cleanroom.workspace.incoming): it is
        # unlocked for the delivery and locked again unless a workspace uses it.
        from cleanroom.workspace import incoming, ingress_holds

        data = ingress_holds.read_held(self.ingress_dir(), row.project_name, row.sha256)
        with incoming.opened(row.project_name) as target_dir:
            target = target_dir / row.filename
            if target.exists():
                raise Conflict(f"{row.filename} exists in {row.project_name}'s incoming folder")
            tmp = target_dir / f".{row.filename}.part"
            tmp.write_bytes(data)  # the checked bytes, not a second read of the held file
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)

    def ingress_requests(
        self, project: str | None = None, status: str | None = None
    ) -> list[IngressInfo]:
        """Ingress requests, oldest first."""
        with self.db.read() as s:
            query = select(IngressRequest).order_by(IngressRequest.id)
            if project:
                query = query.where(IngressRequest.project_name == project)
            if status:
                query = query.where(IngressRequest.status == status)
            return [_ingress_info(r) for r in s.scalars(query)]

    # -- the journal ---------------------------------------------------------------
    def record(self, event: JournalEvent, *, actor: str) -> None:
        """Journal an act whose change another component made (a stopped workspace, an
        issued token); ``actor`` must be the event's."""
        if _actor(actor) != event.actor:
            raise InvalidInput(f"the event's actor is {event.actor!r}, not {actor!r}")
        with self.db.write() as tx:
            tx.journal(event)

    def journal_entries(
        self, subject: str | None = None, *, action: str | None = None
    ) -> list[journal.Entry]:
        """Journal entries, oldest first (about ``subject``, of ``action``)."""
        with self.db.read() as s:
            return journal.entries(s, subject=subject, action=action)

    def verify_journal(self) -> journal.Verification:
        """Check every entry's hash and link."""
        with self.db.read() as s:
            rows = s.scalars(select(JournalEntry).order_by(JournalEntry.seq))
            return journal.verify(rows, journal.head(s))


def incoming_dir(project: str) -> Path:
    """Host folder of a project's approved inbound files before encryption at rest (or
    with it off); an encrypted one is read through ``cleanroom.workspace.incoming``."""
    return paths.workspaces_dir() / project / "incoming"
