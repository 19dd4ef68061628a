"""The one place the airlock calls the automatic disclosure checks.

``cleanroom.checks`` is imported lazily: if it is missing, broken or raises on a file,
the submission is still stored, with a result that says the checks were unavailable and
why, and a ``review`` verdict, so the officer sees that nothing checked this file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Checker = Callable[[bytes, str, str], dict[str, Any]]


def unavailable(reason: str) -> dict[str, Any]:
    """The stored result when the checks could not run."""
    return {"verdict": "review", "unavailable": f"checks unavailable: {reason}", "findings": []}


def project_datasets(project: str) -> tuple[tuple[str, str, str | None], ...]:
    """(name, version, index folder) of each dataset version the project mounts.

    A project the registry does not know has no sources (the policy alone applies);
    membership, checked before, refuses such submissions anyway.
    """
    from cleanroom.errors import NotFound
    from cleanroom.registry import shared_registry

    try:
        found = shared_registry().get_project(project).datasets
    except NotFound:
        return ()
    return tuple((d.name, d.version, d.index_location) for d in found)


class DisclosureChecks:
    """Runs ``cleanroom.checks.check_bytes`` against the project's sources, never raising.

    The context (policy with the datasets' stricter overrides, and the source indexes of
    the dataset versions the project mounts) is built once per project and version set.
    """

    def __init__(
        self,
        datasets_of: Callable[[str], tuple[tuple[str, str, str | None], ...]] = project_datasets,
    ) -> None:
        self._datasets_of = datasets_of
        self._contexts: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def _load(self, project: str) -> tuple[Any, Any]:
        datasets = self._datasets_of(project)
        key = (project, datasets)
        if key not in self._contexts:
            # Imported here, not at module import: the service must start, and take
            # submissions, even when the checks package is absent or broken.
            from cleanroom.checks import check_bytes, load_context

            indexes = [index for _, _, index in datasets if index]
            context = load_context(indexes, datasets=[name for name, _, _ in datasets])
            self._contexts[key] = (check_bytes, context)
        return self._contexts[key]

    def __call__(self, data: bytes, filename: str, project: str) -> dict[str, Any]:
        """The check report as a JSON-safe dict, or an "unavailable" result."""
        try:
            check_bytes, context = self._load(project)
        except Exception as exc:
            log.warning("automatic checks unavailable for %s: %s", project, exc)
            return unavailable(f"{type(exc).__name__}: {exc}")
        try:
            report = check_bytes(data, filename, context)
            result = dict(report.to_dict())
            result["verdict"] = str(getattr(report.verdict, "value", report.verdict))
            return result
        except Exception as exc:
            log.exception("automatic checks failed on %s", filename)
            return unavailable(f"{type(exc).__name__}: {exc}")
