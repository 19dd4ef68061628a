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

from dataclasses import dataclass, field, fields
from datetime import date, datetime
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
class ProjectAccessModeSet(JournalEvent):
    """A project's access mode changed from ``before`` to ``after`` (``standard``:
    JupyterLab in the researcher's browser; ``restricted``: only pixels, through the
    viewer). Running workspaces keep their mode until they restart."""

    kind = "project.access_mode"
    subject_template = "project:{project}"
    project: str
    before: str
    after: str


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
class ApplicationDraftSaved(JournalEvent):
    """The applicant (``actor``) saved a draft application, new or changed: only they see
    it until they submit it. ``datasets``: ``name@version`` each."""

    kind = "application.draft"
    subject_template = "application:{application}"
    application: int
    title: str
    members: tuple[str, ...]
    datasets: tuple[str, ...]
    ends_on: date


@dataclass(frozen=True, kw_only=True)
class ApplicationSubmitted(JournalEvent):
    """An application for a project was submitted by ``actor`` (the applicant); from now
    on it changes only by its members' signatures and the decisions on it. ``datasets``:
    the names wanted (``versions``: ``name@version`` each, as the providers decide them);
    ``assessment``: the data processing assessment's reference the applicants named."""

    kind = "application.submit"
    subject_template = "application:{application}"
    application: int
    title: str
    members: tuple[str, ...]
    datasets: tuple[str, ...]
    ends_on: date
    versions: tuple[str, ...] = ()
    assessment: str = ""


@dataclass(frozen=True, kw_only=True)
class PledgeSigned(JournalEvent):
    """A named member (``actor``) signed the pledge for the application: the text whose
    sha256 is ``pledge`` (cleanroom.registry.applications.PLEDGE)."""

    kind = "application.sign"
    subject_template = "application:{application}"
    application: int
    pledge: str


@dataclass(frozen=True, kw_only=True)
class ApplicationUseApproved(JournalEvent):
    """The provider's user (``actor``, acting for ``provider``) approved the application's
    use of ``dataset`` ``version``; the project created from it may use that version."""

    kind = "application.approve_use"
    subject_template = "application:{application}"
    application: int
    dataset: str
    version: str
    provider: str


@dataclass(frozen=True, kw_only=True)
class ApplicationUseDeclined(JournalEvent):
    """The provider's user (``actor``, acting for ``provider``) declined the application's
    use of ``dataset`` ``version`` for ``reason``; the application is declined with it."""

    kind = "application.decline_use"
    subject_template = "application:{application}"
    application: int
    dataset: str
    version: str
    provider: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplicationApproved(JournalEvent):
    """An application was approved and ``project`` created from it, with its members and
    datasets; ``uses``: ``dataset@version:by`` for each use its provider's user ``by``
    approved on the application, now the project's approval."""

    kind = "application.approve"
    subject_template = "application:{application}"
    application: int
    project: str
    tier: str
    images: tuple[str, ...]
    reason: str
    uses: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ApplicationDeclined(JournalEvent):
    """An application was declined, with the ``reason`` the applicant reads."""

    kind = "application.decline"
    subject_template = "application:{application}"
    application: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplicationWithdrawn(JournalEvent):
    """Its applicant withdrew an application (``reason``: theirs, may be empty)."""

    kind = "application.withdraw"
    subject_template = "application:{application}"
    application: int
    reason: str


# -- datasets and providers ------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DatasetRegistered(JournalEvent):
    """A dataset version was registered in the library: ``files`` files, ``total_bytes``.

    ``card``: what its card recorded at registration (``classification``, ``status``:
    verified, profiled or quarantined, whether a Table ``schema`` was given, the quality
    report's ``rows`` and ``errors``); None for a version registered without a card."""

    kind = "dataset.register"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    provider: str
    files: int
    total_bytes: int
    card: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class DatasetReindexed(JournalEvent):
    """A dataset version's disclosure-check index was rebuilt at ``index_location``."""

    kind = "dataset.reindex"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    index_location: str


@dataclass(frozen=True, kw_only=True)
class DatasetRolesSet(JournalEvent):
    """The provider's user confirmed or corrected the roles of ``dataset`` ``version``'s
    columns: ``changed`` (column: new role) and ``before`` (column: old role)."""

    kind = "dataset.roles"
    subject_template = "dataset:{dataset}"
    dataset: str
    version: str
    changed: dict[str, str]
    before: dict[str, str | None]


@dataclass(frozen=True, kw_only=True)
class DatasetClassified(JournalEvent):
    """A dataset version's classification changed from ``before`` to ``after``."""

    kind = "dataset.classify"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    before: str
    after: str


@dataclass(frozen=True, kw_only=True)
class DatasetAccepted(JournalEvent):
    """The provider's user accepted a quarantined version despite its quality report
    (``errors`` failed checks), for ``reason``: workspaces may mount it from now on."""

    kind = "dataset.accept"
    subject_template = "dataset:{dataset}@{version}"
    dataset: str
    version: str
    provider: str
    errors: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class DatasetUseDeclined(JournalEvent):
    """The provider (``actor`` acting for ``provider``) declined ``project``'s use of
    ``dataset`` ``version`` for ``reason``; ``revoked``: whether a current approval was
    withdrawn with it."""

    kind = "dataset.decline_use"
    subject_template = "project:{project}"
    project: str
    dataset: str
    version: str
    provider: str
    reason: str
    revoked: bool


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
class ProviderDelegateNamed(JournalEvent):
    """A principal of ``provider`` (the actor) named ``user`` its delegate."""

    kind = "provider.delegate"
    subject_template = "provider:{provider}"
    provider: str
    user: str


@dataclass(frozen=True, kw_only=True)
class ProviderAccountRemoved(JournalEvent):
    """``user`` no longer acts for ``provider`` (``delegate``: whether they were one)."""

    kind = "provider.account_remove"
    subject_template = "provider:{provider}"
    provider: str
    user: str
    delegate: bool


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


@dataclass(frozen=True, kw_only=True)
class ApplicationUsesBuilt(JournalEvent):
    """Upgrade step: applications waiting for a decision before providers decided each
    wanted use got one waiting use per dataset, at its newest version (``uses``:
    ``application:dataset@version``); ``missing``: wanted datasets no longer registered."""

    kind = "application.uses_built"
    subject_template = "registry"
    uses: tuple[str, ...]
    missing: tuple[str, ...]


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
    """``user``'s workspace of ``project`` was stopped for ``reason``: by the enforcer
    (``actor`` ``enforcer``) or by an operator from the console (their name)."""

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


@dataclass(frozen=True, kw_only=True)
class DatasetDeletionRequested(JournalEvent):
    """``actor`` (the version's provider or an operator) asked to delete ``name``
    ``version``; the enforcer deletes it once no open project uses it. ``location`` and
    ``index_location``: what will be removed from the library and its indexes."""

    kind = "dataset.delete.requested"
    subject_template = "dataset:{name}@{version}"
    name: str
    version: str
    location: str
    index_location: str


@dataclass(frozen=True, kw_only=True)
class DatasetDeleted(JournalEvent):
    """A dataset version left the library, its indexes and every project
    (``detached_from``: the ended projects that had mounted it; ``bytes``: freed)."""

    kind = "dataset.deleted"
    subject_template = "dataset:{name}@{version}"
    name: str
    version: str
    requested_by: str
    detached_from: tuple[str, ...]
    bytes: int


@dataclass(frozen=True, kw_only=True)
class ProjectClosed(JournalEvent):
    """``project`` was closed: its workspaces ``stopped``, what the policy keeps in the
    backup ``archive``, ``released`` folders, its network removed; ``was``: its status."""

    kind = "project.close"
    subject_template = "project:{project}"
    project: str
    stopped: tuple[str, ...]
    archive: str | None
    released: int
    network_removed: bool
    was: str


@dataclass(frozen=True, kw_only=True)
class RetentionDeleted(JournalEvent):
    """The retention policy's period for ``what`` (work folders, blobs, the project key...)
    ran out for ``project`` (ended ``ended``): ``items`` were deleted."""

    kind = "retention.delete"
    subject_template = "project:{project}"
    project: str
    what: str
    items: int
    ended: str
    period: str


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


# -- people: sign-in, second factors, standing ----------------------------------------
@dataclass(frozen=True, kw_only=True)
class LoginLocked(JournalEvent):
    """``user``'s account was locked after repeated failed sign-ins from ``address``, until
    ``until`` (the failures themselves are operational state, not journal entries)."""

    kind = "login.locked"
    subject_template = "user:{user}"
    user: str
    address: str
    until: datetime


@dataclass(frozen=True, kw_only=True)
class LoginUnlocked(JournalEvent):
    """An operator lifted ``user``'s sign-in lock and forgot their failures."""

    kind = "login.unlock"
    subject_template = "user:{user}"
    user: str


@dataclass(frozen=True, kw_only=True)
class SecondFactorEnrolled(JournalEvent):
    """``user`` enrolled a second factor (``method``) and got ``codes`` recovery codes
    (never the secret or the codes)."""

    kind = "mfa.enrol"
    subject_template = "user:{user}"
    user: str
    method: str
    codes: int


@dataclass(frozen=True, kw_only=True)
class ExternalFactorRecorded(JournalEvent):
    """An identity provider (``issuer``) confirmed ``user``'s second factor with
    ``methods`` (the ID token's ``amr``); journaled when first seen or when it changes."""

    kind = "mfa.external"
    subject_template = "user:{user}"
    user: str
    issuer: str
    methods: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SecondFactorReset(JournalEvent):
    """An operator removed ``user``'s second factor and recovery codes (``reason``)."""

    kind = "mfa.reset"
    subject_template = "user:{user}"
    user: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RecoveryCodeUsed(JournalEvent):
    """``user`` signed in with a one-use recovery code; ``left`` remain."""

    kind = "mfa.recovery_code"
    subject_template = "user:{user}"
    user: str
    left: int


@dataclass(frozen=True, kw_only=True)
class CliLoggedIn(JournalEvent):
    """``user`` opened a personal command-line credential (``cleanroom login``)."""

    kind = "cli.login"
    subject_template = "user:{user}"
    user: str


@dataclass(frozen=True, kw_only=True)
class CliLoggedOut(JournalEvent):
    """``user``'s command-line credential was closed (``cleanroom logout``)."""

    kind = "cli.logout"
    subject_template = "user:{user}"
    user: str


@dataclass(frozen=True, kw_only=True)
class IdentityVerified(JournalEvent):
    """``user``'s identity was verified by ``method`` (``reference``: the evidence seen);
    ``bootstrap``: recorded by the host while no operator was in standing yet."""

    kind = "person.verify"
    subject_template = "user:{user}"
    user: str
    method: str
    reference: str
    bootstrap: bool


@dataclass(frozen=True, kw_only=True)
class TrainingRecorded(JournalEvent):
    """``user`` passed ``course`` on ``passed_on`` (valid until ``expires_on``);
    ``bootstrap`` as for :class:`IdentityVerified`."""

    kind = "person.training"
    subject_template = "user:{user}"
    user: str
    course: str
    passed_on: date
    expires_on: date | None
    bootstrap: bool


@dataclass(frozen=True, kw_only=True)
class AccountDisabled(JournalEvent):
    """``user``'s account was disabled (``reason``): they may not sign in."""

    kind = "account.disable"
    subject_template = "user:{user}"
    user: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AccountEnabled(JournalEvent):
    """``user``'s account was enabled again."""

    kind = "account.enable"
    subject_template = "user:{user}"
    user: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class AccountExpirySet(JournalEvent):
    """The day after which ``user`` may not sign in moved (``None``: no expiry)."""

    kind = "account.expiry"
    subject_template = "user:{user}"
    user: str
    before: date | None
    after: date | None


@dataclass(frozen=True, kw_only=True)
class AssessmentRecorded(JournalEvent):
    """An application's data processing assessment was recorded or replaced: its
    ``reference`` and ``outcome``."""

    kind = "application.assessment"
    subject_template = "application:{application}"
    application: int
    reference: str
    outcome: str


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


# -- egress (the gateway's records) ------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class EgressEvent(JournalEvent):
    """Base of the egress gateway's records about ``user``'s browser traffic in
    ``project``; ``facts`` (the record's figures) are stored flat in the entry's detail."""

    subject_template = "{user}/{project}"
    user: str
    project: str
    facts: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        """``user``, ``project`` and the facts, side by side."""
        return {"user": self.user, "project": self.project, **self.facts}


@dataclass(frozen=True, kw_only=True)
class EgressHour(EgressEvent):
    """The bytes that reached the browser in one closed hour (``hour``, ``bytes``,
    ``by_kind``: by route kind, ``exempt_bytes``: the image's own static files)."""

    kind = "egress.hour"


@dataclass(frozen=True, kw_only=True)
class EgressAlert(EgressEvent):
    """The researcher passed the policy's alert threshold of their day's budget
    (``day_bytes`` of ``day_limit``, ``threshold``)."""

    kind = "egress.alert"


@dataclass(frozen=True, kw_only=True)
class EgressRefused(EgressEvent):
    """The gateway refused or withheld something (``reason``, ``count`` of the same
    refusal within one second, ``path`` and ``method`` where known)."""

    kind = "egress.refused"


@dataclass(frozen=True, kw_only=True)
class EgressRouteSet(EgressEvent):
    """The spawner registered where a workspace's server lives (``target``) and the
    image's static files exempt from the budget (``manifest_files``)."""

    kind = "egress.route"


@dataclass(frozen=True, kw_only=True)
class EgressGranted(EgressEvent):
    """An officer (``actor``) granted ``bytes`` more egress today, for ``reason``."""

    kind = "egress.grant"


EGRESS_EVENTS: dict[str, type[EgressEvent]] = {
    cls.kind: cls for cls in (EgressHour, EgressAlert, EgressRefused, EgressRouteSet, EgressGranted)
}
"""The gateway's record kinds, by the action it queues them under."""


def all_events() -> list[type[JournalEvent]]:
    """Every kind of event, for tests and docs."""
    return [
        cls
        for cls in globals().values()
        if isinstance(cls, type) and issubclass(cls, JournalEvent) and "kind" in vars(cls)
    ]
