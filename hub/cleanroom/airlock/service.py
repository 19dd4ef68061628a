"""The airlock's business logic: every act on a release request, checked and audited.

``Airlock`` ties the domain rules (``permissions``, ``rules``, the state table in
``domain``) to storage, blobs, membership and the automatic checks. It knows nothing
of HTTP: handlers turn a web request into an ``Actor`` and one call here, and translate
the ``AirlockError`` it may raise.

Every refusal is itself recorded in the audit log before it is raised.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from . import permissions as perm
from . import rules
from .audit import VerifyResult, export_lines, verify
from .blobs import BlobStore
from .checks_adapter import Checker, DisclosureChecks
from .co_review import DataOwners, StaticDataOwners, co_reviewers, merge
from .content import detect_type
from .domain import (
    AWAITING_REVIEW,
    OFFICER_SCOPE,
    Action,
    Actor,
    AuditEvent,
    Comment,
    CoReview,
    CoReviewer,
    Decision,
    FileUpload,
    Owner,
    ProviderDecision,
    ProviderVote,
    ReleaseRequest,
    RequestFile,
    Review,
    State,
    Vote,
    transition,
)
from .exceptions import AirlockError, BadRequest, InvalidTransition, NotFound, PermissionDenied
from .membership import Membership
from .policy import Policy
from .storage import Independence, Readable, StaleRequest, Storage, one_day_before

MAX_JUSTIFICATION = 10_000
MAX_COMMENT = 10_000


@dataclass(frozen=True)
class RequestPage:
    """One page of a list of requests and how long the whole list is."""

    requests: list[ReleaseRequest]
    total: int
    offset: int


@dataclass(frozen=True)
class Submitted:
    """The outcome of a submission: the request and whether this call created it."""

    request: ReleaseRequest
    created: bool


def submission_digest(project: str, justification: str, files: Sequence[FileUpload]) -> str:
    """A hash that is equal exactly when two submissions carry the same content."""
    parts = [project, justification] + [
        f"{rules.check_path(f.path)}\x00{f.description}\x00{hashlib.sha256(f.data).hexdigest()}"
        for f in sorted(files, key=lambda f: f.path)
    ]
    return hashlib.sha256("\x01".join(parts).encode("utf-8")).hexdigest()


class Airlock:
    """The airlock's operations, each checked against permissions and audited."""

    def __init__(
        self,
        storage: Storage,
        blobs: BlobStore,
        membership: Membership,
        policy: Policy,
        checks: Checker | None = None,
        clock: Callable[[], datetime] | None = None,
        data_owners: DataOwners | None = None,
    ) -> None:
        self.storage = storage
        self.blobs = blobs
        self.membership = membership
        # Without a data library nobody's data asks for co-review.
        self.data_owners: DataOwners = data_owners or StaticDataOwners()
        self.policy = policy
        self.checks: Checker = checks or DisclosureChecks()
        self.clock = clock or (lambda: datetime.now(UTC))

    def warm_up(self) -> None:
        """Load the checks (pandas and friends) now, not in the first submission."""
        self.checks(b"a,b\n1,2\n", "warm-up.csv", "")

    # -- identity ----------------------------------------------------------------------

    def actor(self, username: str, scopes: Sequence[str] | frozenset[str]) -> Actor:
        """The ``Actor`` for a hub-identified user, with their memberships (and, for an
        officer, their standing) looked up now."""
        scopes = frozenset(scopes)
        problem = ""
        standing = getattr(self.membership, "standing_problem", None)
        if standing is not None and OFFICER_SCOPE in scopes:
            problem = standing(username, "officer")
        acts_for = frozenset(self.data_owners.providers_of(username))
        return Actor(
            username=username,
            scopes=scopes,
            projects=frozenset(self.membership.projects_of(username)),
            # Includes the current projects (Membership.affiliations_of says so).
            affiliations=frozenset(self.membership.affiliations_of(username)),
            standing_problem=problem,
            acts_for=acts_for,
            provider_problem=self.data_owners.provider_problem(username) if acts_for else "",
        )

    def _co_reviewers_now(self, project: str) -> list[CoReviewer]:
        """The providers the project's data asks about its releases, read now."""
        return co_reviewers(self.data_owners.uses_of(project))

    @staticmethod
    def _notices(
        actor: str, request_id: str, told: Sequence[CoReviewer], before: Sequence[CoReviewer] = ()
    ) -> list[AuditEvent]:
        """One ``notify_provider`` event per provider newly asked (or asked more strictly)."""
        known = {(c.provider, c.level) for c in before}
        return [
            AuditEvent(
                actor=actor,
                action=Action.NOTIFY_PROVIDER,
                request_id=request_id,
                detail={"provider": c.provider, "level": str(c.level), "datasets": c.datasets},
            )
            for c in told
            if (c.provider, c.level) not in known
        ]

    @contextmanager
    def _refusals_audited(self, actor: Actor, act: str, request_id: str | None) -> Iterator[None]:
        """Record any refusal raised inside as a ``refusal`` audit event, then re-raise."""
        try:
            yield
        except StaleRequest:
            raise  # not a refusal: the caller retries on the fresh state
        except AirlockError as exc:
            self.audit_refusal(actor, act, exc, request_id)
            raise

    def audit_refusal(
        self, actor: Actor, act: str, exc: AirlockError, request_id: str | None = None
    ) -> None:
        """Record a refusal once, however many layers it passes through."""
        if exc.audited:
            return
        self.storage.record(
            audit=AuditEvent(
                actor=actor.username,
                action=Action.REFUSAL,
                request_id=request_id,
                detail={"act": act, "reason": str(exc), "error": type(exc).__name__},
            )
        )
        exc.audited = True

    def _load(self, request_id: str) -> ReleaseRequest:
        return self.storage.get_request(request_id)

    # -- submission --------------------------------------------------------------------

    def submit(
        self,
        actor: Actor,
        project: str,
        justification: str,
        uploads: Sequence[FileUpload],
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Snapshot the files, run the checks and store a submitted request, atomically.

        A retry with the same idempotency key, or a byte-identical repeat within the
        policy's window, returns the first request instead of creating another.
        """
        with self._refusals_audited(actor, "submit", None):
            perm.check_can_submit(actor, project)
            if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
                raise BadRequest("Idempotency-Key must be 1 to 255 characters")
            if idempotency_key:
                found = self.storage.find_by_idempotency_key(actor.username, idempotency_key)
                if found:
                    return Submitted(self._load(found), created=False)
            justification = justification.strip()
            if not justification:
                raise BadRequest("a justification is required")
            if len(justification) > MAX_JUSTIFICATION:
                raise BadRequest(f"the justification is longer than {MAX_JUSTIFICATION} characters")
            rules.check_files(self.policy, uploads)
            now = self.clock()
            digest = submission_digest(project, justification, uploads)
            since = now - timedelta(seconds=self.policy.duplicate_window_seconds)
            found = self.storage.find_duplicate(actor.username, digest, since)
            if found:
                return Submitted(self._load(found), created=False)
            rules.check_daily_quota(
                self.policy,
                self.storage.count_submissions_since(actor.username, one_day_before(now)),
            )
            asked = self._co_reviewers_now(project)
            files = self._snapshot(uploads, project, round_=1)
            request = ReleaseRequest(
                id=secrets.token_hex(8),
                project=project,
                author=actor.username,
                justification=justification,
                state=State.DRAFT,
                created=now,
                updated=now,
                files=files,
                co_reviewers=asked,
            )
            events = transition(
                request,
                State.SUBMITTED,
                Owner.AUTHOR,
                actor.username,
                detail={"project": project},
                files=files,
                file_detail=lambda f: {
                    "path": f.path,
                    "size": f.size,
                    "type": f.content_type,
                    "verdict": f.checks.get("verdict"),
                },
            )
            events += self._notices(actor.username, request.id, asked)
            request.state = State.SUBMITTED
            # The checks above were a fast path; storage repeats them inside the
            # transaction, so a retry racing its original still makes one request.
            twin = self.storage.add_request(
                request,
                idempotency_key=idempotency_key or None,
                digest=digest,
                duplicate_since=since,
                audit=events,
            )
            if twin is not None:
                return Submitted(self._load(twin), created=False)
            return Submitted(self._load(request.id), created=True)

    def _snapshot(
        self, uploads: Sequence[FileUpload], project: str, round_: int
    ) -> list[RequestFile]:
        """Store each upload's bytes and describe them; blobs land before any row does."""
        files = []
        for up in uploads:
            path = rules.check_path(up.path)
            sha = self.blobs.put(up.data, project)
            files.append(
                RequestFile(
                    path=path,
                    sha256=sha,
                    size=len(up.data),
                    content_type=detect_type(up.data, path),
                    description=up.description.strip()[:MAX_COMMENT],
                    round=round_,
                    checks=self.checks(up.data, path.rsplit("/", 1)[-1], project),
                )
            )
        # Request-level checks (differencing across the files and against what the
        # project had released, other tools' reports), added to the files' results.
        across = getattr(self.checks, "check_request", None)
        if callable(across):
            released = [
                f.checks
                for r in self.storage.list_requests(project=project, states=[State.RELEASED])
                for f in r.files
            ]
            across(
                [(f.path, up.data, f.checks) for f, up in zip(files, uploads, strict=True)],
                project,
                released,
            )
        return files

    # -- reading -----------------------------------------------------------------------

    def view(self, actor: Actor, request_id: str) -> ReleaseRequest:
        """A request for display, audited; an independent officer's look opens review."""
        with self._refusals_audited(actor, "view", request_id):
            request = self._load(request_id)
            perm.check_can_view(actor, request)
            view = AuditEvent(actor=actor.username, action=Action.VIEW, request_id=request_id)
            if perm.can_review(actor, request) and actor.username not in request.opened_by:
                move = request.state in AWAITING_REVIEW
                events = [view]
                if move:
                    events += transition(
                        request,
                        State.IN_REVIEW,
                        Owner.OFFICER,
                        actor.username,
                        detail={"from": str(request.state), "round": request.round},
                    )
                try:
                    self.storage.open_review(
                        request_id,
                        request.round,
                        actor.username,
                        request.state if move else None,
                        audit=events,
                    )
                except InvalidTransition:
                    # Another officer opened it first (or it moved on): record this look only.
                    self.storage.open_review(
                        request_id, request.round, actor.username, None, audit=view
                    )
                return self._load(request_id)
            self.storage.record(audit=view)
            return request

    def requests_of(self, actor: Actor, project: str) -> list[ReleaseRequest]:
        """The actor's own requests in a project (what the workspace extension lists)."""
        with self._refusals_audited(actor, "list", None):
            perm.check_can_submit(actor, project)
            return self.storage.list_requests(project=project, author=actor.username)

    def project_requests(
        self, actor: Actor, *, limit: int | None = None, offset: int = 0
    ) -> RequestPage:
        """The requests of every project the actor belongs to, and their own (the
        researcher's page), newest first, ``limit`` of them from ``offset``."""
        readable = Readable(
            actor.username,
            frozenset(p for p in actor.projects if perm.can_list_project(actor, p)),
        )
        found = self.storage.list_requests(
            readable_by=readable, newest_first=True, limit=limit, offset=offset
        )
        return RequestPage(
            requests=found,
            total=self.storage.count_requests(readable_by=readable),
            offset=offset,
        )

    def queue(
        self,
        actor: Actor,
        states: Sequence[State] | None = None,
        *,
        project: str | None = None,
        author: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> RequestPage:
        """Requests for the officers' queue, oldest first, ``limit`` of them from ``offset``.

        Officers see only requests they are independent of, never drafts; operators see
        every request. Storage filters (so a page of 50 reads 50 requests, however long the
        queue); the permission rules are applied again to what it returns.
        """
        if not actor.is_officer:
            perm.check_can_operate(actor)
        wanted = list(states) if states else None
        independent_of = None
        if not actor.is_operator:
            wanted = [s for s in (wanted or State) if s is not State.DRAFT]
            independent_of = Independence(actor.username, actor.projects | actor.affiliations)
        project, author = project or None, author or None
        found = self.storage.list_requests(
            project=project,
            author=author,
            states=wanted,
            independent_of=independent_of,
            limit=limit,
            offset=offset,
        )
        total = self.storage.count_requests(
            project=project, author=author, states=wanted, independent_of=independent_of
        )
        return RequestPage(
            requests=[
                r
                for r in found
                if perm.can_view(actor, r) and (actor.is_operator or perm.is_independent(actor, r))
            ],
            total=total,
            offset=offset,
        )

    def file_content(self, actor: Actor, request_id: str, path: str) -> tuple[RequestFile, bytes]:
        """An unreleased file's verified bytes for an officer's review, audited."""
        with self._refusals_audited(actor, "view_file", request_id):
            request = self._load(request_id)
            perm.check_can_view(actor, request)
            perm.check_can_view_content(actor, request)
            f = self._file(request, path, any_round=True)
            data = self.blobs.get(f.sha256, request.project)
            self.storage.record(
                audit=AuditEvent(
                    actor=actor.username,
                    action=Action.VIEW,
                    request_id=request_id,
                    file_sha256=f.sha256,
                    detail={"path": f.path},
                )
            )
            return f, data

    def download(self, actor: Actor, request_id: str, path: str) -> tuple[RequestFile, bytes]:
        """A released file's verified bytes for a project member, audited."""
        with self._refusals_audited(actor, "download", request_id):
            request = self._load(request_id)
            perm.check_can_download(actor, request)
            f = self._file(request, path)
            data = self.blobs.get(f.sha256, request.project)
            self.storage.record(
                audit=AuditEvent(
                    actor=actor.username,
                    action=Action.DOWNLOAD,
                    request_id=request_id,
                    file_sha256=f.sha256,
                    detail={"path": f.path, "size": f.size},
                )
            )
            return f, data

    @staticmethod
    def _file(request: ReleaseRequest, path: str, any_round: bool = False) -> RequestFile:
        found = request.file(path)
        if found is None and any_round:
            found = next((f for f in reversed(request.files) if f.path == path), None)
        if found is None:
            raise NotFound(f"request {request.id} has no file {path!r}")
        return found

    # -- review ------------------------------------------------------------------------

    def vote(
        self, actor: Actor, request_id: str, path: str, decision: Decision, comment: str = ""
    ) -> None:
        """Record an officer's decision on one file (changeable until the review ends)."""
        with self._refusals_audited(actor, "vote", request_id):
            request = self._load(request_id)
            perm.check_can_review(actor, request)
            if request.state is not State.IN_REVIEW:
                raise InvalidTransition(f"open request {request_id} before voting on it")
            f = self._file(request, path)
            if len(comment) > MAX_COMMENT:
                raise BadRequest(f"the comment is longer than {MAX_COMMENT} characters")
            if decision is not Decision.APPROVE and not comment.strip():
                raise BadRequest(f"say why: a {decision} decision needs a comment for the author")
            vote = Vote(
                officer=actor.username,
                path=f.path,
                decision=decision,
                round=request.round,
                time=self.clock(),
                comment=comment.strip(),
            )
            # The vote itself goes to the audit log with its decision: the log is for
            # auditors, who may see every vote; pages enforce the blind review.
            self.storage.record_vote(
                request_id,
                vote,
                audit=AuditEvent(
                    actor=actor.username,
                    action=Action.VOTE,
                    request_id=request_id,
                    file_sha256=f.sha256,
                    detail={"path": f.path, "decision": str(decision), "round": request.round},
                ),
            )

    def complete_review(self, actor: Actor, request_id: str) -> ReleaseRequest:
        """Fix the officer's votes; once enough officers have, the round is decided.

        If another officer finished meanwhile, the decision is recomputed from the fresh
        state rather than from the one this call first read.
        """
        for _attempt in range(5):
            try:
                return self._complete_review(actor, request_id)
            except StaleRequest:
                continue
        raise InvalidTransition(f"request {request_id} keeps changing; try again")

    def _complete_review(self, actor: Actor, request_id: str) -> ReleaseRequest:
        with self._refusals_audited(actor, "complete_review", request_id):
            request = self._load(request_id)
            perm.check_can_review(actor, request)
            if request.state is not State.IN_REVIEW:
                raise InvalidTransition(f"request {request_id} is {request.state}, not in review")
            voted = {v.path for v in request.votes_of(actor.username)}
            missing = [f.path for f in request.current_files() if f.path not in voted]
            if missing:
                raise BadRequest(f"decide on every file first; missing: {', '.join(missing)}")
            review = Review(officer=actor.username, round=request.round, time=self.clock())
            after = replace(request, reviews=[*request.reviews, review])
            decision = rules.outcome(after, self.policy.approvals_required)
            asked = request.co_reviewers
            if decision is State.APPROVED:
                # Read the data's owners again: a dataset linked since the submission
                # asks too. Any provider who must vote takes the request from here.
                asked = merge(request.co_reviewers, self._co_reviewers_now(request.project))
                if any(c.level is CoReview.REQUIRED for c in asked):
                    decision = State.PROVIDER_REVIEW
            events = [
                AuditEvent(
                    actor=actor.username,
                    action=Action.COMPLETE_REVIEW,
                    request_id=request_id,
                    detail={"round": request.round},
                )
            ]
            if decision is not None:
                events += transition(
                    request,
                    decision,
                    Owner.OFFICER,
                    actor.username,
                    detail={"state": str(decision), "round": request.round},
                )
                events += self._notices(actor.username, request_id, asked, request.co_reviewers)
            self.storage.complete_review(
                request_id,
                review,
                decision,
                len(request.reviewers()),
                co_reviewers=asked,
                audit=events,
            )
            return self._load(request_id)

    def provider_vote(
        self,
        actor: Actor,
        request_id: str,
        provider: str,
        decision: ProviderDecision,
        reason: str,
        round_: int,
    ) -> ReleaseRequest:
        """A provider's vote on the round the officers approved: once every provider who
        must vote approved, the request is approved; one decline stops it (declined).

        ``round_`` is the round the voter saw: a vote on an older one is refused.
        """
        for _attempt in range(5):
            try:
                return self._provider_vote(actor, request_id, provider, decision, reason, round_)
            except StaleRequest:
                continue
        raise InvalidTransition(f"request {request_id} keeps changing; try again")

    def _provider_vote(
        self,
        actor: Actor,
        request_id: str,
        provider: str,
        decision: ProviderDecision,
        reason: str,
        round_: int,
    ) -> ReleaseRequest:
        with self._refusals_audited(actor, "provider_vote", request_id):
            request = self._load(request_id)
            perm.check_can_view(actor, request)
            perm.check_provider_may_vote(actor, request, provider)
            if round_ != request.round:
                raise InvalidTransition(
                    f"you voted on round {round_} of request {request_id}, which is now in "
                    f"round {request.round}: reload the request and look again"
                )
            reason = reason.strip()
            if len(reason) > MAX_COMMENT:
                raise BadRequest(f"the reason is longer than {MAX_COMMENT} characters")
            if decision is ProviderDecision.DECLINE and not reason:
                raise BadRequest("say why: declining a release needs a reason for the officers")
            vote = ProviderVote(
                provider=provider,
                voter=actor.username,
                decision=decision,
                round=request.round,
                time=self.clock(),
                reason=reason,
            )
            cast = [v for v in request.provider_votes if v.round == request.round]
            approved = {v.provider for v in cast if v.decision is ProviderDecision.APPROVE}
            move: State | None = None
            if decision is ProviderDecision.DECLINE:
                move = State.DECLINED
            elif set(request.providers_asked()) <= approved | {provider}:
                move = State.APPROVED
            events = [
                AuditEvent(
                    actor=actor.username,
                    action=Action.PROVIDER_VOTE,
                    request_id=request_id,
                    detail={
                        "provider": provider,
                        "decision": str(decision),
                        "round": request.round,
                        "reason": reason,
                    },
                )
            ]
            if move is not None:
                events += transition(
                    request,
                    move,
                    Owner.PROVIDER,
                    actor.username,
                    detail={"state": str(move), "round": request.round, "provider": provider},
                )
            self.storage.record_provider_vote(request_id, vote, move, len(cast), audit=events)
            return self._load(request_id)

    def provider_requests(
        self, actor: Actor, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[ReleaseRequest], RequestPage]:
        """For a person who acts for data providers: the requests waiting for their vote
        (oldest first), and a page of every request their providers were asked about
        (newest first)."""
        if not actor.acts_for:
            raise PermissionDenied(
                f"{actor.username} acts for no data provider: this page lists the release "
                "requests on a provider's data for the people who act for it"
            )
        waiting = [
            r
            for r in self.storage.list_requests(
                co_reviewed_by=actor.acts_for, states=[State.PROVIDER_REVIEW]
            )
            if any(perm.can_provider_vote(actor, r, p) for p in perm.votes_for(actor, r))
        ]
        found = self.storage.list_requests(
            co_reviewed_by=actor.acts_for, newest_first=True, limit=limit, offset=offset
        )
        page = RequestPage(
            requests=[r for r in found if perm.can_view(actor, r)],
            total=self.storage.count_requests(co_reviewed_by=actor.acts_for),
            offset=offset,
        )
        return waiting, page

    def release(self, actor: Actor, request_id: str) -> ReleaseRequest:
        """Make an approved request's files downloadable by the project's members."""
        with self._refusals_audited(actor, "release", request_id):
            request = self._load(request_id)
            perm.check_can_release(actor, request)
            events = transition(
                request,
                State.RELEASED,
                Owner.OFFICER,
                actor.username,
                files=request.current_files(),
                file_detail=lambda f: {"path": f.path},
            )
            self.storage.set_state(request_id, request.state, State.RELEASED, audit=events)
            return self._load(request_id)

    # -- author ------------------------------------------------------------------------

    def withdraw(self, actor: Actor, request_id: str) -> ReleaseRequest:
        """The author takes back a request before it is decided."""
        with self._refusals_audited(actor, "withdraw", request_id):
            request = self._load(request_id)
            perm.check_can_withdraw(actor, request)
            events = transition(
                request,
                State.WITHDRAWN,
                Owner.AUTHOR,
                actor.username,
                detail={"from": str(request.state)},
            )
            self.storage.set_state(request_id, request.state, State.WITHDRAWN, audit=events)
            return self._load(request_id)

    def resubmit(
        self,
        actor: Actor,
        request_id: str,
        justification: str | None = None,
        uploads: Sequence[FileUpload] | None = None,
    ) -> ReleaseRequest:
        """Start a new review round after changes were asked for.

        ``uploads`` replace the files (through the submission API, from the workspace);
        without them the current files carry over unchanged (a reply from the pages).
        """
        with self._refusals_audited(actor, "resubmit", request_id):
            request = self._load(request_id)
            perm.check_can_resubmit(actor, request)
            # Checked before the files are snapshotted: a refused move stores nothing.
            transition(request, State.RESUBMITTED, Owner.AUTHOR, actor.username)
            text = (justification if justification is not None else request.justification).strip()
            if not text or len(text) > MAX_JUSTIFICATION:
                raise BadRequest(
                    f"a justification of at most {MAX_JUSTIFICATION} characters is required"
                )
            new_round = request.round + 1
            if uploads:
                rules.check_files(self.policy, uploads)
                files = self._snapshot(uploads, request.project, new_round)
            else:
                files = [replace(f, round=new_round) for f in request.current_files()]
            events = transition(
                request,
                State.RESUBMITTED,
                Owner.AUTHOR,
                actor.username,
                detail={"round": new_round},
                files=files,
                file_detail=lambda f: {"path": f.path},
            )
            self.storage.resubmit(request_id, files, text, audit=events)
            return self._load(request_id)

    def resubmit_from_workspace(
        self,
        actor: Actor,
        request_id: str,
        project: str,
        justification: str,
        uploads: Sequence[FileUpload],
    ) -> ReleaseRequest:
        """Resubmit with changed files through the submission API.

        The token rule of a submission applies: only the workspace of the request's own
        project may send its new files.
        """
        with self._refusals_audited(actor, "resubmit", request_id):
            perm.check_can_submit(actor, project)
            request = self._load(request_id)
            if request.project != project or request.author != actor.username:
                raise NotFound(f"no request {request_id} of yours in project {project!r}")
        return self.resubmit(actor, request_id, justification or None, uploads)

    def comment(self, actor: Actor, request_id: str, text: str, file: str | None = None) -> None:
        """A comment by the author, or a review comment by a reviewing officer."""
        with self._refusals_audited(actor, "comment", request_id):
            request = self._load(request_id)
            perm.check_can_view(actor, request)
            perm.check_can_comment(actor, request)
            text = text.strip()
            if not text or len(text) > MAX_COMMENT:
                raise BadRequest(f"a comment needs 1 to {MAX_COMMENT} characters")
            f = self._file(request, file) if file else None
            self.storage.add_comment(
                request_id,
                Comment(
                    author=actor.username,
                    text=text,
                    time=self.clock(),
                    round=request.round,
                    file=f.path if f else None,
                    review=actor.username != request.author,
                ),
                audit=AuditEvent(
                    actor=actor.username,
                    action=Action.COMMENT,
                    request_id=request_id,
                    file_sha256=f.sha256 if f else None,
                    detail={"file": f.path if f else None, "length": len(text)},
                ),
            )

    # -- what an actor may see of the review ------------------------------------------

    def visible_votes(self, actor: Actor, request: ReleaseRequest) -> list[Vote]:
        """Votes the actor may see: their own, and others' once the rules allow."""
        if perm.can_see_votes_of_others(actor, request):
            return list(request.votes)
        return [v for v in request.votes if v.officer == actor.username]

    def visible_comments(self, actor: Actor, request: ReleaseRequest) -> list[Comment]:
        """Comments the actor may see; officers' review comments follow the vote rule.

        A vote's comment is shown as a comment to the author once the round is decided.
        """
        others = perm.can_see_votes_of_others(actor, request)
        shown = [
            c for c in request.comments if not c.review or others or c.author == actor.username
        ]
        if others:
            finished = {(rv.officer, rv.round) for rv in request.reviews}
            shown += [
                Comment(
                    author=v.officer,
                    text=f"{v.decision}: {v.comment}",
                    time=v.time,
                    round=v.round,
                    file=v.path,
                    review=True,
                )
                for v in request.votes
                if v.comment and (v.officer, v.round) in finished
            ]
        return sorted(shown, key=lambda c: c.time)

    # -- audit -------------------------------------------------------------------------

    def verify_audit(self) -> VerifyResult:
        """Check the whole audit chain."""
        return verify(self.storage.audit_records(), self.storage.audit_head())

    def export_audit(self) -> Iterator[str]:
        """The audit log as JSON lines."""
        return export_lines(self.storage.audit_records())
