"""The airlock's storage: a Protocol the domain codes against, and its SQLAlchemy form.

Every method that changes data takes the audit event(s) describing the change and writes
them in the same transaction, so no state change exists without its audit record and no
audit record describes a change that did not happen. A test inspects ``Storage`` to keep
it that way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from cleanroom.chain import Head
from sqlalchemy import Engine, Select, create_engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from . import audit as audit_chain
from .domain import (
    AuditEvent,
    Comment,
    CoReview,
    CoReviewer,
    Decision,
    ProviderDecision,
    ProviderVote,
    ReleaseRequest,
    RequestFile,
    Review,
    State,
    Vote,
)
from .exceptions import IntegrityFailure, InvalidTransition, NotFound
from .models import (
    AuditHeadRow,
    AuditRow,
    CommentRow,
    CoReviewerRow,
    FileRow,
    OpenRow,
    ProviderVoteRow,
    RequestRow,
    ReviewRow,
    VoteRow,
)

Audit = AuditEvent | Sequence[AuditEvent]
_Query = TypeVar("_Query", bound=Select[Any])


@dataclass(frozen=True)
class Independence:
    """Leave out what ``username`` wrote and the requests of ``projects`` (theirs)."""

    username: str
    projects: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Readable:
    """Only the requests of ``projects`` and those ``author`` wrote (a researcher's view)."""

    author: str
    projects: frozenset[str] = frozenset()


def _filtered(
    query: _Query,
    project: str | None,
    author: str | None,
    states: Sequence[State] | None,
    independent_of: Independence | None,
    readable_by: Readable | None = None,
    co_reviewed_by: frozenset[str] | None = None,
) -> _Query:
    if project is not None:
        query = query.where(RequestRow.project == project)
    if author is not None:
        query = query.where(RequestRow.author == author)
    if states is not None:
        query = query.where(RequestRow.state.in_([str(st) for st in states]))
    if independent_of is not None:
        query = query.where(RequestRow.author != independent_of.username)
        if independent_of.projects:
            query = query.where(RequestRow.project.not_in(sorted(independent_of.projects)))
    if readable_by is not None:
        query = query.where(
            (RequestRow.author == readable_by.author)
            | RequestRow.project.in_(sorted(readable_by.projects))
        )
    if co_reviewed_by is not None:
        query = query.where(
            RequestRow.id.in_(
                select(CoReviewerRow.request_id).where(
                    CoReviewerRow.provider.in_(sorted(co_reviewed_by))
                )
            )
        )
    return query


class StaleRequest(InvalidTransition):
    """The request changed between reading it and writing; reload and decide again."""


class _Twin(Exception):
    """Internal: the submission repeats request ``args[0]``; roll back, write nothing."""


class Storage(Protocol):
    """What the domain needs from storage. Writes take ``audit``; reads never write."""

    def add_request(
        self,
        request: ReleaseRequest,
        *,
        idempotency_key: str | None,
        digest: str,
        duplicate_since: datetime,
        audit: Audit,
    ) -> str | None:
        """Store a new request with its files, unless it repeats an earlier one.

        Returns ``None`` when stored; else the id of the author's request with the same
        idempotency key, or with the same ``digest`` created since ``duplicate_since``
        (then nothing is written). The check and the insert are one transaction.
        """

    def get_request(self, request_id: str) -> ReleaseRequest:
        """One request with everything recorded about it; ``NotFound`` if absent."""

    def list_requests(
        self,
        *,
        project: str | None = None,
        author: str | None = None,
        states: Sequence[State] | None = None,
        independent_of: Independence | None = None,
        readable_by: Readable | None = None,
        co_reviewed_by: frozenset[str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ReleaseRequest]:
        """Requests matching every given filter, oldest (or newest) first; ``limit`` of them
        from ``offset``. ``co_reviewed_by``: only requests that ask one of these providers."""

    def count_requests(
        self,
        *,
        project: str | None = None,
        author: str | None = None,
        states: Sequence[State] | None = None,
        independent_of: Independence | None = None,
        readable_by: Readable | None = None,
        co_reviewed_by: frozenset[str] | None = None,
    ) -> int:
        """How many requests ``list_requests`` would return with these filters and no limit."""

    def find_by_idempotency_key(self, author: str, key: str) -> str | None:
        """The id of the author's request submitted with this key."""

    def find_duplicate(self, author: str, digest: str, since: datetime) -> str | None:
        """The id of the author's identical request submitted since ``since``."""

    def count_submissions_since(self, author: str, since: datetime) -> int:
        """How many requests the author created since ``since``."""

    def set_state(self, request_id: str, src: State, dst: State, *, audit: Audit) -> None:
        """Move a request from ``src`` to ``dst``; ``InvalidTransition`` if it is not in ``src``."""

    def open_review(
        self,
        request_id: str,
        round_: int,
        officer: str,
        move_from: State | None,
        *,
        audit: Audit,
    ) -> None:
        """Record that an officer opened a round; with ``move_from`` (the state the move was
        checked from) also move it to in review, ``InvalidTransition`` if it is no longer
        in that state."""

    def record_vote(self, request_id: str, vote: Vote, *, audit: Audit) -> None:
        """Record (or replace) an officer's decision on one file in one round."""

    def complete_review(
        self,
        request_id: str,
        review: Review,
        decision: State | None,
        expected_reviews: int,
        *,
        co_reviewers: Sequence[CoReviewer] = (),
        audit: Audit,
    ) -> None:
        """Fix an officer's review; ``decision`` (if any) moves the request from in review.

        ``expected_reviews`` is how many finished reviews of the round the decision was
        computed from; ``StaleRequest`` if another officer finished one meanwhile.
        ``co_reviewers`` replaces the providers asked (the decision was made with them).
        """

    def record_provider_vote(
        self,
        request_id: str,
        vote: ProviderVote,
        move_to: State | None,
        expected_votes: int,
        *,
        audit: Audit,
    ) -> None:
        """Record a provider's vote on a round; ``move_to`` (if any) moves the request out
        of provider review. ``InvalidTransition`` if that provider voted on the round
        already; ``StaleRequest`` if another provider's vote came in since the decision
        was computed from ``expected_votes`` votes of the round."""

    def resubmit(
        self,
        request_id: str,
        files: Sequence[RequestFile],
        justification: str,
        *,
        audit: Audit,
    ) -> None:
        """Start the next round with these files; the request moves to resubmitted."""

    def add_comment(self, request_id: str, comment: Comment, *, audit: Audit) -> None:
        """Add a comment."""

    def record(self, *, audit: Audit) -> None:
        """Record acts that change nothing else: views, downloads, refusals."""

    def audit_records(self) -> Iterator[AuditRecord]:
        """Every audit entry in sequence order."""

    def audit_head(self) -> Head | None:
        """The recorded last entry of the chain; ``None`` when the head record is gone."""


AuditRecord = audit_chain.AuditRecord


def _utc(value: datetime) -> datetime:
    # SQLite drops the zone on the way back; every time we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with immediate transactions, or PostgreSQL.

    SQLite transactions start with ``BEGIN IMMEDIATE`` so that two writers never both read
    the audit head and then race to append; PostgreSQL locks the head row instead.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)


class SqlStorage:
    """``Storage`` on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.clock = clock or (lambda: datetime.now(UTC))

    @contextmanager
    def _write(self, audit: Audit) -> Iterator[Session]:
        """A transaction that appends ``audit`` to the chain before it commits."""
        events = [audit] if isinstance(audit, AuditEvent) else list(audit)
        if not events:
            raise ValueError("every write needs at least one audit event")
        with self._sessions.begin() as session:
            yield session
            self._append(session, events)

    def _append(self, session: Session, events: Sequence[AuditEvent]) -> None:
        head = session.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            # Never start a new chain over a lost head: that would hide the loss.
            raise IntegrityFailure("the audit head record is missing; run cleanroom audit verify")
        seq, prev = head.seq, head.hash
        for ev in events:
            seq += 1
            time = self.clock().astimezone(UTC).isoformat(timespec="microseconds")
            detail = audit_chain.canonical_detail(ev.detail)
            digest = audit_chain.entry_hash(
                prev, seq, time, ev.actor, str(ev.action), ev.request_id, ev.file_sha256, detail
            )
            session.add(
                AuditRow(
                    seq=seq,
                    time=time,
                    actor=ev.actor,
                    action=str(ev.action),
                    request_id=ev.request_id,
                    file_sha256=ev.file_sha256,
                    detail=detail,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        head.seq, head.hash = seq, prev

    # -- writes ------------------------------------------------------------------------

    def add_request(
        self,
        request: ReleaseRequest,
        *,
        idempotency_key: str | None,
        digest: str,
        duplicate_since: datetime,
        audit: Audit,
    ) -> str | None:
        """Store a new request with its files, unless it repeats an earlier one.

        The audit head is locked first: submissions are serialised, so two identical
        uploads racing each other (a double click) cannot both find no earlier twin.
        """
        try:
            self._add_request(request, idempotency_key, digest, duplicate_since, audit)
        except _Twin as twin:
            return str(twin.args[0])
        return None

    def _add_request(
        self,
        request: ReleaseRequest,
        idempotency_key: str | None,
        digest: str,
        duplicate_since: datetime,
        audit: Audit,
    ) -> None:
        with self._write(audit) as s:
            s.execute(select(AuditHeadRow.id).where(AuditHeadRow.id == 1).with_for_update())
            twin = None
            if idempotency_key:
                twin = s.execute(
                    select(RequestRow.id).where(
                        RequestRow.author == request.author,
                        RequestRow.idempotency_key == idempotency_key,
                    )
                ).scalar_one_or_none()
            if twin is None:
                twin = s.execute(
                    select(RequestRow.id)
                    .where(
                        RequestRow.author == request.author,
                        RequestRow.digest == digest,
                        RequestRow.created >= duplicate_since,
                    )
                    .order_by(RequestRow.created)
                    .limit(1)
                ).scalar_one_or_none()
            if twin is not None:
                raise _Twin(twin)
            s.add(
                RequestRow(
                    id=request.id,
                    project=request.project,
                    author=request.author,
                    justification=request.justification,
                    state=str(request.state),
                    round=request.round,
                    created=request.created,
                    updated=request.updated,
                    idempotency_key=idempotency_key,
                    digest=digest,
                )
            )
            s.flush()
            self._add_files(s, request.id, request.files)
            self._set_co_reviewers(s, request.id, request.co_reviewers)

    def _set_co_reviewers(
        self, s: Session, request_id: str, co_reviewers: Sequence[CoReviewer]
    ) -> None:
        rows = {
            r.provider: r
            for r in s.execute(
                select(CoReviewerRow).where(CoReviewerRow.request_id == request_id)
            ).scalars()
        }
        for c in co_reviewers:
            row = rows.get(c.provider)
            if row is None:
                row = CoReviewerRow(request_id=request_id, provider=c.provider)
                s.add(row)
            row.level = str(c.level)
            row.datasets = json.dumps(list(c.datasets))

    def _add_files(self, s: Session, request_id: str, files: Sequence[RequestFile]) -> None:
        for f in files:
            s.add(
                FileRow(
                    request_id=request_id,
                    round=f.round,
                    path=f.path,
                    sha256=f.sha256,
                    size=f.size,
                    content_type=f.content_type,
                    description=f.description,
                    checks=json.dumps(f.checks, sort_keys=True, default=str),
                )
            )

    def _move(self, s: Session, request_id: str, src: State, dst: State, **values: Any) -> None:
        done = s.execute(
            update(RequestRow)
            .where(RequestRow.id == request_id, RequestRow.state == str(src))
            .values(state=str(dst), updated=self.clock(), **values)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidTransition(
                f"request {request_id} is no longer {src}; reload and try again"
            )

    def set_state(self, request_id: str, src: State, dst: State, *, audit: Audit) -> None:
        """Move a request from ``src`` to ``dst``; ``InvalidTransition`` if it is not in ``src``."""
        with self._write(audit) as s:
            self._move(s, request_id, src, dst)

    def open_review(
        self,
        request_id: str,
        round_: int,
        officer: str,
        move_from: State | None,
        *,
        audit: Audit,
    ) -> None:
        """Record that an officer opened a round; with ``move_from`` (the state the move was
        checked from) also move it to in review, ``InvalidTransition`` if it is no longer
        in that state."""
        with self._write(audit) as s:
            if move_from is not None:
                self._move(s, request_id, move_from, State.IN_REVIEW)
            seen = s.execute(
                select(OpenRow.id).where(
                    OpenRow.request_id == request_id,
                    OpenRow.round == round_,
                    OpenRow.officer == officer,
                )
            ).first()
            if seen is None:  # a second tab opening at the same moment adds nothing
                s.add(OpenRow(request_id=request_id, round=round_, officer=officer))

    def record_vote(self, request_id: str, vote: Vote, *, audit: Audit) -> None:
        """Record (or replace) an officer's decision on one file in one round."""
        with self._write(audit) as s:
            existing = s.execute(
                select(VoteRow).where(
                    VoteRow.request_id == request_id,
                    VoteRow.round == vote.round,
                    VoteRow.officer == vote.officer,
                    VoteRow.path == vote.path,
                )
            ).scalar_one_or_none()
            if existing is None:
                existing = VoteRow(
                    request_id=request_id, round=vote.round, officer=vote.officer, path=vote.path
                )
                s.add(existing)
            existing.decision = str(vote.decision)
            existing.comment = vote.comment
            existing.time = vote.time

    def complete_review(
        self,
        request_id: str,
        review: Review,
        decision: State | None,
        expected_reviews: int,
        *,
        co_reviewers: Sequence[CoReviewer] = (),
        audit: Audit,
    ) -> None:
        """Fix an officer's review; ``decision`` (if any) moves the request from in review.

        The request row is locked first so that two officers finishing at once cannot
        both decide from a count that misses the other's review.
        """
        with self._write(audit) as s:
            s.execute(select(RequestRow.id).where(RequestRow.id == request_id).with_for_update())
            finished = s.execute(
                select(func.count())
                .select_from(ReviewRow)
                .where(ReviewRow.request_id == request_id, ReviewRow.round == review.round)
            ).scalar_one()
            if finished != expected_reviews:
                raise StaleRequest(f"request {request_id} changed while you reviewed it")
            s.add(
                ReviewRow(
                    request_id=request_id,
                    round=review.round,
                    officer=review.officer,
                    time=review.time,
                )
            )
            if decision is not None:
                self._move(s, request_id, State.IN_REVIEW, decision)
                self._set_co_reviewers(s, request_id, co_reviewers)
            else:
                s.execute(
                    update(RequestRow)
                    .where(RequestRow.id == request_id)
                    .values(updated=self.clock())
                )

    def record_provider_vote(
        self,
        request_id: str,
        vote: ProviderVote,
        move_to: State | None,
        expected_votes: int,
        *,
        audit: Audit,
    ) -> None:
        """Record a provider's vote on a round, and the move it decides.

        The request row is locked first, as for officers' reviews, so two providers
        voting at once cannot both miss the other's vote.
        """
        with self._write(audit) as s:
            s.execute(select(RequestRow.id).where(RequestRow.id == request_id).with_for_update())
            cast = list(
                s.execute(
                    select(ProviderVoteRow).where(
                        ProviderVoteRow.request_id == request_id,
                        ProviderVoteRow.round == vote.round,
                    )
                ).scalars()
            )
            twin = next((v for v in cast if v.provider == vote.provider), None)
            if twin is not None:
                raise InvalidTransition(
                    f"{vote.provider} already voted on round {vote.round} of request "
                    f"{request_id} ({twin.voter}: {twin.decision}); one vote per provider"
                )
            if len(cast) != expected_votes:
                raise StaleRequest(f"request {request_id} changed while you voted on it")
            s.add(
                ProviderVoteRow(
                    request_id=request_id,
                    round=vote.round,
                    provider=vote.provider,
                    voter=vote.voter,
                    decision=str(vote.decision),
                    reason=vote.reason,
                    time=vote.time,
                )
            )
            if move_to is not None:
                self._move(s, request_id, State.PROVIDER_REVIEW, move_to)

    def resubmit(
        self,
        request_id: str,
        files: Sequence[RequestFile],
        justification: str,
        *,
        audit: Audit,
    ) -> None:
        """Start the next round with these files; the request moves to resubmitted."""
        with self._write(audit) as s:
            row = s.get(RequestRow, request_id)
            if row is None:
                raise NotFound(f"no request {request_id}")
            self._move(
                s,
                request_id,
                State.RETURNED,
                State.RESUBMITTED,
                round=row.round + 1,
                justification=justification,
            )
            self._add_files(s, request_id, files)

    def add_comment(self, request_id: str, comment: Comment, *, audit: Audit) -> None:
        """Add a comment."""
        with self._write(audit) as s:
            s.add(
                CommentRow(
                    request_id=request_id,
                    round=comment.round,
                    author=comment.author,
                    file=comment.file,
                    text=comment.text,
                    review=comment.review,
                    time=comment.time,
                )
            )

    def record(self, *, audit: Audit) -> None:
        """Record acts that change nothing else: views, downloads, refusals."""
        with self._write(audit):
            pass

    # -- reads -------------------------------------------------------------------------

    def get_request(self, request_id: str) -> ReleaseRequest:
        """One request with everything recorded about it; ``NotFound`` if absent."""
        with self._sessions() as s:
            row = s.get(RequestRow, request_id)
            if row is None:
                raise NotFound(f"no request {request_id}")
            return self._load(s, [row])[0]

    def list_requests(
        self,
        *,
        project: str | None = None,
        author: str | None = None,
        states: Sequence[State] | None = None,
        independent_of: Independence | None = None,
        readable_by: Readable | None = None,
        co_reviewed_by: frozenset[str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ReleaseRequest]:
        """Requests matching every given filter, oldest (or newest) first; ``limit`` of them
        from ``offset``. ``co_reviewed_by``: only requests that ask one of these providers."""
        order = (
            (RequestRow.created.desc(), RequestRow.id.desc())
            if newest_first
            else (RequestRow.created, RequestRow.id)
        )
        query = _filtered(
            select(RequestRow).order_by(*order),
            project,
            author,
            states,
            independent_of,
            readable_by,
            co_reviewed_by,
        )
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self._sessions() as s:
            return self._load(s, list(s.execute(query).scalars()))

    def count_requests(
        self,
        *,
        project: str | None = None,
        author: str | None = None,
        states: Sequence[State] | None = None,
        independent_of: Independence | None = None,
        readable_by: Readable | None = None,
        co_reviewed_by: frozenset[str] | None = None,
    ) -> int:
        """How many requests ``list_requests`` would return with these filters and no limit."""
        query = _filtered(
            select(func.count()).select_from(RequestRow),
            project,
            author,
            states,
            independent_of,
            readable_by,
            co_reviewed_by,
        )
        with self._sessions() as s:
            return int(s.execute(query).scalar_one())

    def _load(self, s: Session, rows: list[RequestRow]) -> list[ReleaseRequest]:
        """Domain objects for ``rows``, one query per child table however many rows."""
        ids = [r.id for r in rows]
        out: dict[str, ReleaseRequest] = {}
        for r in rows:
            out[r.id] = ReleaseRequest(
                id=r.id,
                project=r.project,
                author=r.author,
                justification=r.justification,
                state=State(r.state),
                created=_utc(r.created),
                updated=_utc(r.updated),
                round=r.round,
            )
        if not ids:
            return []
        for f in s.execute(
            select(FileRow).where(FileRow.request_id.in_(ids)).order_by(FileRow.id)
        ).scalars():
            out[f.request_id].files.append(
                RequestFile(
                    path=f.path,
                    sha256=f.sha256,
                    size=f.size,
                    content_type=f.content_type,
                    description=f.description,
                    round=f.round,
                    checks=json.loads(f.checks),
                )
            )
        for v in s.execute(
            select(VoteRow).where(VoteRow.request_id.in_(ids)).order_by(VoteRow.id)
        ).scalars():
            out[v.request_id].votes.append(
                Vote(
                    officer=v.officer,
                    path=v.path,
                    decision=Decision(v.decision),
                    round=v.round,
                    time=_utc(v.time),
                    comment=v.comment,
                )
            )
        for rv in s.execute(
            select(ReviewRow).where(ReviewRow.request_id.in_(ids)).order_by(ReviewRow.id)
        ).scalars():
            out[rv.request_id].reviews.append(
                Review(officer=rv.officer, round=rv.round, time=_utc(rv.time))
            )
        for c in s.execute(
            select(CommentRow).where(CommentRow.request_id.in_(ids)).order_by(CommentRow.id)
        ).scalars():
            out[c.request_id].comments.append(
                Comment(
                    author=c.author,
                    text=c.text,
                    time=_utc(c.time),
                    round=c.round,
                    file=c.file,
                    review=c.review,
                )
            )
        for cr in s.execute(
            select(CoReviewerRow)
            .where(CoReviewerRow.request_id.in_(ids))
            .order_by(CoReviewerRow.provider)
        ).scalars():
            out[cr.request_id].co_reviewers.append(
                CoReviewer(cr.provider, CoReview(cr.level), tuple(json.loads(cr.datasets)))
            )
        for pv in s.execute(
            select(ProviderVoteRow)
            .where(ProviderVoteRow.request_id.in_(ids))
            .order_by(ProviderVoteRow.id)
        ).scalars():
            out[pv.request_id].provider_votes.append(
                ProviderVote(
                    provider=pv.provider,
                    voter=pv.voter,
                    decision=ProviderDecision(pv.decision),
                    round=pv.round,
                    time=_utc(pv.time),
                    reason=pv.reason,
                )
            )
        for o in s.execute(
            select(OpenRow).where(OpenRow.request_id.in_(ids)).order_by(OpenRow.id)
        ).scalars():
            if o.round == out[o.request_id].round:
                out[o.request_id].opened_by.append(o.officer)
        return [out[i] for i in ids]

    def find_by_idempotency_key(self, author: str, key: str) -> str | None:
        """The id of the author's request submitted with this key."""
        with self._sessions() as s:
            return s.execute(
                select(RequestRow.id).where(
                    RequestRow.author == author, RequestRow.idempotency_key == key
                )
            ).scalar_one_or_none()

    def find_duplicate(self, author: str, digest: str, since: datetime) -> str | None:
        """The id of the author's identical request submitted since ``since``."""
        with self._sessions() as s:
            return s.execute(
                select(RequestRow.id)
                .where(
                    RequestRow.author == author,
                    RequestRow.digest == digest,
                    RequestRow.created >= since,
                )
                .order_by(RequestRow.created)
                .limit(1)
            ).scalar_one_or_none()

    def count_submissions_since(self, author: str, since: datetime) -> int:
        """How many requests the author created since ``since``."""
        with self._sessions() as s:
            return s.execute(
                select(func.count())
                .select_from(RequestRow)
                .where(RequestRow.author == author, RequestRow.created >= since)
            ).scalar_one()

    def audit_records(self) -> Iterator[AuditRecord]:
        """Every audit entry in sequence order (streamed, so the log may be large)."""
        with self._sessions() as s:
            rows = s.execute(
                select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000)
            ).scalars()
            for r in rows:
                yield AuditRecord(
                    seq=r.seq,
                    time=r.time,
                    actor=r.actor,
                    action=r.action,
                    request_id=r.request_id,
                    file_sha256=r.file_sha256,
                    detail=r.detail,
                    prev_hash=r.prev_hash,
                    hash=r.hash,
                )

    def audit_head(self) -> Head | None:
        """The recorded last entry of the chain; ``None`` when the head record is gone."""
        with self._sessions() as s:
            head = s.get(AuditHeadRow, 1)
            return Head(head.seq, head.hash) if head else None


def one_day_before(moment: datetime) -> datetime:
    """The start of the rolling 24-hour window that ends at ``moment``."""
    return moment - timedelta(days=1)
