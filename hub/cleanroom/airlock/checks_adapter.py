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


class DisclosureChecks:
    """Runs ``cleanroom.checks.check_bytes`` with the disclosure policy, never raising."""

    def __init__(self) -> None:
        self._loaded: tuple[Any, Any] | None = None
        self._load_error: str | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            # Imported here, not at module import: the service must start, and take
            # submissions, even when the checks package is absent or broken.
            from cleanroom.checks import check_bytes
            from cleanroom.checks.policy import DisclosurePolicy
            from cleanroom.checks.types import CheckContext

            context = CheckContext(policy=DisclosurePolicy.load())
            self._loaded = (check_bytes, context)
        return self._loaded

    def __call__(self, data: bytes, filename: str, project: str) -> dict[str, Any]:
        """The check report as a JSON-safe dict, or an "unavailable" result."""
        try:
            check_bytes, context = self._load()
        except Exception as exc:
            log.warning("automatic checks unavailable: %s", exc)
            return unavailable(f"{type(exc).__name__}: {exc}")
        try:
            report = check_bytes(data, filename, context)
            result = dict(report.to_dict())
            result["verdict"] = str(getattr(report.verdict, "value", report.verdict))
            return result
        except Exception as exc:
            log.exception("automatic checks failed on %s", filename)
            return unavailable(f"{type(exc).__name__}: {exc}")
