"""Quality on outputs of a dataset the checks were not written against (issue #12):
recall, the right rule named, and false alarms, each asserted."""

from __future__ import annotations

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, CheckReport, Verdict, check_bytes

from tests.checks.corpus_quality import assert_quality, check_request_case
from tests.checks.packaging_corpus import Sample, build, requests


@pytest.fixture(scope="module")
def corpus(packaging_frames: tuple[pd.DataFrame, pd.DataFrame]) -> list[Sample]:
    return build(*packaging_frames)


@pytest.fixture(scope="module")
def reports(corpus: list[Sample], packaging_context: CheckContext) -> dict[str, CheckReport]:
    return {s.name: check_bytes(s.data, s.name, packaging_context) for s in corpus}


def test_recall_rules_and_false_alarms(
    corpus: list[Sample], reports: dict[str, CheckReport], capsys: pytest.CaptureFixture[str]
) -> None:
    assert_quality("packaging corpus", corpus, reports, capsys, min_unsafe=30, min_safe=20)


def test_every_finding_names_its_evidence(
    corpus: list[Sample], reports: dict[str, CheckReport]
) -> None:
    # Messages name the rule's threshold or the cells, rows and columns behind them.
    for sample in corpus:
        for f in reports[sample.name].findings:
            if f.verdict is Verdict.FAIL and f.rule.startswith("table."):
                assert f.evidence, (sample.name, f.rule)
                assert {"cells", "rows", "columns", "threshold"} & set(f.evidence), (
                    sample.name,
                    f.rule,
                    f.evidence,
                )


def test_dominance_is_on_the_declared_contributor(
    corpus: list[Sample], reports: dict[str, CheckReport]
) -> None:
    report = reports["weight_by_film_all.csv"]
    found = [f for f in report.findings if f.rule.startswith("table.dominance")]
    # Each film type has dozens of deliveries, so no single delivery dominates: only
    # the supplier's total across its deliveries does.
    assert found and all(f.evidence["basis"] == "film_supplier" for f in found), found
    assert [c["label"] for f in found for c in f.evidence["cells"]] == ["PET-AF"]
    assert found[0].evidence["shares"][0]["largest_share"] > 0.9
    assert found[0].evidence["threshold"]


@pytest.mark.parametrize("case", range(4))
def test_requests(
    case: int,
    packaging_frames: tuple[pd.DataFrame, pd.DataFrame],
    packaging_context: CheckContext,
) -> None:
    request = requests(*packaging_frames)[case]
    result = check_request_case(request, packaging_context)
    if not request.safe:
        found = [f for f in result.findings if f.rule == "request.differencing"]
        cells = found[0].evidence["cells"]
        assert cells and all(0 < c["difference"] < 10 for c in cells)
