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
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Owner(enum.StrEnum):
    """Who may move a request out of a state (or, for a transition, who makes it)."""

    AUTHOR = "author"
    OFFICER = "officer"
    # Terminal states belong to the system: nobody moves them again, the record is kept.
    SYSTEM = "system"


class Decision(enum.StrEnum):
    """One officer's decision on one file."""

    APPROVE = "approve"
    REJECT = "reject"
    CHANGES = "changes"


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


# (from, to) -> who makes that move. The single source of truth for the state machine.
TRANSITIONS: dict[tuple[State, State], Owner] = {
    (State.DRAFT, State.SUBMITTED): Owner.AUTHOR,
    (State.DRAFT, State.WITHDRAWN): Owner.AUTHOR,
    (State.SUBMITTED, State.IN_REVIEW): Owner.OFFICER,
    (State.SUBMITTED, State.WITHDRAWN): Owner.AUTHOR,
    (State.IN_REVIEW, State.APPROVED): Owner.OFFICER,
    (State.IN_REVIEW, State.REJECTED): Owner.OFFICER,
    (State.IN_REVIEW, State.RETURNED): Owner.OFFICER,
    (State.IN_REVIEW, State.WITHDRAWN): Owner.AUTHOR,
    (State.RETURNED, State.RESUBMITTED): Owner.AUTHOR,
    (State.RETURNED, State.WITHDRAWN): Owner.AUTHOR,
    (State.RESUBMITTED, State.IN_REVIEW): Owner.OFFICER,
    (State.RESUBMITTED, State.WITHDRAWN): Owner.AUTHOR,
    (State.APPROVED, State.RELEASED): Owner.OFFICER,
}

# Whose turn it is in each state: the party expected to act next.
STATE_OWNERS: dict[State, Owner] = {
    State.DRAFT: Owner.AUTHOR,
    State.SUBMITTED: Owner.OFFICER,
    State.IN_REVIEW: Owner.OFFICER,
    State.RETURNED: Owner.AUTHOR,
    State.RESUBMITTED: Owner.OFFICER,
    State.APPROVED: Owner.OFFICER,
    State.REJECTED: Owner.SYSTEM,
    State.RELEASED: Owner.SYSTEM,
    State.WITHDRAWN: Owner.SYSTEM,
}

# The audit action each arrival state emits.
STATE_ACTIONS: dict[State, Action] = {
    State.SUBMITTED: Action.SUBMIT,
    State.IN_REVIEW: Action.OPEN_REVIEW,
    State.APPROVED: Action.DECIDE,
    State.REJECTED: Action.DECIDE,
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
    or verification, no second factor), or ``""``.
    """

    username: str
    scopes: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    affiliations: frozenset[str] = frozenset()
    standing_problem: str = ""

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
