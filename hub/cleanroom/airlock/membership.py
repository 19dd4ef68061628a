"""Who belongs to which project: the small interface the airlock needs from the registry.

The registry (``cleanroom.registry``) supplies the real implementation; the airlock only
asks these questions, so tests and the demo use ``StaticMembership``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from .exceptions import Unavailable

T = TypeVar("T")


class Membership(Protocol):
    """Project membership as the registry knows it."""

    def is_member(self, user: str, project: str) -> bool:
        """Whether ``user`` is an approved member of ``project`` now."""

    def projects_of(self, user: str) -> set[str]:
        """The projects ``user`` is an approved member of now."""

    def affiliations_of(self, user: str) -> set[str]:
        """The projects ``user`` is or ever was a member of: the current ones and those
        whose membership ended, was removed or belongs to a closed project."""


class StaticMembership:
    """Membership from a fixed mapping of project to members (tests, demos, config)."""

    def __init__(self, members: Mapping[str, Iterable[str]] | None = None) -> None:
        self._members = {p: set(users) for p, users in (members or {}).items()}
        self._former: dict[str, set[str]] = {}

    def add(self, user: str, project: str) -> None:
        """Make ``user`` a member of ``project``."""
        self._members.setdefault(project, set()).add(user)

    def remove(self, user: str, project: str) -> None:
        """End ``user``'s membership of ``project`` (they stay a former member)."""
        self._members.get(project, set()).discard(user)
        self._former.setdefault(project, set()).add(user)

    def is_member(self, user: str, project: str) -> bool:
        """Whether ``user`` is a member of ``project``."""
        return user in self._members.get(project, set())

    def projects_of(self, user: str) -> set[str]:
        """Every project ``user`` is a member of."""
        return {p for p, users in self._members.items() if user in users}

    def affiliations_of(self, user: str) -> set[str]:
        """Every project ``user`` is or was a member of."""
        former = {p for p, users in self._former.items() if user in users}
        return self.projects_of(user) | former


class RegistryMembership:
    """Membership read from the cleanroom registry at each question (no stale cache)."""

    def __init__(self, url: str | None = None) -> None:
        # Imported here so the airlock runs (with another Membership) without the registry.
        from cleanroom.registry import Registry

        self._registry = Registry(url)
        self._people: Any = None

    @staticmethod
    def _ask(question: str, fn: Callable[[], T]) -> T:
        # A registry that cannot answer must never read as "a member of nothing": that
        # would let a member review (and read the unreleased bytes of) their own
        # project's requests. Fail closed with a 503 that says why.
        try:
            return fn()
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"the registry cannot say {question} now ({type(exc).__name__}); nothing "
                "was done: try again, or ask an operator to check the registry database"
            ) from exc

    def is_member(self, user: str, project: str) -> bool:
        """Whether ``user`` is a member of ``project`` in the registry."""
        return self._ask(
            f"whether {user} is a member of {project}",
            lambda: bool(self._registry.is_member(user, project)),
        )

    def projects_of(self, user: str) -> set[str]:
        """The names of the registry projects ``user`` belongs to (none for an unknown
        user: the registry answers an empty list, no error)."""
        return self._ask(
            f"which projects {user} belongs to",
            lambda: {p.name for p in self._registry.projects_of(user)},
        )

    def affiliations_of(self, user: str) -> set[str]:
        """Every registry project ``user`` is or ever was a member of."""
        return self._ask(
            f"which projects {user} is or was a member of",
            lambda: set(self._registry.affiliations_of(user)),
        )

    def standing_problem(self, user: str, role: str) -> str:
        """Why ``user`` may not act as ``role`` now (training, verification, second
        factor, account), or ``""``; an optional question the airlock asks when present."""
        from cleanroom.errors import Forbidden
        from cleanroom.registry.people import People

        if self._people is None:  # on this registry (its URL resolved once, by the hub)
            self._people = People(self._registry)
        people = self._people

        def problem() -> str:
            try:
                people.check_may_act(user, role, what=f"act as {role}")
            except Forbidden as exc:
                return str(exc)
            return ""

        # Like membership, a standing the registry cannot read fails closed (503).
        return self._ask(f"whether {user} may act as {role}", problem)
