"""Rules that depend only on a request, its files and the policy, never on who asks.

Kept apart from ``permissions`` (which is about the actor) so each reads as one list.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from .domain import Decision, FileUpload, ReleaseRequest, State
from .exceptions import BadRequest, LimitExceeded
from .policy import Policy


def check_path(path: str) -> str:
    """A file's workspace-relative path, normalised; refuse empty, absolute or ``..`` paths."""
    if not path or "\x00" in path or len(path) > 1024:
        raise BadRequest(f"file path {path!r} is empty or too long")
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise BadRequest(f"file path {path!r} must be relative and inside the workspace")
    return norm


def check_files(policy: Policy, files: Sequence[FileUpload]) -> None:
    """Refuse a submission breaking a per-request limit, naming the limit."""
    limits = policy.limits
    if not files:
        raise BadRequest("a release request needs at least one file")
    if len(files) > limits.files_per_request:
        raise LimitExceeded(
            "files_per_request",
            f"limit files_per_request: {len(files)} files, at most "
            f"{limits.files_per_request} per request",
        )
    seen: set[str] = set()
    total = 0
    for f in files:
        path = check_path(f.path)
        if path in seen:
            raise BadRequest(f"file {path!r} appears twice in one request")
        seen.add(path)
        size = len(f.data)
        if size == 0:
            raise BadRequest(f"file {path!r} is empty")
        if size > limits.bytes_per_file:
            raise LimitExceeded(
                "bytes_per_file",
                f"limit bytes_per_file: {path!r} has {size} bytes, at most "
                f"{limits.bytes_per_file} per file",
            )
        total += size
    if total > limits.bytes_per_request:
        raise LimitExceeded(
            "bytes_per_request",
            f"limit bytes_per_request: {total} bytes in all, at most "
            f"{limits.bytes_per_request} per request",
        )


def check_daily_quota(policy: Policy, submitted_today: int) -> None:
    """Refuse the user's next request once they reached the daily count."""
    cap = policy.limits.requests_per_user_per_day
    if submitted_today >= cap:
        raise LimitExceeded(
            "requests_per_user_per_day",
            f"limit requests_per_user_per_day: {submitted_today} requests in the last 24 "
            f"hours, at most {cap}",
            status=429,
        )


def outcome(request: ReleaseRequest, approvals_required: int) -> State | None:
    """The decision a round has reached, or ``None`` while it waits for more reviews.

    A round is decided once ``approvals_required`` officers finished their reviews: it is
    approved only if every one of them approved every file; any "changes" vote returns it
    to the author; otherwise (some file rejected, none returned) it is rejected.
    """
    reviewers = request.reviewers()
    if len(reviewers) < approvals_required:
        return None
    votes = [v for v in request.votes if v.round == request.round and v.officer in reviewers]
    paths = {f.path for f in request.current_files()}
    approvals = {
        p: {v.officer for v in votes if v.path == p and v.decision is Decision.APPROVE}
        for p in paths
    }
    if all(len(approvals[p]) == len(reviewers) for p in paths):
        return State.APPROVED
    if any(v.decision is Decision.CHANGES for v in votes):
        return State.RETURNED
    return State.REJECTED
