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


def test_nk_rules_are_validated_and_only_stricter() -> None:
    from cleanroom.checks.policy import PolicyError

    policy = DisclosurePolicy.from_mapping({"tables": {"nk_rules": [[1, 0.5], [2, 0.67]]}})
    assert policy.tables.nk_rules == [[1, 0.5], [2, 0.67]]
    with pytest.raises(PolicyError, match=r"tables.nk_rules: \[3, 0.5\] is not an \[n, k\] pair"):
        DisclosurePolicy.from_mapping({"tables": {"nk_rules": [[3, 0.5]]}})
    with pytest.raises(PolicyError, match="must be a list of"):
        DisclosurePolicy.from_mapping({"tables": {"nk_rules": "1,0.5"}})
    # A dataset may add rules (stricter), not drop them.
    base = {"tables": {"nk_rules": [[1, 0.5]]}}
    stricter = {**base, "datasets": {"d": {"tables": {"nk_rules": [[1, 0.5], [2, 0.67]]}}}}
    assert DisclosurePolicy.from_mapping(stricter, datasets=["d"]).tables.nk_rules == [
        [1, 0.5],
        [2, 0.67],
    ]
    looser = {**base, "datasets": {"d": {"tables": {"nk_rules": []}}}}
    with pytest.raises(PolicyError, match="may only make the policy stricter"):
        DisclosurePolicy.from_mapping(looser)


def test_abs_style_rule_fails_a_cell_the_default_passes() -> None:
    import tempfile
    from pathlib import Path

    import pandas as pd
    from cleanroom.checks import CheckContext, check_bytes
    from cleanroom.checks.source_index import build_source_index, load_source_index

    # Cell "a": one record holds 60% (passes (2, 90%), fails (1, 50%)).
    rows = [("a", 60.0)] + [("a", 40.0 / 19)] * 19 + [("b", 5.0 + i) for i in range(80)]
    frame = pd.DataFrame(rows, columns=["grp", "kg"]).assign(kg=lambda f: f.kg + 1e-3 * f.index)
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "s.csv", index=False)
        build_source_index([Path(tmp) / "s.csv"], Path(tmp) / "i", roles={"kg": "measure"})
        source = load_source_index(Path(tmp) / "i")
        out = frame.groupby("grp")["kg"].sum().round(3).to_csv().encode()
        default = check_bytes(out, "o.csv", CheckContext(DisclosurePolicy.load(), [source]))
        assert not any(f.rule.startswith("table.dominance") for f in default.findings)
        abs_policy = DisclosurePolicy.from_mapping({"tables": {"nk_rules": [[1, 0.5], [2, 0.67]]}})
        report = check_bytes(out, "o.csv", CheckContext(abs_policy, [source]))
        nk = next(f for f in report.findings if f.rule == "table.dominance_nk")
        assert nk.evidence["failed"] == {"1": "n = 1, k = 50%"}
        assert {"n": 1, "k": 0.5} in nk.evidence["threshold"]
