"""The small, flat set of errors the hub-side code raises.

Each carries an HTTP-like ``status`` so that every edge (the command line, the hub's
handlers, the spawner) translates them the same way, in one place.
"""

from __future__ import annotations


class CleanroomError(Exception):
    """Base class: a refusal or failure with a message meant for a person."""

    status = 400


class InvalidInput(CleanroomError):
    """The input is malformed or breaks a rule; nothing was changed."""

    status = 400


class NotFound(CleanroomError):
    """A named project, user, dataset or image does not exist."""

    status = 404


class Forbidden(CleanroomError):
    """The actor may not do this (not a member, project closed, image not allowed)."""

    status = 403


class Conflict(CleanroomError):
    """The thing exists already, or the state does not allow this now."""

    status = 409


class EngineUnavailable(CleanroomError):
    """The Docker engine (or another real part) does not answer."""

    status = 503
