"""Registry tables: users, projects, memberships, datasets and their files, images.

The registry is the single source of truth the hub reads at spawn time, so a change
(a new member, a removed dataset) takes effect without a restart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the registry uses."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the registry's tables."""


OPERATIONAL: dict[str, bool] = {"operational": True}
"""``__table_args__`` info of an operational table: state the system keeps to run (sign-in
failure counters, the last TOTP step used), not a record of anyone's act. Such a table is
written only in :meth:`cleanroom.registry.database.RegistryDatabase.operational`
transactions, which need no journal entry and may change nothing else; a journaled write
may change it too. See docs/identity.md, "What the journal records"."""


def is_operational(table: object) -> bool:
    """True for an operational table (see :data:`OPERATIONAL`)."""
    info = getattr(table, "info", None)
    return bool(info and info.get("operational"))


class User(Base):
    """A person who can log in. Roles: researcher, officer, operator, provider."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    roles: Mapped[str] = mapped_column(String(200), default="researcher")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def role_set(self) -> set[str]:
        """The user's roles as a set."""
        return {r for r in self.roles.split(",") if r}


class Project(Base):
    """An approved piece of work: its members, datasets, images and quota tier."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="approved")
    quota_tier: Mapped[str] = mapped_column(String(40), default="standard")
    # How the workspace reaches the researcher: "standard" (JupyterLab in their browser)
    # or "restricted" (only pixels, through the viewer; cleanroom.registry.access).
    access_mode: Mapped[str] = mapped_column(String(20), default="standard")
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(32), default="")

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )
    datasets: Mapped[list[ProjectDataset]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )
    images: Mapped[list[ProjectImage]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )


class Membership(Base):
    """A user's membership of a project."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_name", "user_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    added_by: Mapped[str] = mapped_column(String(32), default="")
    ends_on: Mapped[date | None] = mapped_column(Date)

    project: Mapped[Project] = relationship(back_populates="memberships")


class FormerMembership(Base):
    """A membership that was removed: kept, because a former member is not independent.

    The airlock refuses former members as reviewers of the project's requests; names
    are plain strings so the record outlives the rows it names.
    """

    __tablename__ = "former_memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(String(64), index=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    added_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_by: Mapped[str] = mapped_column(String(32), default="")


class Dataset(Base):
    """One registered, immutable version of a dataset in the library."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text)
    index_location: Mapped[str | None] = mapped_column(Text)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    registered_by: Mapped[str] = mapped_column(String(32), default="")

    files: Mapped[list[DatasetFile]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", order_by="DatasetFile.path"
    )


class DatasetFile(Base):
    """A file of a dataset version, with its checksum."""

    __tablename__ = "dataset_files"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dataset_name", "dataset_version"],
            ["datasets.name", "datasets.version"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_name: Mapped[str] = mapped_column(String(40))
    dataset_version: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    dataset: Mapped[Dataset] = relationship(back_populates="files")


class ProjectDataset(Base):
    """A dataset version a project may mount at ``/data/<name>``."""

    __tablename__ = "project_datasets"
    __table_args__ = (
        UniqueConstraint("project_name", "dataset_name"),
        ForeignKeyConstraint(
            ["dataset_name", "dataset_version"], ["datasets.name", "datasets.version"]
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"))
    dataset_name: Mapped[str] = mapped_column(String(40))
    dataset_version: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="datasets")
    dataset: Mapped[Dataset] = relationship()


class ProjectImage(Base):
    """An image (by name, e.g. ``notebook``) a project's workspaces may run."""

    __tablename__ = "project_images"
    __table_args__ = (UniqueConstraint("project_name", "image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"))
    image: Mapped[str] = mapped_column(String(40))

    project: Mapped[Project] = relationship(back_populates="images")


# -- governance: applications, provider approvals, images, runs, ingress, journal --------
class Application(Base):
    """An application for a project: what a team asks for, and the operator's decision."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    datasets: Mapped[str] = mapped_column(Text, default="")  # comma-separated names
    members: Mapped[str] = mapped_column(Text, default="")  # comma-separated user names
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    pledge_signed_by: Mapped[str] = mapped_column(Text, default="")  # members who signed
    applicant: Mapped[str] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")
    project_name: Mapped[str | None] = mapped_column(String(40))
    # The data processing assessment the applicants name (its outcome is the operator's
    # record, ProcessingAssessment); "" when they name none.
    assessment_reference: Mapped[str] = mapped_column(String(200), default="")

    uses: Mapped[list[ApplicationUse]] = relationship(
        back_populates="application",
        cascade="all, delete-orphan",
        order_by="ApplicationUse.dataset_name",
    )


class ApplicationUse(Base):
    """One dataset version an application wants, and its provider's decision on that use
    (``waiting``, ``approved`` or ``declined``). The operator's approval turns an approved
    use into the project's :class:`DatasetApproval`.

    Dataset names are plain strings, not a foreign key: the record of what was asked and
    decided outlives a version that retention deletes.
    """

    __tablename__ = "application_uses"
    __table_args__ = (UniqueConstraint("application_id", "dataset_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    dataset_name: Mapped[str] = mapped_column(String(40))
    dataset_version: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")

    application: Mapped[Application] = relationship(back_populates="uses")


class ProviderAccount(Base):
    """A user who acts for a data provider (the provider named on dataset versions)."""

    __tablename__ = "provider_accounts"
    __table_args__ = (UniqueConstraint("provider", "user_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"))
    added_by: Mapped[str] = mapped_column(String(32), default="")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Empty for a principal (an operator granted it), else the principal who named this
    # delegate (cleanroom.registry.delegates).
    delegated_by: Mapped[str] = mapped_column(String(32), default="")


class DatasetApproval(Base):
    """A provider's approval that a project may use one dataset version (or its revocation)."""

    __tablename__ = "dataset_approvals"
    __table_args__ = (UniqueConstraint("project_name", "dataset_name", "dataset_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"))
    dataset_name: Mapped[str] = mapped_column(String(40))
    dataset_version: Mapped[str] = mapped_column(String(32))
    approved_by: Mapped[str] = mapped_column(String(32))
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_by: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImageState(Base):
    """The deployment's decision on an image name: allowed (default) or retired."""

    __tablename__ = "image_states"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="allowed")
    changed_by: Mapped[str] = mapped_column(String(32), default="")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class WorkspaceRun(Base):
    """One workspace that started: who, which project, and the exact image digest."""

    __tablename__ = "workspace_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(32))
    project_name: Mapped[str] = mapped_column(String(40))
    image: Mapped[str] = mapped_column(String(200))
    image_digest: Mapped[str] = mapped_column(String(200))
    datasets: Mapped[str] = mapped_column(Text, default="")
    container_id: Mapped[str] = mapped_column(String(80), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IngressRequest(Base):
    """A file a member asks to bring into a project's shared folder, and its review."""

    __tablename__ = "ingress_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_name: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"))
    requester: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str] = mapped_column(Text, default="")


class JournalEntry(Base):
    """One operator, provider or ingress act; each entry hashes the one before it."""

    __tablename__ = "journal"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class JournalHead(Base):
    """The single row naming the journal's last entry (count and hash).

    Written in the same transaction as every append, so deleting entries from the end of
    the journal is found; locking it serialises appends.
    """

    __tablename__ = "journal_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


# -- people's standing (hub/cleanroom/registry/people.py) ------------------------------
class SecondFactor(Base):
    """A person's enrolled TOTP secret."""

    __tablename__ = "second_factors"

    user_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TotpStep(Base):
    """Operational: the last TOTP time step a person used (the replay guard).

    Apart from :class:`SecondFactor` because it moves at every sign-in, which is no act
    worth a journal entry (the sign-in itself is in the hub's log).
    """

    __tablename__ = "totp_steps"
    __table_args__ = {"info": OPERATIONAL}

    user_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_step: Mapped[int] = mapped_column(Integer, default=-1)


class ExternalFactor(Base):
    """A second factor confirmed by an external identity provider (the ID token's
    ``amr`` claim): the issuer and methods of the confirmation last recorded."""

    __tablename__ = "external_factors"

    user_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(200))
    methods: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecoveryCode(Base):
    """One hashed, one-use recovery code."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(32), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailures(Base):
    """Operational: consecutive failed log-ins of one account (``user:NAME``) or address
    (``addr:IP``), and the account's lock.

    Keyed by the name as typed, existing or not, so that an unknown name is throttled
    exactly like a known one. A lock, and an operator's unlock, are journaled.
    """

    __tablename__ = "login_failures"
    __table_args__ = {"info": OPERATIONAL}

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdentityVerification(Base):
    """How, by whom and when a person's identity was verified."""

    __tablename__ = "identity_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(32), index=True)
    method: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str] = mapped_column(Text, default="")
    verified_by: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingRecord(Base):
    """A course a person passed, and when it expires."""

    __tablename__ = "training_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(32), index=True)
    course: Mapped[str] = mapped_column(String(80))
    passed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccountState(Base):
    """Whether an account is disabled, and when it expires (none: active, no expiry)."""

    __tablename__ = "account_states"

    user_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    expires_on: Mapped[date | None] = mapped_column(Date)


class ProcessingAssessment(Base):
    """An application's data processing assessment: its reference and outcome."""

    __tablename__ = "processing_assessments"

    application_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(40))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CliSession(Base):
    """A personal command-line credential from ``cleanroom login`` (stored hashed)."""

    __tablename__ = "cli_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- the data library's cards (hub/cleanroom/registry/library.py) -----------------------
class DatasetCard(Base):
    """A dataset version's card: classification, description, terms, its Table Schema,
    the quality report made at registration and whether the version may be used.

    ``status``: ``verified`` (the provider's schema holds), ``profiled`` (no schema given:
    profiled only), ``quarantined`` (the provider's own constraints fail: no workspace
    mounts it) or ``accepted`` (quarantined, then accepted by the provider). A version
    registered before cards existed has no row and reads as the policy's default
    classification, ``profiled`` (see cleanroom.library.catalogue).
    """

    __tablename__ = "dataset_cards"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dataset_name", "dataset_version"],
            ["datasets.name", "datasets.version"],
            ondelete="CASCADE",
        ),
    )

    dataset_name: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset_version: Mapped[str] = mapped_column(String(32), primary_key=True)
    classification: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, default="")
    licence: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="profiled")
    table_schema: Mapped[str] = mapped_column(Text, default="")  # JSON, "" when none
    quality_report: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    accepted_by: Mapped[str | None] = mapped_column(String(32))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accept_reason: Mapped[str] = mapped_column(Text, default="")
