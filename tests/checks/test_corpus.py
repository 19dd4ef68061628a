"""Quality on a labelled corpus: recall on unsafe outputs, false alarms on safe ones."""

from __future__ import annotations

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, Verdict, check_bytes

from tests.checks.corpus import Sample, build_corpus

MIN_RECALL = 0.99
MAX_FALSE_ALARMS = 0.10


@pytest.fixture(scope="module")
def corpus(source_frame: pd.DataFrame) -> list[Sample]:
    return build_corpus(source_frame)


def test_corpus_recall_and_false_alarms(
    corpus: list[Sample], context: CheckContext, capsys: pytest.CaptureFixture[str]
) -> None:
    unsafe = [s for s in corpus if not s.safe]
    safe = [s for s in corpus if s.safe]
    assert len(unsafe) >= 40 and len(safe) >= 15, "the corpus shrank"
    missed, alarms, reviewed = [], [], []
    for sample in corpus:
        verdict = check_bytes(sample.data, sample.name, context).verdict
        if not sample.safe and verdict < sample.expect:
            missed.append(f"{sample.name}: {verdict.value}, needs {sample.expect.value}")
        if sample.safe and verdict is Verdict.FAIL:
            alarms.append(sample.name)
        if sample.safe and verdict is Verdict.REVIEW:
            reviewed.append(sample.name)
    recall = 1 - len(missed) / len(unsafe)
    false_alarms = len(alarms) / len(safe)
    with capsys.disabled():
        print(
            f"\ndisclosure corpus: {len(unsafe)} unsafe, {len(safe)} safe; "
            f"recall {recall:.3f}; false-alarm rate (fail) {false_alarms:.3f}; "
            f"safe sent to review {len(reviewed) / len(safe):.3f}"
        )
        for line in missed:
            print(f"  missed: {line}")
        for name in alarms:
            print(f"  false alarm: {name}")
    assert recall >= MIN_RECALL, f"recall {recall:.3f} below {MIN_RECALL}: {missed}"
    # A safe output must not fail, and few may go to an officer (issue #12).
    assert not alarms, alarms
    assert len(reviewed) / len(safe) <= MAX_FALSE_ALARMS, reviewed


@pytest.mark.parametrize("name", ["crosstab.csv", "crosstab.xlsx", "plot.png", "linreg.pkl"])
def test_named_safe_outputs_pass(name: str, corpus: list[Sample], context: CheckContext) -> None:
    sample = next(s for s in corpus if s.name == name)
    report = check_bytes(sample.data, sample.name, context)
    assert report.verdict is Verdict.PASS, [f.to_dict() for f in report.findings]


def test_head_fails_and_crosstab_passes(source_frame: pd.DataFrame, context: CheckContext) -> None:
    head = check_bytes(source_frame.head().to_csv().encode(), "x.csv", context)
    assert head.verdict is Verdict.FAIL
    rows = next(f for f in head.findings if f.rule == "table.source_rows")
    assert rows.evidence["rows"] == [1, 2, 3, 4, 5]
    assert rows.evidence["source_rows"] == [1, 2, 3, 4, 5]
    table = pd.crosstab(source_frame["shift"], source_frame["defect_type"])
    assert check_bytes(table.to_csv().encode(), "ct.csv", context).verdict is Verdict.PASS
