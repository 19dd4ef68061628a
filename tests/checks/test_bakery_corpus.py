"""Quality on outputs of a third dataset (a bakery), written apart from the checks:
recall, the right rule named and false alarms, each asserted (issue #12)."""

from __future__ import annotations

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, CheckReport, check_bytes

from tests.checks.bakery_corpus import build, requests
from tests.checks.corpus_quality import assert_quality, check_request_case, why
from tests.checks.packaging_corpus import Sample


@pytest.fixture(scope="module")
def corpus(bakery_frames: tuple[pd.DataFrame, pd.DataFrame]) -> list[Sample]:
    return build(*bakery_frames)


@pytest.fixture(scope="module")
def reports(corpus: list[Sample], bakery_context: CheckContext) -> dict[str, CheckReport]:
    return {s.name: check_bytes(s.data, s.name, bakery_context) for s in corpus}


def test_recall_rules_and_false_alarms(
    corpus: list[Sample], reports: dict[str, CheckReport], capsys: pytest.CaptureFixture[str]
) -> None:
    assert_quality("bakery corpus", corpus, reports, capsys, min_unsafe=50, min_safe=30)


def test_no_sample_crashes_the_checks(reports: dict[str, CheckReport]) -> None:
    crashed = {
        n: why(r) for n, r in reports.items() if any(f.rule == "check.error" for f in r.findings)
    }
    assert not crashed, crashed


@pytest.mark.parametrize("case", range(7))
def test_requests(
    case: int,
    bakery_frames: tuple[pd.DataFrame, pd.DataFrame],
    bakery_context: CheckContext,
) -> None:
    check_request_case(requests(*bakery_frames)[case], bakery_context)
