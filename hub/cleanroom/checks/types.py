"""The records every check produces: verdicts, findings, reports and the check context."""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cleanroom.checks.policy import DisclosurePolicy
    from cleanroom.checks.source_index import SourceIndex


@functools.total_ordering
class Verdict(enum.Enum):
    """The outcome of a check, ordered pass < review < fail."""

    PASS = "pass"
    REVIEW = "review"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        """0 for pass, 1 for review, 2 for fail: also the command line's exit code."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Verdict):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, value: str | Verdict) -> Verdict:
        """The verdict named by ``value`` ("pass", "review" or "fail")."""
        if isinstance(value, Verdict):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"unknown verdict {value!r}: use pass, review or fail") from None


_RANK = {Verdict.PASS: 0, Verdict.REVIEW: 1, Verdict.FAIL: 2}


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types, so that evidence survives the airlock's storage."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        # NaN and infinities are not JSON; an officer reads them better as text anyway.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Verdict):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    item = getattr(value, "item", None)
    if callable(item):  # numpy and pandas scalars
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One rule's result on one file, with evidence an officer can read.

    ``rule`` is a stable dotted id (``table.small_counts``), ``location`` says where in
    the file the evidence lies (a sheet, a notebook output, an archive member) and
    ``evidence`` holds JSON-safe details: rows, cells, columns, threshold, values.
    """

    rule: str
    verdict: Verdict
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    location: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict.parse(self.verdict))
        object.__setattr__(self, "evidence", json_safe(dict(self.evidence)))

    def within(self, location: str) -> Finding:
        """This finding, placed inside ``location`` (an archive member, a notebook cell)."""
        inner = f"{location} / {self.location}" if self.location else location
        return Finding(self.rule, self.verdict, self.message, self.evidence, inner)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return {
            "rule": self.rule,
            "verdict": self.verdict.value,
            "message": self.message,
            "evidence": self.evidence,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding that :meth:`to_dict` wrote."""
        return cls(
            rule=str(data["rule"]),
            verdict=Verdict.parse(data["verdict"]),
            message=str(data["message"]),
            evidence=dict(data.get("evidence") or {}),
            location=str(data.get("location") or ""),
        )


@dataclass
class CheckReport:
    """Every finding on one file; the verdict is the worst finding's.

    A report without findings is ``review``, never ``pass``: a file passes only when
    checks that understood it said so.
    """

    filename: str
    detected_type: str
    findings: list[Finding] = field(default_factory=list)
    size_bytes: int = 0
    sha256: str = ""

    @property
    def verdict(self) -> Verdict:
        """The worst verdict among the findings (review when there are none)."""
        if not self.findings:
            return Verdict.REVIEW
        return max(f.verdict for f in self.findings)

    def by_verdict(self, verdict: Verdict) -> list[Finding]:
        """The findings with exactly this verdict."""
        return [f for f in self.findings if f.verdict is verdict]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (the airlock stores it beside the request)."""
        return {
            "filename": self.filename,
            "detected_type": self.detected_type,
            "verdict": self.verdict.value,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckReport:
        """The report that :meth:`to_dict` wrote (the verdict is recomputed)."""
        return cls(
            filename=str(data["filename"]),
            detected_type=str(data["detected_type"]),
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            size_bytes=int(data.get("size_bytes", 0)),
            sha256=str(data.get("sha256", "")),
        )


@dataclass(frozen=True)
class CheckContext:
    """What checks compare a file with: the policy and the project's source indexes."""

    policy: DisclosurePolicy
    sources: Sequence[SourceIndex] = ()


class CheckInputError(Exception):
    """A file, policy or index that cannot be checked at all (the command exits 3)."""
