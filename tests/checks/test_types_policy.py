"""Verdicts, findings, reports and the policy file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.checks import CheckReport, DisclosurePolicy, Finding, PolicyError, Verdict
from cleanroom.checks.policy import default_policies_dir


def test_verdict_order() -> None:
    assert Verdict.PASS < Verdict.REVIEW < Verdict.FAIL
    assert max([Verdict.REVIEW, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert Verdict.parse("Review") is Verdict.REVIEW
    with pytest.raises(ValueError, match="unknown verdict"):
        Verdict.parse("maybe")


def test_report_verdict_is_worst_and_empty_is_review() -> None:
    report = CheckReport("a.csv", "csv")
    assert report.verdict is Verdict.REVIEW
    report.findings += [Finding("x", Verdict.PASS, "ok"), Finding("y", Verdict.FAIL, "bad")]
    assert report.verdict is Verdict.FAIL


def test_report_round_trips_through_json() -> None:
    import numpy as np

    report = CheckReport(
        "a.csv",
        "csv",
        [
            Finding(
                "r",
                Verdict.REVIEW,
                "m",
                {"rows": np.array([1, 2]).tolist(), "v": np.float64(1.5), "nan": float("nan")},
                "sheet 1",
            )
        ],
        size_bytes=3,
        sha256="ab",
    )
    data = json.loads(json.dumps(report.to_dict()))
    back = CheckReport.from_dict(data)
    assert back.to_dict() == data
    assert data["verdict"] == "review"
    assert data["findings"][0]["evidence"]["nan"] == "nan"


def test_default_policy_loads_with_documented_defaults() -> None:
    policy = DisclosurePolicy.load()
    assert policy.tables.min_cell_count == 10
    assert policy.tables.p_percent == 0.10
    assert (policy.tables.nk_n, policy.tables.nk_k) == (2, 0.9)
    assert policy.tables.min_residual_dof == 10
    text = (default_policies_dir() / "disclosure.yaml").read_text()
    # Every setting in the file is preceded by a comment naming its source.
    for section in ("tables", "archives", "pickles", "images"):
        assert f"\n{section}:" in text
    assert text.count("Source:") + text.count("Local choice") >= 15


def test_env_overrides_policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "disclosure.yaml").write_text("tables:\n  min_cell_count: 25\n")
    monkeypatch.setenv("CLEANROOM_POLICIES_DIR", str(tmp_path))
    assert DisclosurePolicy.load().tables.min_cell_count == 25


def test_dataset_overrides_only_tighten() -> None:
    data = {
        "datasets": {
            "a": {"tables": {"min_cell_count": 20}},
            "b": {"tables": {"min_cell_count": 15, "nk_k": 0.8}},
        }
    }
    both = DisclosurePolicy.from_mapping(data, datasets=["a", "b", "unknown"])
    assert both.tables.min_cell_count == 20
    assert both.tables.nk_k == 0.8
    assert both.datasets_applied == ("a", "b", "unknown")
    with pytest.raises(PolicyError, match=r"datasets\.a\.tables\.min_cell_count.*looser"):
        DisclosurePolicy.from_mapping({"datasets": {"a": {"tables": {"min_cell_count": 5}}}})
    with pytest.raises(PolicyError, match=r"allowed_globals.*looser"):
        DisclosurePolicy.from_mapping(
            {
                "pickles": {"allowed_globals": ["a.b"]},
                "datasets": {"x": {"pickles": {"allowed_globals": ["a.b", "os.system"]}}},
            }
        )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tables:\n  min_cel_count: 3\n", "tables.min_cel_count"),
        ("tables:\n  min_cell_count: -1\n", "tables.min_cell_count"),
        ("tables:\n  zero_cell_verdict: maybe\n", "tables.zero_cell_verdict"),
        ("tabels: {}\n", "tabels"),
        ("tables: [1, 2]\n", "tables"),
        ("images:\n  pass_formats: png\n", "images.pass_formats"),
        ("- a\n", "top level"),
        ("tables: {min_cell_count: [\n", "YAML"),
    ],
)
def test_bad_policy_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "disclosure.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        DisclosurePolicy.load(path)
    assert key in str(err.value)
    assert str(path) in str(err.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read disclosure policy .*nope\.yaml"):
        DisclosurePolicy.load(tmp_path / "nope.yaml")
