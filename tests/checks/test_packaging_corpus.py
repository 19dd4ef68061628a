"""Quality on outputs of a dataset the checks were not written against (issue #12):
recall, the right rule named, and false alarms, each asserted."""

from __future__ import annotations

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, CheckReport, Verdict, check_bytes
from cleanroom.checks.request import check_request, table_cells

from tests.checks.packaging_corpus import RequestCase, Sample, build, requests

MIN_RECALL = 0.99
MIN_RULE_NAMED = 0.95
MAX_FALSE_ALARMS = 0.10


@pytest.fixture(scope="module")
def corpus(packaging_frames: tuple[pd.DataFrame, pd.DataFrame]) -> list[Sample]:
    return build(*packaging_frames)


@pytest.fixture(scope="module")
def reports(corpus: list[Sample], packaging_context: CheckContext) -> dict[str, CheckReport]:
    return {s.name: check_bytes(s.data, s.name, packaging_context) for s in corpus}


def _named(report: CheckReport, sample: Sample) -> bool:
    return any(f.rule in sample.rules and f.verdict >= sample.expect for f in report.findings)


def _why(report: CheckReport) -> list[str]:
    return [f"{f.verdict.value} {f.rule}: {f.message[:120]}" for f in report.findings]


def test_recall_rules_and_false_alarms(
    corpus: list[Sample], reports: dict[str, CheckReport], capsys: pytest.CaptureFixture[str]
) -> None:
    unsafe = [s for s in corpus if not s.safe]
    safe = [s for s in corpus if s.safe]
    assert len(unsafe) >= 30 and len(safe) >= 20, "the corpus shrank"
    missed = [s for s in unsafe if reports[s.name].verdict < s.expect]
    unnamed = [s for s in unsafe if not _named(reports[s.name], s)]
    alarms = [s for s in safe if reports[s.name].verdict is not Verdict.PASS]
    recall = 1 - len(missed) / len(unsafe)
    named = 1 - len(unnamed) / len(unsafe)
    false_alarms = len(alarms) / len(safe)
    with capsys.disabled():
        print(
            f"\npackaging corpus: {len(unsafe)} unsafe, {len(safe)} safe; recall {recall:.3f}; "
            f"right rule {named:.3f}; false alarms (not pass) {false_alarms:.3f}"
        )
        for s in missed:
            print(f"  missed {s.name}: {_why(reports[s.name])}")
        for s in unnamed:
            print(f"  rule not named {s.name} (wants {s.rules}): {_why(reports[s.name])}")
        for s in alarms:
            print(f"  false alarm {s.name}: {_why(reports[s.name])}")
    assert recall >= MIN_RECALL, [s.name for s in missed]
    assert named >= MIN_RULE_NAMED, [s.name for s in unnamed]
    assert false_alarms <= MAX_FALSE_ALARMS, [s.name for s in alarms]


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
    request: RequestCase = requests(*packaging_frames)[case]
    released = [
        c for name, data in request.released for c in table_cells(data, name, packaging_context)
    ]
    result = check_request(request.files, packaging_context, released)
    found = [f for f in result.findings if f.rule == "request.differencing"]
    if request.safe:
        assert not found, [f.to_dict() for f in found]
        assert result.verdict is Verdict.PASS, {n: r.to_dict() for n, r in result.files.items()}
    else:
        assert found, request.name
        assert result.verdict is Verdict.FAIL
        cells = found[0].evidence["cells"]
        assert cells and all(0 < c["difference"] < 10 for c in cells)
