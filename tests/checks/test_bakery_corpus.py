"""Quality on outputs of a third dataset (a bakery), written apart from the checks:
recall, the right rule named and false alarms, each asserted (issue #12)."""

from __future__ import annotations

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, CheckReport, Verdict, check_bytes
from cleanroom.checks.request import check_request, table_cells

from tests.checks.bakery_corpus import build, requests
from tests.checks.packaging_corpus import RequestCase, Sample

MIN_RECALL = 0.99
MIN_RULE_NAMED = 0.95
MAX_FALSE_ALARMS = 0.10


@pytest.fixture(scope="module")
def corpus(bakery_frames: tuple[pd.DataFrame, pd.DataFrame]) -> list[Sample]:
    return build(*bakery_frames)


@pytest.fixture(scope="module")
def reports(corpus: list[Sample], bakery_context: CheckContext) -> dict[str, CheckReport]:
    return {s.name: check_bytes(s.data, s.name, bakery_context) for s in corpus}


def _named(report: CheckReport, sample: Sample) -> bool:
    return any(f.rule in sample.rules and f.verdict >= sample.expect for f in report.findings)


def _why(report: CheckReport) -> list[str]:
    return [f"{f.verdict.value} {f.rule}: {f.message[:110]}" for f in report.findings]


def test_recall_rules_and_false_alarms(
    corpus: list[Sample], reports: dict[str, CheckReport], capsys: pytest.CaptureFixture[str]
) -> None:
    unsafe = [s for s in corpus if not s.safe]
    safe = [s for s in corpus if s.safe]
    assert len(unsafe) >= 50 and len(safe) >= 30, "the corpus shrank"
    missed = [s for s in unsafe if reports[s.name].verdict < s.expect]
    unnamed = [s for s in unsafe if not _named(reports[s.name], s)]
    alarms = [s for s in safe if reports[s.name].verdict is not Verdict.PASS]
    recall = 1 - len(missed) / len(unsafe)
    named = 1 - len(unnamed) / len(unsafe)
    false_alarms = len(alarms) / len(safe)
    with capsys.disabled():
        print(
            f"\nbakery corpus: {len(unsafe)} unsafe, {len(safe)} safe; recall {recall:.3f}; "
            f"right rule {named:.3f}; false alarms (not pass) {false_alarms:.3f}"
        )
        for s in missed:
            print(f"  missed {s.name}: {_why(reports[s.name])}")
        for s in unnamed:
            if s not in missed:
                print(f"  rule not named {s.name} (wants {s.rules}): {_why(reports[s.name])}")
        for s in alarms:
            print(f"  false alarm {s.name}: {_why(reports[s.name])}")
    assert recall >= MIN_RECALL, [s.name for s in missed]
    assert named >= MIN_RULE_NAMED, [s.name for s in unnamed]
    assert false_alarms <= MAX_FALSE_ALARMS, [s.name for s in alarms]


def test_no_sample_crashes_the_checks(reports: dict[str, CheckReport]) -> None:
    crashed = {
        n: _why(r) for n, r in reports.items() if any(f.rule == "check.error" for f in r.findings)
    }
    assert not crashed, crashed


@pytest.mark.parametrize("case", range(7))
def test_requests(
    case: int,
    bakery_frames: tuple[pd.DataFrame, pd.DataFrame],
    bakery_context: CheckContext,
) -> None:
    request: RequestCase = requests(*bakery_frames)[case]
    released = [
        c for name, data in request.released for c in table_cells(data, name, bakery_context)
    ]
    result = check_request(request.files, bakery_context, released)
    found = [f for f in result.findings if f.rule == "request.differencing"]
    if request.safe:
        assert not found, [f.to_dict() for f in found]
        assert result.verdict is Verdict.PASS, {n: r.to_dict() for n, r in result.files.items()}
    else:
        assert found, request.name
        assert result.verdict is Verdict.FAIL
