"""The registry journal's events: one dataclass per kind of act, its fields documented.

A writer builds one of these and hands it to the transaction that makes the change
(:meth:`cleanroom.registry.database.Write.journal`); the journal stores ``kind`` as the
entry's action, ``subject`` (what the act is about, e.g. ``project:press-quality``) and
the remaining fields as the entry's detail. Kinds are the journal's vocabulary since its
first release: renaming one would split the history of an act in two.

To add an act: add a dataclass here with ``kind`` and ``subject_template``, and write it
from the change's transaction (docs/development.md, "How to add a registry write").
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class JournalEvent:
    """Base of every journal event: who acted.

    ``actor`` is the person (or ``enforcer``, ``hub``, ``upgrade`` for the system) who did it.
    """

    kind: ClassVar[str]
    subject_template: ClassVar[str]
    actor: str

    @property
    def subject(self) -> str:
        """What the act is about, filled in from the event's fields."""
        return self.subject_template.format(**{f.name: getattr(self, f.name) for f in fields(self)})

    def detail(self) -> dict[str, Any]:
        """The fields recorded with the entry (all but ``actor``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "actor"}


# -- users -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class UserAdded(JournalEvent):
    """A person who can log in was added. ``roles``: their roles; ``password``: whether one
    was set (never the password or its hash)."""

    kind = "user.add"
    subject_template = "user:{user}"
    user: str
    roles: tuple[str, ...]
    password: bool


@dataclass(frozen=True, kw_only=True)
class PasswordSet(JournalEvent):
    """A user's password was set or replaced (the journal never holds it)."""

    kind = "user.password"
    subject_template = "user:{user}"
    user: str


@dataclass(frozen=True, kw_only=True)
class RolesSet(JournalEvent):
    """A user's roles were replaced: ``before`` and ``after``."""

    kind = "user.roles"
    subject_template = "user:{user}"
    user: str
    before: tuple[str, ...]
    after: tuple[str, ...]


# -- projects and members --------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProjectCreated(JournalEvent):
    """An approved project was created directly (without an application)."""

    kind = "project.create"
    subject_template = "project:{project}"
    project: str
    title: str
    tier: str
    images: tuple[str, ...]
    ends_on: date | None


@dataclass(frozen=True, kw_only=True)
class ProjectStatusSet(JournalEvent):
    """A project was approved, suspended or closed: status ``before`` and ``after``."""

    kind = "project.status"
    subject_template = "project:{project}"
    project: str
    before: str
    after: str


@dataclass(frozen=True, kw_only=True)
class ProjectEndSet(JournalEvent):
    """A project's end date moved (``None``: no end)."""

    kind = "project.end_date"
    subject_template = "project:{project}"
    project: str
    before: date | None
    after: date | None


@dataclass(frozen=True, kw_only=True)
class ProjectImageAllowed(JournalEvent):
    """A project's workspaces may now run ``image``."""

    kind = "project.allow_image"
    subject_template = "project:{project}"
    project: str
    image: str


@dataclass(frozen=True, kw_only=True)
class MemberAdded(JournalEvent):
    """``user`` became a member of ``project`` (until ``ends_on``, if given)."""

    kind = "member.add"
    subject_template = "project:{project}"
    project: str
    user: str
    ends_on: date | None


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(JournalEvent):
    """``user``'s membership of ``project`` ended; they stay recorded as a former member."""

    kind = "member.remove"
    subject_template = "project:{project}"
    project: str
    user: str


@dataclass(frozen=True, kw_only=True)
class MemberEndSet(JournalEvent):
    """A membership's end date moved (``None``: no end)."""

    kind = "member.end_date"
    subject_template = "project:{project}"
    project: str
    user: str
    before: date | None
    after: date | None


# -- applications ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ApplicationSubmitted(JournalEvent):
    """An application for a project was submitted by ``actor`` (the applicant)."""

    kind = "application.submit"
    subject_template = "application:{application}"
    application: int
    title: str
    members: tuple[str, ...]
    datasets: tuple[str, ...]
    ends_on: date


@dataclass(frozen=True, kw_only=True)
class ApplicationApproved(JournalEvent):
    """An application was approved and ``project`` created from it."""

    kind = "application.approve"
    subject_template = "application:{application}"
    application: int
    project: str
    tier: str
    images: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplicationDeclined(JournalEvent):
    """An application was declined, with the ``reason`` the applicant reads."""

    kind = "application.decline"
    subject_template = "application:{application}"
    application: int
    reason: str


# -- datasets and providers ------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DatasetRegistered(JournalEvent):
    """A dataset version was registered in the library: ``files`` files, ``total_bytes``."""

    kind = "dataset.register"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    provider: str
    files: int
    total_bytes: int


@dataclass(frozen=True, kw_only=True)
class DatasetReindexed(JournalEvent):
    """A dataset version's disclosure-check index was rebuilt at ``index_location``."""

    kind = "dataset.reindex"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    index_location: str


@dataclass(frozen=True, kw_only=True)
class DatasetAttached(JournalEvent):
    """``project`` mounts ``dataset`` at ``version`` (``before``: the version it had)."""

    kind = "dataset.attach"
    subject_template = "project:{project}"
    project: str
    dataset: str
    version: str
    before: str | None


@dataclass(frozen=True, kw_only=True)
class DatasetDetached(JournalEvent):
    """``project`` no longer mounts ``dataset`` (it had ``version``)."""

    kind = "dataset.detach"
    subject_template = "project:{project}"
    project: str
    dataset: str
    version: str


@dataclass(frozen=True, kw_only=True)
class ProviderAccountAdded(JournalEvent):
    """``user`` now acts for ``provider``."""

    kind = "provider.account"
    subject_template = "provider:{provider}"
    provider: str
    user: str


@dataclass(frozen=True, kw_only=True)
class DatasetUseApproved(JournalEvent):
    """The provider (``actor`` acting for ``provider``) let ``project`` use a version."""

    kind = "dataset.approve_use"
    subject_template = "project:{project}"
    project: str
    dataset: str
    version: str
    provider: str


@dataclass(frozen=True, kw_only=True)
class DatasetUseRevoked(JournalEvent):
    """The provider withdrew ``project``'s approval to use these ``versions``."""

    kind = "dataset.revoke_use"
    subject_template = "project:{project}"
    project: str
    dataset: str
    versions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ApprovalsGrandfathered(JournalEvent):
    """Upgrade step: dataset links made before provider approvals existed were recorded
    as approved (``links``: ``project:dataset@version``)."""

    kind = "dataset.approvals.grandfathered"
    subject_template = "registry"
    links: tuple[str, ...]


# -- images and workspaces -------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ImageAllowed(JournalEvent):
    """The deployment allows ``image`` (again)."""

    kind = "image.allowed"
    subject_template = "image:{image}"
    image: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ImageRetired(JournalEvent):
    """No new workspace may run ``image``."""

    kind = "image.retired"
    subject_template = "image:{image}"
    image: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class WorkspaceStarted(JournalEvent):
    """A workspace started: the exact image digest and the dataset versions it mounts
    (``datasets``: ``name@version`` each)."""

    kind = "workspace.start"
    subject_template = "project:{project}"
    user: str
    project: str
    image: str
    image_digest: str
    datasets: tuple[str, ...]
    container_id: str


@dataclass(frozen=True, kw_only=True)
class WorkspaceStopped(JournalEvent):
    """The enforcer stopped ``user``'s workspace of ``project`` for ``reason``."""

    kind = "workspace.stop"
    subject_template = "project:{project}"
    project: str
    user: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class WorkspaceOutOfMemory(JournalEvent):
    """The kernel killed ``processes_killed`` processes of a workspace at its memory limit."""

    kind = "workspace.out_of_memory"
    subject_template = "project:{project}"
    project: str
    user: str
    memory_limit: str
    processes_killed: int


@dataclass(frozen=True, kw_only=True)
class WorkspaceServerLost(JournalEvent):
    """The hub found ``user``'s server of ``project`` gone (``reason``: ``exited`` or
    ``unresponsive``; ``status``: what the poll saw) and stops the workspace."""

    kind = "workspace.server_lost"
    subject_template = "project:{project}"
    project: str
    user: str
    reason: str
    status: str


# -- ingress ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class IngressRequested(JournalEvent):
    """A member (``actor``) asked to bring a file into ``project``; the bytes are held."""

    kind = "ingress.request"
    subject_template = "project:{project}"
    project: str
    ingress: int
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True, kw_only=True)
class IngressApproved(JournalEvent):
    """The reviewed file went into the project's incoming folder."""

    kind = "ingress.approve"
    subject_template = "project:{project}"
    project: str
    ingress: int
    filename: str
    sha256: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class IngressDeclined(JournalEvent):
    """The file was refused, with a ``reason``."""

    kind = "ingress.decline"
    subject_template = "project:{project}"
    project: str
    ingress: int
    filename: str
    sha256: str
    reason: str


# -- acts of other components ----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TokenIssued(JournalEvent):
    """An API token was issued to ``user`` through the hub (``note``, ``expires_in`` s)."""

    kind = "token.issue"
    subject_template = "user:{user}"
    user: str
    note: str
    expires_in: int | None


@dataclass(frozen=True, kw_only=True)
class FirewallChanged(JournalEvent):
    """The host firewall was installed or removed (``action``) for ``instance``."""

    kind = "firewall"
    subject_template = "firewall:{instance}"
    instance: str
    action: str


@dataclass(frozen=True, kw_only=True)
class JournalHeadBuilt(JournalEvent):
    """Upgrade step: the journal's head record was built from its last entry ``seq``."""

    kind = "journal.head_built"
    subject_template = "registry"
    seq: int


def all_events() -> list[type[JournalEvent]]:
    """Every kind of event, for tests and docs."""
    return [
        cls
        for cls in globals().values()
        if isinstance(cls, type) and issubclass(cls, JournalEvent) and cls is not JournalEvent
    ]
