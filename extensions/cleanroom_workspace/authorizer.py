"""The Authorizer that puts the workspace rules in front of JupyterHub's own checks."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.api.handlers import IdentityHandler
from tornado.web import HTTPError

from .errors import BLOCKED_REASON, Refused

GUARD_SETTING = "cleanroom_workspace_guard"


class _Literal(str):
    """A message that Jupyter's error pages may %-format without it changing.

    Jupyter's API handlers send an error's ``log_message`` as it is, its page handlers
    send ``log_message % args``; a file name with a '%' in it must survive both.
    """

    def __mod__(self, args: object) -> str:
        return str(self)


class RefusedHTTPError(HTTPError):
    """The HTTP error of a refusal; Jupyter renders it as JSON or as a page."""

    @property
    def log_message(self) -> str | None:
        """The message as it is (tornado would double each '%' when there are no args)."""
        return None if self._log_message is None else _Literal(self._log_message)


def as_http_error(refused: Refused) -> HTTPError:
    """The tornado error for a refusal."""
    return RefusedHTTPError(
        refused.status, refused.text(), reason=BLOCKED_REASON if refused.hint else None
    )


class CleanroomAuthorizer(Authorizer):
    """Refuses the ways out of a workspace, then defers to JupyterHub's authorizer.

    Each request is first checked by the `WorkspaceGuard` stored in the web app's
    settings; a refusal is raised as an HTTP error carrying a message for the researcher
    (so the answer says how to request a release, instead of a bare 403). Requests the
    guard lets through are then decided by JupyterHub's authorizer when the server runs
    under JupyterHub, and allowed otherwise (the identity provider has already
    authenticated the user).
    """

    _hub_authorizer: Authorizer | None = None

    def _inner(self) -> Authorizer | None:
        if self._hub_authorizer is None and hasattr(self.identity_provider, "hub_auth"):
            from jupyterhub.singleuser.extension import JupyterHubAuthorizer

            self._hub_authorizer = JupyterHubAuthorizer(
                parent=self.parent, log=self.log, identity_provider=self.identity_provider
            )
        return self._hub_authorizer

    def is_authorized(self, handler: JupyterHandler, user: User, action: str, resource: str) -> Any:
        """Whether ``user`` may do ``action`` on ``resource``; raises for refused routes."""
        if not isinstance(handler, IdentityHandler):
            # /api/me asks about permissions in general, not about one request.
            guard = handler.settings.get(GUARD_SETTING)
            if guard is None:
                # Fail closed: without its rules loaded the workspace serves nothing.
                raise HTTPError(503, "the clean-room workspace extension is not loaded")
            try:
                guard.check(handler, action, resource)
            except Refused as e:
                self.log.warning(
                    "cleanroom: refused %s %s: %s", handler.request.method, handler.request.path, e
                )
                raise as_http_error(e) from None
        inner = self._inner()
        if inner is None:
            return True
        return inner.is_authorized(handler, user, action, resource)
