"""The airlock's small, flat set of errors.

Every refusal the airlock makes is one of these. Each carries an HTTP ``status`` so the
web edge translates all of them in one place (``handlers.BaseHandler.write_error``) and
the command line prints the same message a person would see in a page.
"""

from __future__ import annotations


class AirlockError(Exception):
    """Base class: a refusal or failure with a message meant for a person."""

    status = 400
    # Set once the refusal is in the audit log, so no layer records it twice.
    audited = False


class BadRequest(AirlockError):
    """The input is malformed; nothing was changed."""

    status = 400


class NotAuthenticated(AirlockError):
    """No valid JupyterHub token or login came with the request."""

    status = 401


class PermissionDenied(AirlockError):
    """The actor may not do this (wrong role, own request, member of the project...)."""

    status = 403


class NotFound(AirlockError):
    """The request or file does not exist, or the actor may not know that it exists."""

    status = 404


class InvalidTransition(AirlockError):
    """The request's state does not allow this act now."""

    status = 409


class LimitExceeded(AirlockError):
    """A policy limit refused the act; ``limit`` names the policy key that did."""

    status = 413

    def __init__(self, limit: str, message: str, status: int = 413) -> None:
        super().__init__(message)
        self.limit = limit
        self.status = status


class Unavailable(AirlockError):
    """Something the answer depends on (the registry's membership) cannot be read now.

    The airlock fails closed: it refuses to answer rather than guess (an empty
    membership would make a member look independent of their own project).
    """

    status = 503


class PolicyError(AirlockError):
    """The airlock policy file is missing a value or holds a bad one."""

    status = 500


class Misconfigured(AirlockError):
    """A setting points at something missing or wrong (a database, a folder)."""

    status = 500


class IntegrityFailure(AirlockError):
    """Stored bytes or the audit chain do not match their recorded hashes."""

    status = 500
