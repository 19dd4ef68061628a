"""The airlock checks each submitted file against its project's source datasets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cleanroom.airlock.checks_adapter import DisclosureChecks


@pytest.fixture(scope="module")
def press_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A small press-line source, its index, and the source's first rows as a CSV."""
    from cleanroom.checks import build_source_index
    from cleanroom.demo.press_line import generate_press_line

    folder = tmp_path_factory.mktemp("press")
    frame = generate_press_line(rows=3_000, seed=5)
    source = folder / "press_line.parquet"
    frame.to_parquet(source)
    build_source_index([source], folder / "index", name="press-line")
    head = io.StringIO()
    frame.head(20).to_csv(head, index=False)
    return folder / "index", head.getvalue().encode()


def test_copied_source_rows_fail_against_the_projects_index(
    press_index: tuple[Path, bytes],
) -> None:
    index, head = press_index
    checks = DisclosureChecks(datasets_of=lambda project: (("press-line", "v1", str(index)),))
    result = checks(head, "head.csv", "press-quality")
    assert result["verdict"] == "fail", result
    assert "unavailable" not in result


def test_without_sources_the_same_rows_are_not_matched(press_index: tuple[Path, bytes]) -> None:
    _, head = press_index
    result = DisclosureChecks(datasets_of=lambda project: ())(head, "head.csv", "elsewhere")
    rules = {f["rule"] for f in result["findings"]}
    assert not any("source" in rule for rule in rules), rules


def test_a_broken_index_is_reported_not_raised(
    tmp_path: Path, press_index: tuple[Path, bytes]
) -> None:
    _, head = press_index
    checks = DisclosureChecks(datasets_of=lambda project: (("press-line", "v1", str(tmp_path)),))
    result = checks(head, "head.csv", "press-quality")
    assert result["verdict"] == "review"
    assert result["unavailable"].startswith("checks unavailable")


def _counts(rows: dict[str, int]) -> bytes:
    return ("product,packs\n" + "".join(f"{k},{v}\n" for k, v in rows.items())).encode()


ALL = {"salad": 412, "pasta": 380, "soup": 255, "curry": 198}
MOST = {"salad": 409, "pasta": 380, "soup": 251, "curry": 198}  # less a small group


def test_differencing_within_a_request_and_against_releases(make_airlock, sqlite_url) -> None:
    from cleanroom.airlock.domain import Decision, FileUpload

    from .factories import PROJECT, actor, review

    airlock = make_airlock(sqlite_url, checks=DisclosureChecks(datasets_of=lambda project: ()))
    alice = actor(airlock, "alice", PROJECT)

    def upload(name: str, rows: dict[str, int]) -> FileUpload:
        return FileUpload(path=f"out/{name}", data=_counts(rows), description="packs")

    both = airlock.submit(
        alice, PROJECT, "two tables", [upload("all.csv", ALL), upload("most.csv", MOST)]
    )
    files = {f.path: f.checks for f in both.request.files}
    assert files["out/all.csv"]["verdict"] == "fail"
    found = [f for f in files["out/all.csv"]["findings"] if f["rule"] == "request.differencing"]
    assert found and found[0]["evidence"]["other_file"] == "out/most.csv"
    assert {c["difference"] for c in found[0]["evidence"]["cells"]} == {3, 4}

    # Released alone, the full table passes; a later request with the subset fails
    # against what the airlock released.
    alone = airlock.submit(alice, PROJECT, "one table", [upload("all.csv", ALL)]).request
    assert alone.files[0].checks["verdict"] == "pass", alone.files[0].checks
    review(airlock, alone.id, "olga", Decision.APPROVE)
    review(airlock, alone.id, "oscar", Decision.APPROVE)
    airlock.release(actor(airlock, "olga"), alone.id)
    later = airlock.submit(alice, PROJECT, "a subset", [upload("most.csv", MOST)]).request
    result = later.files[0].checks
    assert result["verdict"] == "fail"
    earlier = [f for f in result["findings"] if f["rule"] == "request.differencing"]
    assert earlier and earlier[0]["evidence"]["earlier_release"] is True


def test_acro_and_sacroml_reports_are_shown_on_their_files(make_airlock, sqlite_url) -> None:
    import json
    import pickle

    from cleanroom.airlock.domain import FileUpload
    from sklearn.linear_model import LinearRegression

    from .factories import PROJECT, actor

    acro = {
        "version": "1.0.2",
        "results": {
            "output_0": {
                "uid": "output_0",
                "status": "fail",
                "type": "table",
                "properties": {"method": "crosstab"},
                "files": [{"name": "output_0_0.csv", "sdc": {}}],
                "outcome": {},
                "command": "acro.crosstab(df.grade, df.shift)",
                "summary": "fail; threshold: 2 cells suppressed; ",
                "timestamp": "2026-12-01T10:00:00",
                "comments": [],
                "exception": "",
            }
        },
    }
    report = {
        "attack_1": {
            "metadata": {"attack_name": "WorstCaseAttack"},
            "attack_experiment_logger": {
                "attack_instance_logger": {"instance_0": {"AUC": 0.81, "Advantage": 0.3}}
            },
        }
    }
    model = pickle.dumps(LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]))
    airlock = make_airlock(sqlite_url, checks=DisclosureChecks(datasets_of=lambda project: ()))
    done = airlock.submit(
        actor(airlock, "alice", PROJECT),
        PROJECT,
        "tables and a model",
        [
            FileUpload("out/results.json", json.dumps(acro).encode(), "ACRO"),
            FileUpload("out/output_0_0.csv", b"grade,n\nA,40\nB,52\n", "table"),
            FileUpload("out/model.pkl", model, "model"),
            FileUpload("out/report.json", json.dumps(report).encode(), "attack report"),
        ],
    )
    files = {f.path: f.checks for f in done.request.files}
    acro_finding = next(
        f for f in files["out/output_0_0.csv"]["findings"] if f["rule"] == "acro.checks"
    )
    assert acro_finding["verdict"] == "fail" and "2 cells suppressed" in acro_finding["message"]
    assert files["out/output_0_0.csv"]["verdict"] == "fail"
    attack = next(
        f for f in files["out/model.pkl"]["findings"] if f["rule"] == "model.attack_report"
    )
    assert attack["verdict"] == "fail"
    assert attack["evidence"]["auc"] == 0.81 and attack["evidence"]["threshold"]["auc"] == 0.65
