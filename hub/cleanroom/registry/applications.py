"""Applications for projects: drafted and submitted by a researcher, signed by each named
member, each wanted dataset's use decided by its provider, then decided by an operator,
whose approval creates the project with its members, datasets and the providers'
approvals.

Why an application stays its own record until the operator's approval, rather than a
project in a ``proposed`` state: everything that reads projects (workspace starts, the
airlock's membership checks, quotas, enforcement of end dates) may then trust that a
project exists only once decided, with no state to filter out in each of them. The
providers decide the application's uses (:class:`~cleanroom.registry.models.ApplicationUse`)
with the same role, standing and "acts for this provider" checks as a project's use, and
the approval carries each approved use over as the project's
:class:`~cleanroom.registry.models.DatasetApproval`.

The stored ``status`` moves along :data:`STATUS_TRANSITIONS`; what the applicants see is
the :attr:`ApplicationInfo.stage` derived from it, the signatures and the uses
(:data:`STAGES`). Part of the registry's one writer (mixed into ``Governance``): each
write validates first (a refusal writes nothing) and journals its typed event in the
same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import events, names
from cleanroom.registry.backbone import actor_name, check_images_usable, check_tier
from cleanroom.registry.database import RegistryDatabase
from cleanroom.registry.models import (
    Application,
    ApplicationUse,
    Dataset,
    DatasetApproval,
    DatasetCard,
    Membership,
    Project,
    ProjectDataset,
    ProjectImage,
    User,
)
from cleanroom.registry.store import dataset_row

if TYPE_CHECKING:
    from cleanroom.registry.people import People

DRAFT, PENDING, APPROVED, DECLINED = "draft", "pending", "approved", "declined"
WITHDRAWN = "withdrawn"
STATUS_TRANSITIONS: dict[str, tuple[str, ...]] = {
    DRAFT: (DRAFT, PENDING, WITHDRAWN),  # saved again by its applicant; submitted; withdrawn
    PENDING: (APPROVED, DECLINED, WITHDRAWN),  # the operator decides; a provider's decline
    # ends it; its applicant withdraws it
    APPROVED: (),
    DECLINED: (),
    WITHDRAWN: (),
}
"""The stored status and where it may go: a decision, and a withdrawal, is final."""

STAGES = (
    "draft",
    "waiting for signatures",
    "waiting for providers",
    "waiting for the operator",
    "approved",
    "declined",
    "withdrawn",
)
"""What the applicants see, in order; the three waiting stages are a submitted (pending)
application's."""

SIGNING, PROVIDERS, OPERATOR = STAGES[1:4]
STAGE_MOVES: tuple[tuple[str, str, str, str], ...] = (
    ("[*]", DRAFT, "applicant", "application.draft"),
    ("[*]", SIGNING, "applicant", "application.submit"),
    (DRAFT, DRAFT, "applicant", "application.draft"),
    (DRAFT, SIGNING, "applicant", "application.submit"),
    (SIGNING, SIGNING, "member", "application.sign"),
    (SIGNING, PROVIDERS, "member", "application.sign"),  # the last signature, data wanted
    (SIGNING, OPERATOR, "member", "application.sign"),  # the last signature, no data
    (PROVIDERS, PROVIDERS, "provider", "application.approve_use"),  # another use waits
    (PROVIDERS, OPERATOR, "provider", "application.approve_use"),
    (PROVIDERS, DECLINED, "provider", "application.decline_use"),
    (SIGNING, DECLINED, "operator", "application.decline"),
    (PROVIDERS, DECLINED, "operator", "application.decline"),
    (SIGNING, SIGNING, "operator", "application.assessment"),
    (PROVIDERS, PROVIDERS, "operator", "application.assessment"),
    (OPERATOR, OPERATOR, "operator", "application.assessment"),
    (OPERATOR, DECLINED, "operator", "application.decline"),
    (OPERATOR, APPROVED, "operator", "application.approve"),
    (DRAFT, WITHDRAWN, "applicant", "application.withdraw"),
    (SIGNING, WITHDRAWN, "applicant", "application.withdraw"),
    (PROVIDERS, WITHDRAWN, "applicant", "application.withdraw"),
    (OPERATOR, WITHDRAWN, "applicant", "application.withdraw"),
)
"""Every move between stages: (from, to, whose act, its journal action); ``[*]`` is a new
application. The docs' diagram is generated from it (cleanroom.registry.application_diagram)
and a test holds the domain to it."""

PLEDGE = (
    "I will use the data only for this project's stated purpose, inside the clean room. "
    "I will not try to take data out except through the airlock's reviewed releases, nor "
    "try to identify any person, company or site in it. I will keep my credentials to "
    "myself and report any breach or suspected breach to the operators at once. I accept "
    "that my work in the clean room is recorded."
)
"""The pledge each named member signs; the journal records the sha256 of the text signed."""
PLEDGE_SHA256 = hashlib.sha256(PLEDGE.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


@dataclass(frozen=True)
class UseInfo:
    """One dataset version an application wants, and its provider's decision."""

    dataset: str
    version: str
    provider: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str


@dataclass(frozen=True)
class ApplicationInfo:
    """An application for a project and, once made, its decision."""

    id: int
    title: str
    purpose: str
    datasets: tuple[str, ...]
    members: tuple[str, ...]
    pledge_signed_by: tuple[str, ...]
    starts_on: date | None
    ends_on: date
    applicant: str
    submitted_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    project: str | None
    assessment_reference: str = ""
    uses: tuple[UseInfo, ...] = ()

    @property
    def unsigned(self) -> tuple[str, ...]:
        """Named members who have not signed the pledge yet."""
        return tuple(m for m in self.members if m not in self.pledge_signed_by)

    @property
    def stage(self) -> str:
        """Where the application stands (one of :data:`STAGES`)."""
        if self.status != PENDING:
            return self.status
        return pending_stage(bool(self.unsigned), any(u.status == "waiting" for u in self.uses))


def pending_stage(unsigned: bool, uses_waiting: bool) -> str:
    """A submitted application's stage: signatures first, then its providers, then the
    operator (the page's stage and the operators' queue order both read it)."""
    if unsigned:
        return SIGNING
    if uses_waiting:
        return PROVIDERS
    return OPERATOR


def application_info(a: Application) -> ApplicationInfo:
    """The caller's view of an application row."""
    return ApplicationInfo(
        id=a.id,
        title=a.title,
        purpose=a.purpose,
        datasets=_split(a.datasets),
        members=_split(a.members),
        pledge_signed_by=_split(a.pledge_signed_by),
        starts_on=a.starts_on,
        ends_on=a.ends_on,
        applicant=a.applicant,
        submitted_at=a.submitted_at,
        status=a.status,
        decided_by=a.decided_by,
        decided_at=a.decided_at,
        reason=a.reason,
        project=a.project_name,
        assessment_reference=a.assessment_reference or "",
        uses=tuple(
            UseInfo(u.dataset_name, u.dataset_version, u.provider, u.status, u.decided_by,
                    u.decided_at, u.reason)
            for u in sorted(a.uses, key=lambda u: u.dataset_name)
        ),
    )  # fmt: skip


def can_see(app: ApplicationInfo, user: str, roles: frozenset[str], providers: list[str]) -> bool:
    """Whether ``user`` may read ``app``: its applicant and members; operators and the
    wanted datasets' providers once it is submitted."""
    if user == app.applicant or user in app.members:
        return True
    if app.status == DRAFT:
        return False
    return "operator" in roles or any(u.provider in providers for u in app.uses)


def check_may_see(
    app: ApplicationInfo, user: str, roles: frozenset[str], providers: list[str]
) -> None:
    """Raise Forbidden unless :func:`can_see`."""
    if not can_see(app, user, roles, providers):
        raise Forbidden(
            f"application {app.id} is not yours: only its applicant, its members, operators "
            "and the providers of the data it wants read it"
        )


def _check_independent(app: Application, actor: str) -> None:
    if actor == app.applicant:
        raise Forbidden("nobody decides on their own application")
    if actor in _split(app.members):
        raise Forbidden(f"{actor!r} is a member of application {app.id} and may not decide on it")


def _check_researcher(s: Session, name: str, what: str) -> None:
    user = s.get(User, name)
    if user is None or "researcher" not in user.role_set:
        raise Forbidden(f"{name!r} does not hold the researcher role and may not {what}")


def _members(s: Session, members: list[str]) -> list[str]:
    members = list(dict.fromkeys(m.strip() for m in members if m.strip()))
    if not members:
        raise InvalidInput("an application names at least one member")
    for member in members:
        user = s.get(User, member)
        if user is None or "researcher" not in user.role_set:
            raise InvalidInput(f"{member!r} is not a known researcher: members are researchers")
    return members


def _wanted(s: Session, datasets: list[str]) -> list[Dataset]:
    """The versions wanted, each ``name`` (its newest) or ``name@version``."""
    out: list[Dataset] = []
    for item in dict.fromkeys(d.strip() for d in datasets if d.strip()):
        name, _, version = item.partition("@")
        if name in {d.name for d in out}:
            raise InvalidInput(f"dataset {name} is wanted twice: ask for one version of it")
        d = dataset_row(s, name, version or None)
        card = s.get(DatasetCard, (d.name, d.version))
        if card is not None and card.status == "quarantined":
            raise InvalidInput(
                f"dataset {d.name} version {d.version} is quarantined: no project may use it "
                "until its provider accepts it"
            )
        out.append(d)
    return out


def _check_period(starts_on: date | None, ends_on: date) -> None:
    if ends_on < date.today():
        raise InvalidInput(f"the period must end in the future, not on {ends_on}")
    if starts_on and starts_on > ends_on:
        raise InvalidInput(f"the period starts ({starts_on}) after it ends ({ends_on})")


def _application(s: Session, application_id: int) -> Application:
    row = s.get(Application, application_id)
    if row is None:
        raise NotFound(f"there is no application {application_id}")
    return row


def _filtered(
    query: Select[Any],
    status: str | tuple[str, ...] | None,
    providers: list[str] | None,
    person: str | None,
    ids: list[int] | None,
) -> Select[Any]:
    if isinstance(status, str) and status:
        query = query.where(Application.status == status)
    elif status:
        query = query.where(Application.status.in_(status))
    if providers is not None:
        wants = select(ApplicationUse.application_id).where(ApplicationUse.provider.in_(providers))
        query = query.where(Application.id.in_(wants))
    if person:
        query = query.where(
            or_(Application.applicant == person, Application.members.contains(person))
        )
    if ids is not None:
        query = query.where(Application.id.in_(ids))
    return query


def _check_pending(app: Application) -> None:
    if app.status == DRAFT:
        raise Conflict(f"application {app.id} is a draft: its applicant has not submitted it")
    if app.status != PENDING:
        raise Conflict(f"application {app.id} is {app.status} already")


class ApplicationWrites:
    """Applications and the decisions on them (mixed into ``Governance``)."""

    db: RegistryDatabase

    if TYPE_CHECKING:

        @property
        def people(self) -> People: ...

        def _decider(self, actor: str, role: str, what: str) -> str: ...

        def _check_provider(self, s: Session, user: str, dataset: Dataset) -> None: ...

    # -- the applicant's acts ----------------------------------------------------------
    def _fill(
        self,
        s: Session,
        row: Application,
        *,
        title: str,
        purpose: str,
        ends_on: date,
        members: list[str],
        datasets: list[str] | None,
        starts_on: date | None,
        assessment_reference: str,
    ) -> list[Dataset]:
        """Validate the applicant's fields and write them into ``row`` (refusals first)."""
        if not title.strip() or not purpose.strip():
            raise InvalidInput("an application needs a title and a purpose")
        if len(title.strip()) > 200 or len(assessment_reference.strip()) > 200:
            raise InvalidInput("a title and an assessment reference have at most 200 characters")
        _check_period(starts_on, ends_on)
        member_list = _members(s, members)
        wanted = _wanted(s, datasets or [])
        same = s.scalar(
            select(Application.id).where(
                Application.applicant == row.applicant,
                Application.title == title.strip(),
                Application.status.in_((DRAFT, PENDING)),
                Application.id != (row.id or 0),
            )
        )
        if same is not None:
            raise Conflict(
                f"your application {same} has the title {title.strip()!r} and is open already"
            )
        row.title, row.purpose = title.strip(), purpose.strip()
        row.starts_on, row.ends_on = starts_on, ends_on
        row.members = ",".join(member_list)
        row.datasets = ",".join(d.name for d in wanted)
        row.assessment_reference = assessment_reference.strip()
        if row.uses:  # the old rows go first: a dataset kept would meet its own old row
            row.uses.clear()
            s.flush()
        row.uses = [
            ApplicationUse(dataset_name=d.name, dataset_version=d.version, provider=d.provider)
            for d in wanted
        ]
        return wanted

    def save_draft(
        self,
        *,
        title: str,
        purpose: str,
        ends_on: date,
        actor: str,
        members: list[str],
        datasets: list[str] | None = None,
        starts_on: date | None = None,
        assessment_reference: str = "",
        application: int | None = None,
    ) -> ApplicationInfo:
        """Save a draft by ``actor`` (a researcher): a new one, or their own ``application``
        while it is a draft. Nobody else sees it; nothing waits on it."""
        applicant = actor_name(actor)
        with self.db.write() as tx:
            s = tx.session
            _check_researcher(s, applicant, "apply for projects")
            if application is None:
                row = Application(applicant=applicant, status=DRAFT)
            else:
                row = _application(s, application)
                if row.applicant != applicant:
                    raise Forbidden(
                        f"application {application} is not yours: only its applicant changes it"
                    )
                if row.status != DRAFT:
                    raise Conflict(f"application {application} was submitted already")
            wanted = self._fill(
                s, row, title=title, purpose=purpose, ends_on=ends_on, members=members,
                datasets=datasets, starts_on=starts_on, assessment_reference=assessment_reference,
            )  # fmt: skip
            s.add(row)
            s.flush()
            tx.journal(
                events.ApplicationDraftSaved(
                    actor=applicant,
                    application=row.id,
                    title=row.title,
                    members=_split(row.members),
                    datasets=tuple(f"{d.name}@{d.version}" for d in wanted),
                    ends_on=ends_on,
                )
            )
            return application_info(row)

    def submit_application(
        self,
        *,
        title: str,
        purpose: str,
        ends_on: date,
        actor: str,
        members: list[str],
        datasets: list[str] | None = None,
        starts_on: date | None = None,
        assessment_reference: str = "",
    ) -> ApplicationInfo:
        """Record and submit an application by ``actor`` (a researcher, the applicant):
        title, purpose, datasets wanted (``name`` for its newest version, or
        ``name@version``), members (known researchers), period, the data processing
        assessment's reference. Each member then signs the pledge (:meth:`sign_pledge`)."""
        applicant = actor_name(actor)
        with self.db.write() as tx:
            s = tx.session
            _check_researcher(s, applicant, "apply for projects")
            row = Application(applicant=applicant, status=PENDING)
            self._fill(
                s, row, title=title, purpose=purpose, ends_on=ends_on, members=members,
                datasets=datasets, starts_on=starts_on, assessment_reference=assessment_reference,
            )  # fmt: skip
            s.add(row)
            s.flush()
            tx.journal(self._submitted(row, applicant))
            return application_info(row)

    @staticmethod
    def _submitted(row: Application, applicant: str) -> events.ApplicationSubmitted:
        return events.ApplicationSubmitted(
            actor=applicant,
            application=row.id,
            title=row.title,
            members=_split(row.members),
            datasets=_split(row.datasets),
            ends_on=row.ends_on,
            versions=tuple(sorted(f"{u.dataset_name}@{u.dataset_version}" for u in row.uses)),
            assessment=row.assessment_reference,
        )

    def submit_draft(self, application_id: int, *, actor: str) -> ApplicationInfo:
        """The applicant submits their draft: checked again as it stands now (members
        still researchers, datasets still registered, the period still ahead)."""
        applicant = actor_name(actor)
        with self.db.write() as tx:
            s = tx.session
            row = _application(s, application_id)
            if row.applicant != applicant:
                raise Forbidden(
                    f"application {application_id} is not yours: only its applicant submits it"
                )
            if row.status != DRAFT:
                raise Conflict(f"application {application_id} was submitted already")
            _check_researcher(s, applicant, "apply for projects")
            _check_period(row.starts_on, row.ends_on)
            _members(s, list(_split(row.members)))
            for use in row.uses:
                _wanted(s, [f"{use.dataset_name}@{use.dataset_version}"])
            row.status, row.submitted_at = PENDING, _now()
            tx.journal(self._submitted(row, applicant))
            return application_info(row)

    def sign_pledge(self, application_id: int, *, actor: str) -> ApplicationInfo:
        """A named member (``actor``, a researcher) signs the pledge (:data:`PLEDGE`) for a
        submitted application; only the member themselves signs."""
        member = actor_name(actor)
        with self.db.write() as tx:
            s = tx.session
            row = _application(s, application_id)
            if member not in _split(row.members):
                raise Forbidden(
                    f"{member!r} is not named on application {application_id} and signs "
                    "nothing there"
                )
            if row.status == DRAFT:
                raise Conflict(
                    f"application {application_id} is a draft: members sign once its "
                    "applicant submits it"
                )
            _check_pending(row)
            _check_researcher(s, member, "sign the pledge")
            signed = _split(row.pledge_signed_by)
            if member in signed:
                raise Conflict(f"{member} signed application {application_id}'s pledge already")
            row.pledge_signed_by = ",".join((*signed, member))
            tx.journal(events.PledgeSigned(actor=member, application=row.id, pledge=PLEDGE_SHA256))
            return application_info(row)

    # -- the providers' acts -------------------------------------------------------------
    def _use_to_decide(
        self, s: Session, application_id: int, dataset: str, by: str
    ) -> tuple[Application, ApplicationUse, Dataset]:
        row = _application(s, application_id)
        use = next((u for u in row.uses if u.dataset_name == dataset), None)
        if use is None:
            raise NotFound(f"application {application_id} does not want dataset {dataset}")
        d = dataset_row(s, use.dataset_name, use.dataset_version)
        self._check_provider(s, by, d)
        _check_pending(row)
        _check_independent(row, by)
        unsigned = [m for m in _split(row.members) if m not in _split(row.pledge_signed_by)]
        if unsigned:
            raise Conflict(
                f"application {application_id} waits for its members' signatures first: "
                + ", ".join(unsigned)
            )
        if use.status != "waiting":
            raise Conflict(
                f"the use of {d.name} {d.version} by application {application_id} is "
                f"{use.status} already"
            )
        return row, use, d

    def approve_application_use(
        self, application_id: int, dataset: str, *, actor: str
    ) -> ApplicationInfo:
        """The provider's user ``actor`` (in standing, acting for the dataset's provider,
        not named on the application) approves its use of the wanted version, once every
        member signed."""
        by = self._decider(actor, "provider", "approve dataset use")
        with self.db.write() as tx:
            row, use, d = self._use_to_decide(tx.session, application_id, dataset, by)
            use.status, use.decided_by, use.decided_at = "approved", by, _now()
            tx.journal(
                events.ApplicationUseApproved(
                    actor=by, application=row.id, dataset=d.name, version=d.version,
                    provider=d.provider,
                )
            )  # fmt: skip
            return application_info(row)

    def decline_application_use(
        self, application_id: int, dataset: str, reason: str, *, actor: str
    ) -> ApplicationInfo:
        """The provider's user declines the application's use of the wanted version, with
        ``reason``: the application is declined with it (its applicant may apply again
        without that dataset)."""
        by = self._decider(actor, "provider", "decline dataset use")
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("say why the project may not use the data")
        with self.db.write() as tx:
            row, use, d = self._use_to_decide(tx.session, application_id, dataset, by)
            now = _now()
            use.status, use.decided_by, use.decided_at, use.reason = "declined", by, now, reason
            row.status, row.decided_by, row.decided_at = DECLINED, by, now
            row.reason = f"{d.provider} declined the use of {d.name} {d.version}: {reason}"
            tx.journal(
                events.ApplicationUseDeclined(
                    actor=by, application=row.id, dataset=d.name, version=d.version,
                    provider=d.provider, reason=reason,
                )
            )  # fmt: skip
            return application_info(row)

    # -- the operator's acts -------------------------------------------------------------
    def approve_application(
        self,
        application_id: int,
        *,
        project: str,
        actor: str,
        quota_tier: str = "standard",
        images: tuple[str, ...] = ("notebook",),
        reason: str = "",
    ) -> ApplicationInfo:
        """Approve: create the project, its members (ending with the period), its dataset
        links and, for each use its provider approved on the application, the project's
        approval.

        Only an operator in standing who is neither the applicant nor a named member
        approves, and only once every member signed the pledge, every wanted use was
        approved by its provider, and with an approving data processing assessment."""
        actor = self._decider(actor, "operator", "approve applications")
        names.project_name(project)
        check_tier(quota_tier)  # an unknown tier is refused before anything is written
        images = tuple(dict.fromkeys(images))
        with self.db.write() as tx:
            s = tx.session
            app = _application(s, application_id)
            _check_pending(app)
            _check_independent(app, actor)
            missing = set(_split(app.members)) - set(_split(app.pledge_signed_by))
            if missing:
                raise Forbidden(f"not every member signed the pledge: {', '.join(sorted(missing))}")
            waiting = [u for u in app.uses if u.status != "approved"]
            if waiting:
                raise Forbidden(
                    f"application {application_id} waits for its providers' decisions on: "
                    + ", ".join(f"{u.dataset_name} {u.dataset_version} ({u.provider})"
                                for u in waiting)
                )  # fmt: skip
            self.people.check_assessment(s, application_id)
            if s.get(Project, project) is not None:
                raise Conflict(f"project {project!r} exists already")
            check_images_usable(s, images)
            row = Project(
                name=project,
                title=app.title,
                quota_tier=quota_tier,
                ends_on=app.ends_on,
                created_by=actor,
            )
            row.images = [ProjectImage(image=i) for i in images]
            row.memberships = [
                Membership(user_name=m, added_by=actor, ends_on=app.ends_on)
                for m in _split(app.members)
            ]
            wanted = [dataset_row(s, u.dataset_name, u.dataset_version) for u in app.uses]
            row.datasets = [
                ProjectDataset(dataset_name=d.name, dataset_version=d.version) for d in wanted
            ]
            s.add(row)
            s.flush()
            for use in app.uses:
                s.add(
                    DatasetApproval(
                        project_name=project,
                        dataset_name=use.dataset_name,
                        dataset_version=use.dataset_version,
                        approved_by=use.decided_by or "",
                        approved_at=use.decided_at or _now(),
                    )
                )
            app.status, app.decided_by, app.decided_at = APPROVED, actor, _now()
            app.reason, app.project_name = reason, project
            tx.journal(
                events.ApplicationApproved(
                    actor=actor,
                    application=application_id,
                    project=project,
                    tier=quota_tier,
                    images=images,
                    reason=reason,
                    uses=tuple(
                        f"{u.dataset_name}@{u.dataset_version}:{u.decided_by}" for u in app.uses
                    ),
                )
            )
            return application_info(app)

    def decline_application(
        self, application_id: int, *, actor: str, reason: str
    ) -> ApplicationInfo:
        """Decline, with a reason the applicant can read (an independent operator)."""
        actor = self._decider(actor, "operator", "decide on applications")
        if not reason.strip():
            raise InvalidInput("declining an application needs a reason")
        with self.db.write() as tx:
            app = _application(tx.session, application_id)
            _check_pending(app)
            _check_independent(app, actor)
            app.status, app.decided_by, app.decided_at = DECLINED, actor, _now()
            app.reason = reason.strip()
            tx.journal(
                events.ApplicationDeclined(
                    actor=actor, application=application_id, reason=reason.strip()
                )
            )
            return application_info(app)

    def withdraw_application(
        self, application_id: int, *, actor: str, reason: str = ""
    ) -> ApplicationInfo:
        """The applicant withdraws their draft or undecided application (final: applying
        again is a new application). Signatures and providers' decisions stay on record;
        nothing waits on it any more."""
        applicant = actor_name(actor)
        with self.db.write() as tx:
            row = _application(tx.session, application_id)
            if row.applicant != applicant:
                raise Forbidden(
                    f"application {application_id} is not yours: only its applicant withdraws it"
                )
            if row.status not in (DRAFT, PENDING):
                raise Conflict(f"application {application_id} is {row.status} already")
            row.status, row.decided_by, row.decided_at = WITHDRAWN, applicant, _now()
            row.reason = reason.strip()
            tx.journal(
                events.ApplicationWithdrawn(
                    actor=applicant, application=application_id, reason=row.reason
                )
            )
            return application_info(row)

    # -- reads -------------------------------------------------------------------------
    def list_applications(
        self,
        status: str | tuple[str, ...] | None = None,
        *,
        providers: list[str] | None = None,
        person: str | None = None,
        ids: list[int] | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ApplicationInfo]:
        """Applications, oldest first (or newest), optionally in a status (or several), wanting data
        of one of ``providers``, made by or naming ``person``, or among ``ids``; one page of
        them with ``offset`` and ``limit`` (filtered and paged by the database)."""
        query = _filtered(select(Application), status, providers, person, ids)
        order = Application.id.desc() if newest_first else Application.id
        query = query.order_by(order).offset(offset).limit(limit)
        with self.db.read() as s:
            rows = s.scalars(query.options(selectinload(Application.uses)))
            found = [application_info(a) for a in rows]
        if person:  # members are stored comma-separated: the database matched a substring
            found = [a for a in found if person == a.applicant or person in a.members]
        return found

    def get_application_count(
        self,
        status: str | tuple[str, ...] | None = None,
        *,
        providers: list[str] | None = None,
        person: str | None = None,
    ) -> int:
        """How many :meth:`list_applications` would list with no page (``person``: an
        upper bound, counted on the stored text)."""
        query = _filtered(select(func.count(Application.id)), status, providers, person, None)
        with self.db.read() as s:
            return int(s.scalar(query) or 0)

    def list_application_queue(self) -> list[int]:
        """Submitted applications' numbers, those waiting for an operator first (every
        member signed, no use waiting for its provider), each part oldest first; read
        from three columns, so the queue of ten thousand is cheap to order and page."""
        with self.db.read() as s:
            pending = s.execute(
                select(Application.id, Application.members, Application.pledge_signed_by)
                .where(Application.status == PENDING)
                .order_by(Application.id)
            ).all()
            waiting_uses = set(
                s.scalars(
                    select(ApplicationUse.application_id)
                    .join(Application, Application.id == ApplicationUse.application_id)
                    .where(Application.status == PENDING, ApplicationUse.status == "waiting")
                    .distinct()
                )
            )
        ready: list[int] = []
        other: list[int] = []
        for number, members, signed in pending:
            unsigned = not set(_split(members)) <= set(_split(signed))
            stage = pending_stage(unsigned, number in waiting_uses)
            (ready if stage == OPERATOR else other).append(number)
        return ready + other

    def get_application(self, application_id: int) -> ApplicationInfo:
        """One application by number."""
        with self.db.read() as s:
            return application_info(_application(s, application_id))
