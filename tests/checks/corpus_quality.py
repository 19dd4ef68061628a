"""How a labelled corpus of outputs is scored, the same for every corpus (issue #12):
recall, the right rule named, false alarms; and how a request case is checked."""

from __future__ import annotations

import pytest
from cleanroom.checks import CheckContext, CheckReport, Verdict
from cleanroom.checks.request import RequestReport, check_request, table_cells

from tests.checks.packaging_corpus import RequestCase, Sample

MIN_RECALL = 0.99
MIN_RULE_NAMED = 0.95
MAX_FALSE_ALARMS = 0.10


def named(report: CheckReport, sample: Sample) -> bool:
    """The sample's own rule was found at its expected verdict (not just any rule)."""
    return any(f.rule in sample.rules and f.verdict >= sample.expect for f in report.findings)


def why(report: CheckReport) -> list[str]:
    """The report's findings, a line each, for a failure's message."""
    return [f"{f.verdict.value} {f.rule}: {f.message[:110]}" for f in report.findings]


def assert_quality(
    title: str,
    corpus: list[Sample],
    reports: dict[str, CheckReport],
    capsys: pytest.CaptureFixture[str],
    *,
    min_unsafe: int,
    min_safe: int,
) -> None:
    """Print the corpus's scores and what missed, then assert each against its bound."""
    unsafe = [s for s in corpus if not s.safe]
    safe = [s for s in corpus if s.safe]
    assert len(unsafe) >= min_unsafe and len(safe) >= min_safe, "the corpus shrank"
    missed = [s for s in unsafe if reports[s.name].verdict < s.expect]
    unnamed = [s for s in unsafe if not named(reports[s.name], s)]
    alarms = [s for s in safe if reports[s.name].verdict is not Verdict.PASS]
    recall = 1 - len(missed) / len(unsafe)
    right_rule = 1 - len(unnamed) / len(unsafe)
    false_alarms = len(alarms) / len(safe)
    with capsys.disabled():
        print(
            f"\n{title}: {len(unsafe)} unsafe, {len(safe)} safe; recall {recall:.3f}; "
            f"right rule {right_rule:.3f}; false alarms (not pass) {false_alarms:.3f}"
        )
        for s in missed:
            print(f"  missed {s.name}: {why(reports[s.name])}")
        for s in unnamed:
            if s not in missed:
                print(f"  rule not named {s.name} (wants {s.rules}): {why(reports[s.name])}")
        for s in alarms:
            print(f"  false alarm {s.name}: {why(reports[s.name])}")
    assert recall >= MIN_RECALL, [s.name for s in missed]
    assert right_rule >= MIN_RULE_NAMED, [s.name for s in unnamed]
    assert false_alarms <= MAX_FALSE_ALARMS, [s.name for s in alarms]


def check_request_case(request: RequestCase, context: CheckContext) -> RequestReport:
    """Check a request case's files against what was released before it, and assert the
    differencing verdict its label says (none when safe; a fail when not)."""
    released = [c for name, data in request.released for c in table_cells(data, name, context)]
    result = check_request(request.files, context, released)
    found = [f for f in result.findings if f.rule == "request.differencing"]
    if request.safe:
        assert not found, [f.to_dict() for f in found]
        assert result.verdict is Verdict.PASS, {n: r.to_dict() for n, r in result.files.items()}
    else:
        assert found, request.name
        assert result.verdict is Verdict.FAIL
    return result
