"""Who owns a project's data, and what each owner asks of its releases.

The airlock asks two questions of the data library: which dataset versions a project
uses (with each one's provider and co-review level, from the version's classification in
``policies/classification.yaml``), and which providers a person acts for. The registry
answers them in production (``RegistryDataOwners``); tests and demos use
``StaticDataOwners``. Like membership, a registry that cannot answer fails closed.

The level is the classification's, never a per-dataset override: a provider who wants a
stricter say classifies the version higher (``cleanroom datasets classify``, journaled),
so one policy file states every dataset's controls and an operator reads them in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from .domain import CoReview, CoReviewer
from .exceptions import Unavailable

T = TypeVar("T")
_RANK = list(CoReview)


@dataclass(frozen=True)
class DataUse:
    """One dataset version a project uses, its provider and its co-review level."""

    dataset: str
    version: str
    provider: str
    co_review: CoReview

    @property
    def label(self) -> str:
        """``dataset@version``, as requests and pages name it."""
        return f"{self.dataset}@{self.version}"


class DataOwners(Protocol):
    """The data library, as far as co-review of releases needs it."""

    def uses_of(self, project: str) -> list[DataUse]:
        """The dataset versions ``project`` uses now."""

    def providers_of(self, user: str) -> set[str]:
        """The providers ``user`` acts for (their provider accounts)."""

    def provider_problem(self, user: str) -> str:
        """Why ``user`` may not act as a provider now (role, training, second factor), or
        ``""``."""


def co_reviewers(uses: Iterable[DataUse]) -> list[CoReviewer]:
    """One ``CoReviewer`` per provider asked (``notify`` or ``required``), the strictest
    level of their datasets, by provider name."""
    by_provider: dict[str, tuple[CoReview, set[str]]] = {}
    for use in uses:
        if use.co_review is CoReview.NONE:
            continue
        level, labels = by_provider.get(use.provider, (CoReview.NONE, set()))
        by_provider[use.provider] = (max(level, use.co_review, key=_RANK.index), labels)
        labels.add(use.label)
    return [
        CoReviewer(provider, level, tuple(sorted(labels)))
        for provider, (level, labels) in sorted(by_provider.items())
    ]


def merge(*groups: Iterable[CoReviewer]) -> list[CoReviewer]:
    """The union of co-reviewer lists, each provider at the strictest level it had: data
    linked to a project after a submission is asked about too, and nothing asked for at
    submission is dropped later."""
    by_provider: dict[str, tuple[CoReview, set[str]]] = {}
    for group in groups:
        for c in group:
            level, labels = by_provider.get(c.provider, (CoReview.NONE, set()))
            by_provider[c.provider] = (max(level, c.level, key=_RANK.index), labels)
            labels.update(c.datasets)
    return [
        CoReviewer(provider, level, tuple(sorted(labels)))
        for provider, (level, labels) in sorted(by_provider.items())
        if level is not CoReview.NONE
    ]


class StaticDataOwners:
    """Data owners from fixed mappings (tests, demos, a JSON file).

    ``uses``: project -> list of ``DataUse``; ``accounts``: provider -> users who act for it.
    """

    def __init__(
        self,
        uses: Mapping[str, Iterable[DataUse]] | None = None,
        accounts: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._uses = {p: list(u) for p, u in (uses or {}).items()}
        self._accounts = {p: set(users) for p, users in (accounts or {}).items()}

    @classmethod
    def from_json(cls, data: Any) -> StaticDataOwners:
        """From ``{"accounts": {provider: [users]}, "uses": {project: [{"dataset",
        "version", "provider", "co_review"}]}}``; ``ValueError`` names what is wrong."""
        if not isinstance(data, dict) or set(data) - {"accounts", "uses"}:
            raise ValueError('expected {"accounts": {...}, "uses": {...}}')
        accounts = data.get("accounts", {})
        uses = data.get("uses", {})
        if not isinstance(accounts, dict) or not all(
            isinstance(v, list) for v in accounts.values()
        ):
            raise ValueError("accounts must map each provider to a list of users")
        if not isinstance(uses, dict) or not all(isinstance(v, list) for v in uses.values()):
            raise ValueError("uses must map each project to a list of dataset uses")
        try:
            parsed = {
                project: [
                    DataUse(
                        str(u["dataset"]),
                        str(u["version"]),
                        str(u["provider"]),
                        CoReview(u["co_review"]),
                    )
                    for u in items
                ]
                for project, items in uses.items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"a dataset use needs dataset, version, provider, co_review: {exc}"
            ) from exc
        return cls(parsed, accounts)

    def uses_of(self, project: str) -> list[DataUse]:
        """The uses recorded for ``project``."""
        return list(self._uses.get(project, []))

    def providers_of(self, user: str) -> set[str]:
        """The providers ``user`` is listed under."""
        return {p for p, users in self._accounts.items() if user in users}

    def provider_problem(self, user: str) -> str:
        """Nobody listed has a standing problem; someone not listed is no provider."""
        return "" if self.providers_of(user) else f"{user} does not act for any data provider"


class RegistryDataOwners:
    """Data owners read from the cleanroom registry at each question (no stale cache)."""

    def __init__(self, url: str | None = None) -> None:
        # Imported here so the airlock runs (with other data owners) without the registry.
        from cleanroom.registry import Registry

        self._registry = Registry(url)
        self._people: Any = None

    @staticmethod
    def _ask(question: str, fn: Callable[[], T]) -> T:
        # An unreadable registry must never read as "no provider asks for co-review":
        # that would release trade secrets on the officers' votes alone.
        try:
            return fn()
        except SQLAlchemyError as exc:
            raise Unavailable(
                f"the registry cannot say {question} now ({type(exc).__name__}); nothing "
                "was done: try again, or ask an operator to check the registry database"
            ) from exc

    def uses_of(self, project: str) -> list[DataUse]:
        """The versions ``project`` mounts, with provider and their classification's level."""
        from cleanroom.library.catalogue import project_classifications
        from cleanroom.library.classification import load_policy
        from cleanroom.registry.models import Dataset

        def read() -> list[DataUse]:
            versions = project_classifications(self._registry, project)
            if not versions:
                return []
            policy = load_policy()
            with self._registry.session() as s:
                providers = {
                    (d.name, d.version): d.provider
                    for d in s.query(Dataset).filter(
                        Dataset.name.in_(sorted({name for name, _, _ in versions}))
                    )
                }
            level = {c: CoReview(policy.get(c).co_review) for _, _, c in versions}
            return [
                DataUse(name, version, providers[(name, version)], level[c])
                for name, version, c in versions
                if (name, version) in providers
            ]

        return self._ask(f"which data project {project} uses", read)

    def providers_of(self, user: str) -> set[str]:
        """The providers ``user`` has a provider account for."""
        from cleanroom.registry.models import ProviderAccount
        from sqlalchemy import select

        def read() -> set[str]:
            with self._registry.session() as s:
                return set(
                    s.scalars(
                        select(ProviderAccount.provider).where(ProviderAccount.user_name == user)
                    )
                )

        return self._ask(f"which providers {user} acts for", read)

    def provider_problem(self, user: str) -> str:
        """Why ``user`` may not act as a provider now (the registry's standing rule)."""
        from cleanroom.errors import Forbidden
        from cleanroom.registry.people import People

        if self._people is None:
            self._people = People(self._registry)
        people = self._people

        def problem() -> str:
            try:
                people.check_may_act(user, "provider", what="vote on releases as a provider")
            except Forbidden as exc:
                return str(exc)
            return ""

        return self._ask(f"whether {user} may act as a provider", problem)
