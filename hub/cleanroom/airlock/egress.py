"""The officers' egress pages: what reached researchers' browsers, grants and alerts.

``/egress`` shows officers and operators every researcher x project's usage from the
running gateway (this hour, today, the limits, what was granted, when it refills), the
alerts of budgets past the policy's threshold or spent, and the grants made, from the
registry's journal. ``/egress/grant`` is the grant form's target: a decision of the
signed-in officer (or operator), made in the gateway with the officer's own hub token,
which the gateway resolves and checks itself (role, standing, not for themselves) before
it raises the budget and journals ``egress.grant`` as that person's act. The airlock
never names the decider to the gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tornado import web

from . import permissions as perm
from .exceptions import AirlockError, BadRequest, NotFound, PermissionDenied, Unavailable
from .web import PageHandler

JOURNAL_ROWS = 50
"""How many of the newest grants and alerts the page lists."""


def _gateway_error(exc: Exception) -> AirlockError:
    """The airlock's refusal for a failed call to the gateway (its message kept)."""
    from cleanroom.errors import Forbidden, InvalidInput
    from cleanroom.errors import NotFound as Unknown

    if isinstance(exc, Forbidden):
        return PermissionDenied(str(exc))
    if isinstance(exc, InvalidInput):
        return BadRequest(str(exc))
    if isinstance(exc, Unknown):
        return NotFound(str(exc))
    return Unavailable(f"the egress gateway cannot answer now: {exc}")


def journal_rows() -> dict[str, list[dict[str, Any]]]:
    """The newest ``egress.grant`` and ``egress.alert`` records of the registry's journal
    (newest first), as the page shows them."""
    from cleanroom.registry import shared_registry
    from cleanroom.registry.governance import Governance

    found: dict[str, list[dict[str, Any]]] = {"grants": [], "alerts": []}
    for entry in reversed(Governance(shared_registry()).journal_entries()):
        key = {"egress.grant": "grants", "egress.alert": "alerts"}.get(entry.action)
        if key is None or len(found[key]) >= JOURNAL_ROWS:
            continue
        user, _, project = entry.subject.partition("/")
        found[key].append(
            {"time": entry.time, "actor": entry.actor, "user": user, "project": project,
             **entry.detail}
        )  # fmt: skip
    return found


def spent(row: dict[str, Any]) -> bool:
    """Whether a usage row's budget is spent: something did not fit since it last
    refilled or grew, or nothing is left (this hour or today)."""
    return bool(row.get("exhausted")) or row["remaining"] <= 0


class EgressHandler(PageHandler):
    """``/egress``: usage per researcher and project, grants, alerts; the grant form."""

    @web.authenticated
    async def get(self) -> None:
        """The page, for officers and operators."""
        from cleanroom.errors import CleanroomError
        from cleanroom.gateway import client
        from cleanroom.gateway.budget import mib

        actor = await self.actor()
        perm.check_can_see_egress(actor)
        user = self.get_query_argument("user", "").strip()
        project = self.get_query_argument("project", "").strip()
        try:
            rows = await client.call("GET", "/api/usage")
        except CleanroomError as exc:
            raise _gateway_error(exc) from exc
        rows = [
            r
            for r in rows
            if (not user or r["user"] == user) and (not project or r["project"] == project)
        ]
        try:
            journal = await self.run(journal_rows)
        except Exception as exc:  # the registry down: the usage still shows
            raise Unavailable(f"the registry's journal cannot be read now: {exc}") from exc
        self.page(
            "egress.html",
            rows=rows,
            spent_rows=[r for r in rows if spent(r)],
            journal=journal,
            mib=mib,
            can_grant=lambda who: perm.can_grant_egress(actor, who),
            filters={"user": user, "project": project},
            notice=self.get_query_argument("notice", ""),
            now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )


class EgressGrantHandler(PageHandler):
    """``POST /egress/grant``: the signed-in officer grants a researcher more today."""

    @web.authenticated
    async def post(self) -> None:
        """Grant through the gateway with the officer's own token, then back to the page."""
        from cleanroom.errors import CleanroomError
        from cleanroom.gateway import client
        from cleanroom.gateway.budget import mib, parse_size

        actor = await self.actor()
        user = self.get_body_argument("user", "").strip()
        project = self.get_body_argument("project", "").strip()
        reason = self.get_body_argument("reason", "").strip()
        if not user or not project:
            raise BadRequest("say whose budget to raise: a researcher and a project")
        perm.check_can_grant_egress(actor, user)
        try:
            nbytes = parse_size(self.get_body_argument("size", ""))
        except CleanroomError as exc:
            raise BadRequest(str(exc)) from exc
        if not reason:
            raise BadRequest("say why the grant is made: it is kept in the journal")
        token = self.hub_auth.get_token(self)
        if not token:
            raise PermissionDenied("sign in again: the page carries no hub token of yours")
        body = {"user": user, "project": project, "bytes": nbytes, "reason": reason,
                "hub_token": token}  # fmt: skip
        try:
            status = await client.call("POST", "/api/grants", body)
        except CleanroomError as exc:
            raise _gateway_error(exc) from exc
        notice = (
            f"Granted {mib(nbytes)} to {user} in {project} (journaled as {actor.username}); "
            f"{mib(status['remaining'])} may reach their browser now."
        )
        self.redirect(f"{self.prefix}egress?{urlencode({'notice': notice})}")


def egress_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The egress pages under ``prefix``."""
    return [(prefix + "egress", EgressHandler), (prefix + "egress/grant", EgressGrantHandler)]
