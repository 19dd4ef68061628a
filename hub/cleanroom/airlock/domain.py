"""The release-request domain: states, who moves them, and the records involved.

Nothing here knows about HTTP or SQL. The state machine is data (``TRANSITIONS``) so
that the permission checks, the docs diagram (``diagram.py``) and the tests all read the
same table.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .exceptions import InvalidTransition


class State(enum.StrEnum):
    """Where a release request stands."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    # The officers approved; the data's providers must approve too (co-review ``required``).
    PROVIDER_REVIEW = "provider_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    # A provider of the project's data declined the release the officers approved.
    DECLINED = "declined"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Owner(enum.StrEnum):
    """Who may move a request out of a state (or, for a transition, who makes it)."""

    AUTHOR = "author"
    OFFICER = "officer"
    # A person acting for a data provider whose dataset asks for co-review of releases.
    PROVIDER = "provider"
    # Terminal states belong to the system: nobody moves them again, the record is kept.
    SYSTEM = "system"


class Decision(enum.StrEnum):
    """One officer's decision on one file."""

    APPROVE = "approve"
    REJECT = "reject"
    CHANGES = "changes"


class ProviderDecision(enum.StrEnum):
    """A data provider's decision on a whole request the officers approved."""

    APPROVE = "approve"
    DECLINE = "decline"


class CoReview(enum.StrEnum):
    """What a dataset's classification asks of its provider for releases of projects
    that use it (``co_review`` in ``policies/classification.yaml``)."""

    NONE = "none"
    NOTIFY = "notify"
    REQUIRED = "required"


class Action(enum.StrEnum):
    """Every act the audit log records."""

    SUBMIT = "submit"
    VIEW = "view"
    OPEN_REVIEW = "open_review"
    VOTE = "vote"
    COMPLETE_REVIEW = "complete_review"
    COMMENT = "comment"
    DECIDE = "decide"
    RESUBMIT = "resubmit"
    WITHDRAW = "withdraw"
    RELEASE = "release"
    DOWNLOAD = "download"
    REFUSAL = "refusal"
    # A provider was told of a request on their data (co-review ``notify`` or ``required``).
    NOTIFY_PROVIDER = "notify_provider"
    PROVIDER_VOTE = "provider_vote"


# (from, to) -> who makes that move. The single source of truth for the state machine.
TRANSITIONS: dict[tuple[State, State], Owner] = {
    (State.DRAFT, State.SUBMITTED): Owner.AUTHOR,
    (State.DRAFT, State.WITHDRAWN): Owner.AUTHOR,
    (State.SUBMITTED, State.IN_REVIEW): Owner.OFFICER,
    (State.SUBMITTED, State.WITHDRAWN): Owner.AUTHOR,
    (State.IN_REVIEW, State.APPROVED): Owner.OFFICER,
    (State.IN_REVIEW, State.PROVIDER_REVIEW): Owner.OFFICER,
    (State.IN_REVIEW, State.REJECTED): Owner.OFFICER,
    (State.IN_REVIEW, State.RETURNED): Owner.OFFICER,
    (State.IN_REVIEW, State.WITHDRAWN): Owner.AUTHOR,
    (State.RETURNED, State.RESUBMITTED): Owner.AUTHOR,
    (State.RETURNED, State.WITHDRAWN): Owner.AUTHOR,
    (State.RESUBMITTED, State.IN_REVIEW): Owner.OFFICER,
    (State.RESUBMITTED, State.WITHDRAWN): Owner.AUTHOR,
    (State.PROVIDER_REVIEW, State.APPROVED): Owner.PROVIDER,
    (State.PROVIDER_REVIEW, State.DECLINED): Owner.PROVIDER,
    (State.APPROVED, State.RELEASED): Owner.OFFICER,
}

# Whose turn it is in each state: the party expected to act next.
STATE_OWNERS: dict[State, Owner] = {
    State.DRAFT: Owner.AUTHOR,
    State.SUBMITTED: Owner.OFFICER,
    State.IN_REVIEW: Owner.OFFICER,
    State.RETURNED: Owner.AUTHOR,
    State.RESUBMITTED: Owner.OFFICER,
    State.PROVIDER_REVIEW: Owner.PROVIDER,
    State.APPROVED: Owner.OFFICER,
    State.REJECTED: Owner.SYSTEM,
    State.DECLINED: Owner.SYSTEM,
    State.RELEASED: Owner.SYSTEM,
    State.WITHDRAWN: Owner.SYSTEM,
}

# The audit action each arrival state emits.
STATE_ACTIONS: dict[State, Action] = {
    State.SUBMITTED: Action.SUBMIT,
    State.IN_REVIEW: Action.OPEN_REVIEW,
    State.PROVIDER_REVIEW: Action.DECIDE,
    State.APPROVED: Action.DECIDE,
    State.REJECTED: Action.DECIDE,
    State.DECLINED: Action.DECIDE,
    State.RETURNED: Action.DECIDE,
    State.RESUBMITTED: Action.RESUBMIT,
    State.RELEASED: Action.RELEASE,
    State.WITHDRAWN: Action.WITHDRAW,
}

TERMINAL_STATES = frozenset(s for s, owner in STATE_OWNERS.items() if owner is Owner.SYSTEM)
# States in which officers may see and work on a request.
REVIEWABLE_STATES = frozenset({State.SUBMITTED, State.IN_REVIEW, State.RESUBMITTED})
# States that wait for an officer's first look; opening moves them to IN_REVIEW.
AWAITING_REVIEW = frozenset({State.SUBMITTED, State.RESUBMITTED})
# States from which the author may still withdraw ("before a decision").
WITHDRAWABLE_STATES = frozenset(
    src for (src, dst), owner in TRANSITIONS.items() if dst is State.WITHDRAWN
)


def owner_of(src: State, dst: State) -> Owner | None:
    """Who makes the move from ``src`` to ``dst``; ``None`` when it is not allowed."""
    return TRANSITIONS.get((src, dst))


@dataclass(frozen=True)
class Actor:
    """Someone acting on the airlock, as identified by JupyterHub.

    ``scopes`` are the JupyterHub scopes of the token that identified them;
    ``projects`` the projects they are a member of now, from the registry;
    ``affiliations`` every project they are or ever were a member of (it includes
    ``projects``): they are not independent of those projects' requests;
    ``standing_problem`` why the registry says they may not review now (expired training
    or verification, no second factor), or ``""``;
    ``acts_for`` the data providers they act for (provider accounts in the registry);
    ``provider_problem`` why they may not act as a provider now, or ``""``.
    """

    username: str
    scopes: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    affiliations: frozenset[str] = frozenset()
    standing_problem: str = ""
    acts_for: frozenset[str] = frozenset()
    provider_problem: str = ""

    def is_affiliated(self, project: str) -> bool:
        """Is or was a member of ``project``."""
        return project in self.projects or project in self.affiliations

    @property
    def is_officer(self) -> bool:
        """Holds the disclosure-officer role."""
        return OFFICER_SCOPE in self.scopes

    @property
    def is_operator(self) -> bool:
        """Holds the operator role."""
        return OPERATOR_SCOPE in self.scopes


OFFICER_SCOPE = "custom:cleanroom:officer"
OPERATOR_SCOPE = "custom:cleanroom:operator"
RESEARCHER_SCOPE = "custom:cleanroom:researcher"


@dataclass(frozen=True)
class FileUpload:
    """One file as handed in at submission, before it is stored."""

    path: str
    data: bytes
    description: str = ""


@dataclass
class RequestFile:
    """One snapshotted file of a request in one review round."""

    path: str
    sha256: str
    size: int
    content_type: str
    description: str
    round: int
    checks: dict = field(default_factory=dict)


@dataclass
class Vote:
    """One officer's decision on one file in one round."""

    officer: str
    path: str
    decision: Decision
    round: int
    time: datetime
    comment: str = ""


@dataclass(frozen=True)
class CoReviewer:
    """A data provider asked about a request: to vote (``required``) or told (``notify``).

    ``datasets`` names the ``dataset@version`` of theirs the project uses, why they are asked.
    """

    provider: str
    level: CoReview
    datasets: tuple[str, ...] = ()


@dataclass
class ProviderVote:
    """A provider's decision (by ``voter``, who acts for ``provider``) on one round."""

    provider: str
    voter: str
    decision: ProviderDecision
    round: int
    time: datetime
    reason: str = ""


@dataclass
class Comment:
    """A remark on a request or on one of its files."""

    author: str
    text: str
    time: datetime
    round: int
    file: str | None = None
    # Officers' review comments stay hidden from other officers until they have cast
    # their own review, and from the author until the round is decided.
    review: bool = False


@dataclass
class Review:
    """An officer's finished review of one round (their votes are then fixed)."""

    officer: str
    round: int
    time: datetime


@dataclass
class ReleaseRequest:
    """A release request as the domain sees it, with everything recorded about it."""

    id: str
    project: str
    author: str
    justification: str
    state: State
    created: datetime
    updated: datetime
    round: int = 1
    files: list[RequestFile] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    opened_by: list[str] = field(default_factory=list)
    co_reviewers: list[CoReviewer] = field(default_factory=list)
    provider_votes: list[ProviderVote] = field(default_factory=list)

    def current_files(self) -> list[RequestFile]:
        """The files of the current round: what is reviewed and, if approved, released."""
        return [f for f in self.files if f.round == self.round]

    def file(self, path: str) -> RequestFile | None:
        """The current round's file at ``path``."""
        return next((f for f in self.current_files() if f.path == path), None)

    def votes_of(self, officer: str, round_: int | None = None) -> list[Vote]:
        """One officer's votes in a round (the current one by default)."""
        r = self.round if round_ is None else round_
        return [v for v in self.votes if v.officer == officer and v.round == r]

    def reviewers(self, round_: int | None = None) -> list[str]:
        """Officers who finished their review of a round (current by default)."""
        r = self.round if round_ is None else round_
        return [rv.officer for rv in self.reviews if rv.round == r]

    def has_reviewed(self, officer: str) -> bool:
        """Whether ``officer`` finished their review of the current round."""
        return officer in self.reviewers()

    def providers_asked(self, level: CoReview = CoReview.REQUIRED) -> list[str]:
        """The providers whose co-review is ``level`` (by default: those who must vote)."""
        return sorted(c.provider for c in self.co_reviewers if c.level is level)

    def provider_vote(self, provider: str, round_: int | None = None) -> ProviderVote | None:
        """``provider``'s vote on a round (the current one by default), if cast."""
        r = self.round if round_ is None else round_
        return next(
            (v for v in self.provider_votes if v.provider == provider and v.round == r), None
        )

    def providers_awaited(self) -> list[str]:
        """The providers who must vote and have not yet voted on the current round."""
        return [p for p in self.providers_asked() if self.provider_vote(p) is None]


@dataclass(frozen=True)
class AuditEvent:
    """One act, as handed to storage with the write it describes.

    ``file_sha256`` names the exact bytes acted on, where the act concerns one file.
    """

    actor: str
    action: Action
    request_id: str | None = None
    file_sha256: str | None = None
    detail: dict = field(default_factory=dict)


def transition(
    request: ReleaseRequest,
    dst: State,
    by: Owner,
    actor: str,
    *,
    detail: dict[str, Any] | None = None,
    files: Sequence[RequestFile] = (),
    file_detail: Callable[[RequestFile], dict[str, Any]] | None = None,
) -> list[AuditEvent]:
    """The one way a request changes state: check the move against ``TRANSITIONS`` and
    return the audit events it emits (action from ``STATE_ACTIONS``), for storage to write
    with the move.

    ``by`` is the party making the move; a move the table does not allow, or allows
    someone else, raises ``InvalidTransition`` before anything is written. With ``files``
    the move emits one event per file (naming its bytes), each with ``detail`` and
    ``file_detail(file)``; else one event with ``detail``.
    """
    if owner_of(request.state, dst) is not by:
        raise InvalidTransition(
            f"request {request.id} is {request.state}; the {by} may not move it to {dst}"
        )
    action = STATE_ACTIONS[dst]
    if not files:
        return [AuditEvent(actor, action, request.id, detail=dict(detail or {}))]
    return [
        AuditEvent(
            actor,
            action,
            request.id,
            file_sha256=f.sha256,
            detail={**(detail or {}), **(file_detail(f) if file_detail else {})},
        )
        for f in files
    ]
