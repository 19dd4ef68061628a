"""Automatic disclosure checks: a pure library (no web, no database).

``check_bytes(data, filename, context)`` detects a file's type from its content, runs
the checks for that type against the disclosure policy and the project's source
indexes, and returns a :class:`CheckReport` whose verdict is the worst finding's.
See docs/disclosure-checks.md.
"""

from cleanroom.checks.policy import DisclosurePolicy, PolicyError
from cleanroom.checks.runner import check_bytes, check_file, load_context
from cleanroom.checks.source_index import (
    SourceIndex,
    SourceIndexInfo,
    build_source_index,
    load_source_index,
)
from cleanroom.checks.types import (
    CheckContext,
    CheckInputError,
    CheckReport,
    Finding,
    Verdict,
)

__all__ = [
    "CheckContext",
    "CheckInputError",
    "CheckReport",
    "DisclosurePolicy",
    "Finding",
    "PolicyError",
    "SourceIndex",
    "SourceIndexInfo",
    "Verdict",
    "build_source_index",
    "check_bytes",
    "check_file",
    "load_context",
    "load_source_index",
]
