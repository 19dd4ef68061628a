"""Who may do what: every rule as a ``check_*`` that raises and a ``can_*`` that answers.

Rules about the actor live here; rules about the request alone live in ``rules``. The
web edge calls ``check_*`` before acting and ``can_*`` to decide what to show, so a page
never offers a button whose action would be refused.
"""

from __future__ import annotations

from collections.abc import Callable

from .domain import (
    OFFICER_SCOPE,
    OPERATOR_SCOPE,
    RESEARCHER_SCOPE,
    REVIEWABLE_STATES,
    TERMINAL_STATES,
    WITHDRAWABLE_STATES,
    Actor,
    CoReview,
    ReleaseRequest,
    State,
)
from .exceptions import AirlockError, InvalidTransition, NotFound, PermissionDenied


def _answer(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except AirlockError:
        return False
    return True


def server_scope(username: str, project: str) -> str:
    """The scope a workspace's server token carries for user ``username``, project ``project``."""
    return f"access:servers!server={username}/{project}"


def check_can_submit(actor: Actor, project: str) -> None:
    """A workspace token may submit only for its own user and its own project.

    The token must be the server token of the named server ``<user>/<project>``: it carries
    ``access:servers!server=<user>/<project>``. A broader token (the user's own, an
    admin's) is refused as well, so a submission always names the workspace it came from.
    """
    if RESEARCHER_SCOPE not in actor.scopes:
        raise PermissionDenied(
            f"{actor.username} lacks the researcher role ({RESEARCHER_SCOPE}) on this token"
        )
    if server_scope(actor.username, project) not in actor.scopes:
        raise PermissionDenied(
            f"this token may not submit for project {project!r}: only the workspace server "
            f"token of {actor.username}/{project} may"
        )
    if project not in actor.projects:
        raise PermissionDenied(f"{actor.username} is not a member of project {project!r}")


def can_submit(actor: Actor, project: str) -> bool:
    """Answer of ``check_can_submit``."""
    return _answer(check_can_submit, actor, project)


def check_can_list_project(actor: Actor, project: str) -> None:
    """Researchers read the requests of projects they are members of."""
    if actor.is_operator:
        return
    if RESEARCHER_SCOPE not in actor.scopes or project not in actor.projects:
        raise PermissionDenied(f"{actor.username} may not read requests of project {project!r}")


def can_list_project(actor: Actor, project: str) -> bool:
    """Answer of ``check_can_list_project``."""
    return _answer(check_can_list_project, actor, project)


def _is_involved(actor: Actor, request: ReleaseRequest) -> bool:
    return actor.username == request.author or request.project in actor.projects


def check_is_independent(actor: Actor, request: ReleaseRequest) -> None:
    """Nobody reviews a request they wrote or one from a project they belong to, or once
    belonged to (a membership that ended, of a project since closed, or removed)."""
    if actor.username == request.author:
        raise PermissionDenied("you may not review your own request")
    if request.project in actor.projects:
        raise PermissionDenied(
            f"you are a member of project {request.project!r} and may not review its requests"
        )
    if actor.is_affiliated(request.project):
        raise PermissionDenied(
            f"you were a member of project {request.project!r} and may not review its requests"
        )


def is_independent(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_is_independent``."""
    return _answer(check_is_independent, actor, request)


def co_reviews_for(actor: Actor, request: ReleaseRequest) -> list[str]:
    """The providers asked about ``request`` (``notify`` or ``required``) that the actor
    acts for."""
    return sorted({c.provider for c in request.co_reviewers} & actor.acts_for)


def votes_for(actor: Actor, request: ReleaseRequest) -> list[str]:
    """The providers that must vote on ``request`` that the actor acts for."""
    return sorted(set(request.providers_asked(CoReview.REQUIRED)) & actor.acts_for)


def check_can_view(actor: Actor, request: ReleaseRequest) -> None:
    """See a request: its author and project members, independent officers, operators,
    and independent people of the data providers asked about it.

    Refusals say "not found" so that an outsider learns nothing of a request's existence.
    """
    if actor.is_operator:
        return
    if _is_involved(actor, request) and (
        actor.username == request.author or RESEARCHER_SCOPE in actor.scopes
    ):
        return
    if actor.is_officer and request.state is not State.DRAFT and not _is_involved(actor, request):
        return
    if co_reviews_for(actor, request) and not _is_involved(actor, request):
        return
    raise NotFound(f"no request {request.id}")


def can_view(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_view``."""
    return _answer(check_can_view, actor, request)


def check_in_standing(actor: Actor) -> None:
    """An officer decides only while verified, trained and with a second factor (the
    registry's standing, looked up when the actor was made)."""
    if actor.standing_problem:
        raise PermissionDenied(f"you may not review now: {actor.standing_problem}")


def check_can_review(actor: Actor, request: ReleaseRequest) -> None:
    """Open, vote on and finish a review: an independent officer, in a reviewable state."""
    if not actor.is_officer:
        raise PermissionDenied(f"reviewing needs the officer role ({OFFICER_SCOPE})")
    check_in_standing(actor)
    check_is_independent(actor, request)
    if request.state not in REVIEWABLE_STATES:
        raise InvalidTransition(f"request {request.id} is {request.state}, not open for review")
    if request.has_reviewed(actor.username):
        raise InvalidTransition(f"you already finished your review of round {request.round}")


def can_review(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_review``."""
    return _answer(check_can_review, actor, request)


def check_can_view_content(actor: Actor, request: ReleaseRequest) -> None:
    """See a file's bytes before release: independent officers and operators only
    (an operator who wrote the request or is or was a member of its project is not).

    Researchers (the author included) only ever get released bytes, through
    ``check_can_download``.
    """
    # Independence first, whatever the role: an operator who is (or was) a member of the
    # project, or wrote the request, must not read its unreleased bytes either.
    check_is_independent(actor, request)
    if actor.is_officer or actor.is_operator:
        return
    # The provider who must vote sees what the officers saw; one only told does not.
    if votes_for(actor, request) and not actor.provider_problem:
        return
    raise PermissionDenied("only officers see files before they are released")


def can_view_content(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_view_content``."""
    return _answer(check_can_view_content, actor, request)


def check_can_see_votes_of_others(actor: Actor, request: ReleaseRequest) -> None:
    """Officers see colleagues' votes only after casting their own review.

    The author and members see the review comments once the round is decided.
    """
    # Each role's shortcut holds only for someone independent of the request: an operator
    # or officer who is (or was) a member of its project is a member here, like any other.
    if is_independent(actor, request):
        if actor.is_operator and not actor.is_officer:
            return
        if actor.is_officer:
            if request.has_reviewed(actor.username) or request.state not in REVIEWABLE_STATES:
                return
            raise PermissionDenied("finish your own review before seeing other officers' votes")
        if votes_for(actor, request) and request.state not in REVIEWABLE_STATES:
            return  # the officers' round is decided: the provider sees what they decided
    if _is_involved(actor, request) and request.state not in REVIEWABLE_STATES:
        return
    raise PermissionDenied("votes are hidden until the round is decided")


def can_see_votes_of_others(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_see_votes_of_others``."""
    return _answer(check_can_see_votes_of_others, actor, request)


def check_can_withdraw(actor: Actor, request: ReleaseRequest) -> None:
    """Only the author withdraws, and only before a decision."""
    if actor.username != request.author:
        raise PermissionDenied("only the author may withdraw a request")
    if request.state not in WITHDRAWABLE_STATES:
        raise InvalidTransition(f"request {request.id} is {request.state}; too late to withdraw")


def can_withdraw(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_withdraw``."""
    return _answer(check_can_withdraw, actor, request)


def check_can_resubmit(actor: Actor, request: ReleaseRequest) -> None:
    """Only the author resubmits, and only a request returned for changes."""
    if actor.username != request.author:
        raise PermissionDenied("only the author may resubmit a request")
    if request.state is not State.RETURNED:
        raise InvalidTransition(f"request {request.id} is {request.state}, not returned")


def can_resubmit(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_resubmit``."""
    return _answer(check_can_resubmit, actor, request)


def check_provider_may_vote(actor: Actor, request: ReleaseRequest, provider: str) -> None:
    """Vote for ``provider`` on a request: a person who acts for that provider, in
    standing, never the author nor a (former) member of the project, while the request
    waits for that provider's vote."""
    if provider not in actor.acts_for:
        raise PermissionDenied(
            f"you do not act for {provider!r}: only its provider accounts vote for it"
        )
    if provider not in request.providers_asked(CoReview.REQUIRED):
        raise PermissionDenied(
            f"{provider!r} is not asked to vote on request {request.id}: none of the "
            "project's data that needs its vote is theirs"
        )
    if actor.provider_problem:
        raise PermissionDenied(f"you may not vote as a provider now: {actor.provider_problem}")
    if actor.username == request.author:
        raise PermissionDenied("you may not vote on your own request")
    if actor.is_affiliated(request.project):
        raise PermissionDenied(
            f"you are or were a member of project {request.project!r}: a provider's vote "
            f"on its releases must come from someone outside it; ask another person who "
            f"acts for {provider!r}"
        )
    cast = request.provider_vote(provider)
    if cast is not None:
        raise InvalidTransition(
            f"{provider} already voted on round {request.round} of request {request.id} "
            f"({cast.voter}: {cast.decision}); one vote per provider"
        )
    if request.state is not State.PROVIDER_REVIEW:
        raise InvalidTransition(
            f"request {request.id} is {request.state}, not waiting for a provider's vote"
        )


def can_provider_vote(actor: Actor, request: ReleaseRequest, provider: str) -> bool:
    """Answer of ``check_provider_may_vote``."""
    return _answer(check_provider_may_vote, actor, request, provider)


def check_can_release(actor: Actor, request: ReleaseRequest) -> None:
    """An independent officer releases an approved request, once every provider that
    must vote approved its current round."""
    if not actor.is_officer:
        raise PermissionDenied(f"releasing needs the officer role ({OFFICER_SCOPE})")
    check_in_standing(actor)
    check_is_independent(actor, request)
    if request.state is not State.APPROVED:
        raise InvalidTransition(f"request {request.id} is {request.state}, not approved")
    # APPROVED is reached through the providers' votes; this holds it even for a
    # request stored otherwise (the state machine is not the only guard).
    missing = [
        p
        for p in request.providers_asked(CoReview.REQUIRED)
        if (vote := request.provider_vote(p)) is None or vote.decision != "approve"
    ]
    if missing:
        raise InvalidTransition(
            f"request {request.id} still needs the approval of provider(s) {', '.join(missing)}"
        )


def can_release(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_release``."""
    return _answer(check_can_release, actor, request)


def check_can_download(actor: Actor, request: ReleaseRequest) -> None:
    """Project members download released files; nothing unreleased, ever."""
    if request.project not in actor.projects and actor.username != request.author:
        raise PermissionDenied(f"only members of project {request.project!r} may download")
    if request.state is not State.RELEASED:
        raise PermissionDenied(f"request {request.id} is {request.state}, not released")


def can_download(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_download``."""
    return _answer(check_can_download, actor, request)


def check_can_comment(actor: Actor, request: ReleaseRequest) -> None:
    """The author comments until the request is closed; reviewing officers while reviewing."""
    if request.state in TERMINAL_STATES:
        raise InvalidTransition(f"request {request.id} is {request.state}; comments are closed")
    if actor.username == request.author:
        return
    check_can_review(actor, request)


def can_comment(actor: Actor, request: ReleaseRequest) -> bool:
    """Answer of ``check_can_comment``."""
    return _answer(check_can_comment, actor, request)


def check_can_operate(actor: Actor) -> None:
    """Read everything, read and export the audit log, see the policy: operators."""
    if not actor.is_operator:
        raise PermissionDenied("this needs the operator role")


def can_operate(actor: Actor) -> bool:
    """Answer of ``check_can_operate``."""
    return _answer(check_can_operate, actor)


def check_can_export_audit(actor: Actor) -> None:
    """Export the audit log from the pages: operators who are neither officers nor
    (former) members of any project.

    The log holds every vote as it is cast, so an operator who also reviews would see
    other officers' decisions of rounds still under review: the blind review would be
    gone. They export from the host (``cleanroom audit export``) or ask another operator.
    """
    check_can_operate(actor)
    if actor.affiliations or actor.projects:
        # The same reason holds for an operator who is or was a member of a project: the
        # export would show them the votes on their own project's requests under review.
        projects = ", ".join(sorted(actor.projects | actor.affiliations))
        raise PermissionDenied(
            f"you are or were a member of project(s) {projects}: the export shows the votes "
            "of reviews in progress, which members must not see before the round is "
            "decided; ask another operator, or run `cleanroom audit export` on the host"
        )
    if actor.is_officer:
        raise PermissionDenied(
            "you hold the officer role too: the export shows the votes of reviews in "
            "progress, which officers must not see; ask another operator, or run "
            "`cleanroom audit export` on the host"
        )


def check_can_see_egress(actor: Actor) -> None:
    """Officers and operators see what reached researchers' browsers (the gateway's
    usage, grants and alerts of every researcher and project)."""
    if not (actor.is_officer or actor.is_operator):
        raise PermissionDenied(
            "the egress pages are for disclosure officers and operators "
            f"({OFFICER_SCOPE} or {OPERATOR_SCOPE})"
        )


def can_see_egress(actor: Actor) -> bool:
    """Answer of ``check_can_see_egress``."""
    return _answer(check_can_see_egress, actor)


def check_can_grant_egress(actor: Actor, user: str) -> None:
    """An officer or operator in standing grants egress, never to themselves (the
    gateway checks the same again against the registry, from the person's own token)."""
    check_can_see_egress(actor)
    if actor.standing_problem:
        raise PermissionDenied(f"you may not grant egress now: {actor.standing_problem}")
    if user == actor.username:
        raise PermissionDenied("nobody grants egress to themselves: ask another officer")


def can_grant_egress(actor: Actor, user: str) -> bool:
    """Answer of ``check_can_grant_egress``."""
    return _answer(check_can_grant_egress, actor, user)
