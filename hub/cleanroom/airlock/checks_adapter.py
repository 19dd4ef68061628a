"""The one place the airlock calls the automatic disclosure checks.

``cleanroom.checks`` is imported lazily: if it is missing, broken or raises on a file,
the submission is still stored, with a result that says the checks were unavailable and
why, and a ``review`` verdict, so the officer sees that nothing checked this file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
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
        except Exception as exc:
            log.exception("automatic checks failed on %s", filename)
            return unavailable(f"{type(exc).__name__}: {exc}")
        try:
            # The file's count cells, kept with its report: what request-level
            # differencing compares, now and (once released) for later requests.
            from cleanroom.checks.request import table_cells

            result["cells"] = [c.to_dict() for c in table_cells(data, filename, context)]
        except Exception:
            log.exception("could not keep the table cells of %s", filename)
        return result

    def check_request(
        self,
        files: Sequence[tuple[str, bytes, dict[str, Any]]],
        project: str,
        released: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Add the request-level findings to the files' stored results, in place:
        differencing between the request's tables and against ``released`` (the
        project's released files' stored results), ACRO's and SACRO-ML's reports.
        Never raises: a failure is noted on every file and sends it to review."""
        try:
            from dataclasses import replace

            from cleanroom.checks import Verdict
            from cleanroom.checks.reports import attached_reports
            from cleanroom.checks.request import cells_from_reports, differencing

            _check_bytes, context = self._load(project)
            cells = [
                replace(c, file=path)
                for path, _data, result in files
                for c in cells_from_reports([result])
            ]
            extra = differencing(cells, cells_from_reports(released), context)
            extra += attached_reports([(path, data) for path, data, _r in files], context)
        except Exception as exc:
            log.exception("request-level checks failed for %s", project)
            for _path, _data, result in files:
                result.setdefault("findings", []).append(
                    {
                        "rule": "request.unavailable",
                        "verdict": "review",
                        "message": f"request-level checks unavailable: {type(exc).__name__}",
                        "evidence": {},
                        "location": "",
                    }
                )
                result["verdict"] = max(str(result.get("verdict", "review")), "review", key=_rank)
            return
        by_path = {path: result for path, _data, result in files}
        for finding in extra:
            target = by_path.get(str(finding.evidence.get("file", "")))
            if target is None or "unavailable" in target:
                continue
            target.setdefault("findings", []).append(finding.to_dict())
            worst = max(Verdict.parse(target.get("verdict", "review")), finding.verdict)
            target["verdict"] = worst.value


def _rank(verdict: str) -> int:
    return {"pass": 0, "review": 1, "fail": 2}.get(verdict, 1)
