"""The demo data set and the ``cleanroom check`` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from cleanroom.checks import CheckContext
from cleanroom.checks.cli import main
from cleanroom.demo.press_line import IDENTIFIER_COLUMNS, generate_press_line, write_press_line

from tests.checks import builders


def test_demo_is_deterministic_and_realistic() -> None:
    a = generate_press_line(5_000, seed=1)
    b = generate_press_line(5_000, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(generate_press_line(5_000, seed=2))
    assert set(IDENTIFIER_COLUMNS) <= set(a.columns)
    assert a["stroke_id"].is_unique and a["timestamp"].is_monotonic_increasing
    assert a["company"].nunique() == 4
    assert 0.01 < a["defect"].mean() < 0.10
    hot = a["temperature_c"] > a["temperature_c"].quantile(0.8)
    assert a.loc[hot, "defect"].mean() > a.loc[~hot, "defect"].mean()
    assert (a.loc[a["defect"] == 0, "defect_type"] == "none").all()
    assert (a.loc[a["defect"] == 1, "defect_type"] != "none").all()


def test_write_press_line(tmp_path: Path) -> None:
    paths = write_press_line(tmp_path, rows=1_000, seed=7)
    assert [p.name for p in paths] == ["press_line.csv", "press_line.parquet"]
    csv = pd.read_csv(paths[0])
    parquet = pd.read_parquet(paths[1])
    assert len(csv) == len(parquet) == 1_000
    assert list(csv.columns) == list(parquet.columns)


@pytest.fixture
def files(tmp_path: Path, source_frame: pd.DataFrame) -> dict[str, Path]:
    out = {
        "pass": tmp_path / "plot.png",
        "review": tmp_path / "blob.bin",
        "fail": tmp_path / "head.csv",
    }
    out["pass"].write_bytes(builders.png())
    # A type the checks cannot read goes to an officer (text that reads clean passes).
    out["review"].write_bytes(bytes(range(256)) * 4)
    out["fail"].write_text(source_frame.head().to_csv())
    return out


def test_exit_codes(
    files: dict[str, Path], index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(files["pass"])]) == 0
    assert main([str(files["review"])]) == 1
    assert main(["check", str(files["fail"]), "--index", str(index_dir), "--project", "p1"]) == 2
    out = capsys.readouterr().out
    assert "FAIL" in out and "table.source_rows" in out


def test_json_output(
    files: dict[str, Path], index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            str(files["pass"]),
            str(files["fail"]),
            "--index",
            str(index_dir),
            "--dataset",
            "press-line",
            "--json",
        ]
    )
    assert code == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "fail"
    assert [r["verdict"] for r in doc["reports"]] == ["pass", "fail"]
    assert doc["datasets"] == ["press-line"]


def test_bad_inputs_exit_3(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "missing.csv")]) == 3
    assert "no such file" in capsys.readouterr().err
    assert main(["check", str(files["pass"]), "--index", str(tmp_path)]) == 3
    assert "not a source index" in capsys.readouterr().err
    bad = tmp_path / "policy.yaml"
    bad.write_text("tables:\n  min_cell_count: lots\n")
    assert main(["check", str(files["pass"]), "--policy", str(bad)]) == 3
    assert "tables.min_cell_count" in capsys.readouterr().err
    assert main(["check"]) == 3


def test_load_context(index_dir: Path) -> None:
    from cleanroom.checks import load_context

    context = load_context([index_dir], ["press-line"])
    assert context.sources[0].rows == 20_000
    assert context.policy.models.tensor_rows_fraction == 0.25
    assert context.policy.datasets_applied == ("press-line",)


def test_json_names_the_project(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cleanroom.cli.main import main as cleanroom_main
    from cleanroom.registry import Registry
    from cleanroom.registry.governance import Governance

    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    Governance(Registry()).create_project("p-checks", "Checks", actor="opal")
    assert cleanroom_main(["check", str(files["pass"]), "--project", "p-checks", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["project"] == "p-checks"


def test_nesting_message_says_what_is_wrong(bare_context: CheckContext) -> None:
    from cleanroom.checks import check_bytes

    inner = builders.zip_of({"a.csv": b"a,b\n1,2\n"})
    report = check_bytes(builders.zip_of({"inner.zip": inner}), "n.zip", bare_context)
    nesting = next(f for f in report.findings if f.rule == "archive.nesting")
    assert "2 levels of archives, more than the policy's 1" in nesting.message
    assert nesting.evidence == {"depth": 2, "threshold": 1}
