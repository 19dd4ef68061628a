"""Quality verification at registration: the provider's Table Schema is checked on every
row, streaming; each column is profiled; a version that fails its own schema registers
quarantined; the card exports as Croissant and as a Data Package, never with the data."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cleanroom import paths
from cleanroom.errors import InvalidInput
from cleanroom.library import cards, quality
from cleanroom.library.catalogue import get_card, list_cards
from cleanroom.library.register import register_dataset
from cleanroom.registry import Registry

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "stroke", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "force_kn", "type": "number", "constraints": {"minimum": 0, "maximum": 500}},
        {"name": "line", "type": "string", "constraints": {"enum": ["A", "B"]}},
        {"name": "batch", "type": "string"},
        {"name": "day", "type": "date"},
    ],
    "primaryKey": ["stroke"],
}
MARK = "LOT-SECRET-7731"
"""A cell value no report, card or export may contain."""


def _rows(n: int, *, bad: bool = False) -> str:
    lines = ["stroke,force_kn,line,batch,day"]
    for i in range(1, n + 1):
        force = 200 + (i % 7)
        batch = MARK if i == 3 else f"L{i % 5}"
        lines.append(f"{i},{force},{'A' if i % 2 else 'B'},{batch},2024-01-0{1 + i % 9}")
    if bad:
        lines.append(f"{n},999,C,{MARK},2024-13-01")  # duplicate key, range, enum, date
        lines.append(f",12,A,{MARK},2024-01-01")  # missing required key
    return "\n".join(lines) + "\n"


def _source(tmp_path: Path, text: str) -> Path:
    src = tmp_path / "incoming"
    src.mkdir()
    (src / "strokes.csv").write_text(text)
    (src / "README.txt").write_text("press strokes\n")
    return src


def test_a_version_that_meets_its_schema_is_verified_and_profiled(
    registry: Registry, tmp_path: Path
) -> None:
    seen: list[tuple[str, int]] = []
    text = _rows(40) + "41,480,A,L1,2024-01-02\n"  # one force far from the others
    register_dataset(
        registry, _source(tmp_path, text), name="strokes",
        version="v1", provider="Acme", actor="op", build_index=False, schema=SCHEMA,
        classification="confidential", description="Press strokes", licence="Acme DUA 3",
        quality_progress=lambda f, n: seen.append((f, n)),
    )  # fmt: skip
    card = get_card(registry, "strokes", "v1")
    assert (card.status, card.classification, card.licence) == (
        "verified",
        "confidential",
        "Acme DUA 3",
    )
    assert card.table_schema is not None and card.table_schema["primaryKey"] == ["stroke"]
    summary = card.quality["summary"]
    assert (summary["tables"], summary["rows"], summary["errors"]) == (1, 41, 0)
    assert seen[-1] == ("strokes.csv", 41)  # progress reached the last row
    (table,) = card.quality["tables"]
    cols = {c["name"]: c for c in table["columns"]}
    assert cols["stroke"]["distinct"] == 41 and cols["stroke"]["distinct_exact"]
    assert (cols["stroke"]["minimum"], cols["stroke"]["maximum"]) == (1, 41)
    assert cols["line"]["distinct"] == 2
    assert "minimum" not in cols["batch"]  # a string column's extremes would be its values
    assert cols["day"]["minimum"] == "2024-01-01"
    assert cols["force_kn"]["outliers"] == 1  # 480 among forces of 200-206
    entry = [e for e in registry_journal(registry) if e["action"] == "dataset.register"][-1]
    assert entry["detail"]["card"] == {
        "classification": "confidential",
        "status": "verified",
        "schema": True,
        "rows": 41,
        "errors": 0,
    }


def registry_journal(registry: Registry) -> list[dict[str, Any]]:
    from cleanroom.registry.governance import Governance

    return [
        {"action": e.action, "detail": e.detail} for e in Governance(registry).journal_entries()
    ]


def test_a_version_that_fails_its_schema_is_quarantined_and_the_report_holds_no_data(
    registry: Registry, tmp_path: Path
) -> None:
    register_dataset(
        registry, _source(tmp_path, _rows(10, bad=True)), name="strokes", version="v1",
        provider="Acme", actor="op", build_index=False, schema=SCHEMA,
    )  # fmt: skip
    card = get_card(registry, "strokes", "v1")
    assert card.status == "quarantined" and not card.usable
    (table,) = card.quality["tables"]
    kinds = {(e["column"], e["kind"]): e for e in table["error_summary"]}
    assert kinds[("stroke", "unique-error")]["first_rows"] == [12]
    assert kinds[("stroke", "constraint-error")]["count"] == 1  # required
    assert kinds[("force_kn", "constraint-error")]["count"] == 1  # maximum
    assert kinds[("line", "constraint-error")]["count"] == 1  # enum
    assert kinds[("day", "type-error")]["count"] == 1
    assert card.quality["summary"]["errors"] == table["errors"] >= 6
    assert {c["name"]: c["invalid"] for c in table["columns"]}["day"] == 1
    assert MARK not in json.dumps(card.quality)
    assert "999" not in json.dumps(table["error_summary"])


def test_without_a_schema_tables_are_profiled_and_duplicates_counted(
    registry: Registry, tmp_path: Path
) -> None:
    text = "a,b\n1,x\n1,x\n2,y\n1,x\n,z\n"
    register_dataset(
        registry, _source(tmp_path, text), name="pairs", version="v1", provider="Acme",
        actor="op", build_index=False,
    )  # fmt: skip
    card = get_card(registry, "pairs", "v1")
    assert card.status == "profiled" and card.usable and card.classification == "internal"
    (table,) = card.quality["tables"]
    assert table["duplicate_rows"] == 2 and table["duplicates_exact"]
    assert {c["name"]: c["missing"] for c in table["columns"]} == {"a": 1, "b": 0}
    assert card.quality["summary"]["schema"] == "inferred"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schema": {"fields": []}}, "needs a non-empty list of fields"),
        ({"schema": {"fields": [{"name": "a", "type": "colour"}]}}, "not a valid Table Schema"),
        ({"classification": "secret"}, "'secret' is not a classification"),
    ],
)
def test_a_bad_schema_or_classification_registers_nothing(
    registry: Registry, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        register_dataset(
            registry, _source(tmp_path, _rows(3)), name="strokes", version="v1",
            provider="Acme", actor="op", build_index=False, **kwargs,
        )  # fmt: skip
    assert registry.list_datasets() == [] and list_cards(registry) == []
    assert not (paths.library_dir() / "strokes" / "v1").exists()


def test_a_schema_for_a_version_without_tables_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    src = tmp_path / "only-text"
    src.mkdir()
    (src / "notes.txt").write_text("x\n")
    with pytest.raises(InvalidInput, match="holds no table"):
        register_dataset(
            registry, src, name="notes", version="v1", provider="Acme", actor="op",
            build_index=False, schema=SCHEMA,
        )  # fmt: skip
    assert registry.list_datasets() == []


def test_a_schema_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "schema.yaml"
    good.write_text(json.dumps(SCHEMA))
    assert quality.load_schema(good)["primaryKey"] == ["stroke"]
    with pytest.raises(InvalidInput, match="does not exist"):
        quality.load_schema(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{fields: [")
    with pytest.raises(InvalidInput, match="cannot read the table schema"):
        quality.load_schema(tmp_path / "bad.json")


def _peak(path: Path, rows: int) -> int:
    path.write_text(_rows(rows).replace(MARK, "L0"))
    schema = {"fields": [dict(f, constraints={}) for f in SCHEMA["fields"]]}
    tracemalloc.start()
    try:
        report = quality.verify_table(path, schema)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert report.rows == rows


def test_memory_stays_bounded_as_a_table_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four times the rows, about the same peak: rows stream, the profile keeps a fixed
    number of figures and bounded sketches (small here, so both runs fill them)."""
    monkeypatch.setattr(quality, "SKETCH_SIZE", 64)
    monkeypatch.setattr(quality, "DUPLICATE_LIMIT", 500)
    small = _peak(tmp_path / "small.csv", 2_000)
    large = _peak(tmp_path / "large.csv", 8_000)
    assert large < small * 1.5, (small, large)


def test_the_distinct_sketch_is_exact_when_small_and_close_when_large() -> None:
    few = quality.Distinct()
    for i in range(500):
        few.add(i % 100)
    assert (few.count, few.exact) == (100, True)
    many = quality.Distinct()
    for i in range(60_000):
        many.add(f"v{i}")
    assert not many.exact
    assert abs(many.count - 60_000) < 60_000 * 0.1


def test_the_card_exports_as_croissant_and_as_a_data_package(
    registry: Registry, tmp_path: Path
) -> None:
    register_dataset(
        registry, _source(tmp_path, _rows(12)), name="strokes", version="v1",
        provider="Acme", actor="op", build_index=False, schema=SCHEMA,
        classification="trade-secret", licence="Acme DUA 3",
    )  # fmt: skip
    card = get_card(registry, "strokes", "v1")
    roles = {"stroke": "identifier", "force_kn": "measure"}
    document = cards.croissant(card, url="https://cleanroom.test/library/strokes/v1", roles=roles)
    assert cards.check_croissant(document) == []
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert document["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert document["license"] == "Acme DUA 3"
    files = {d["name"]: d for d in document["distribution"]}
    sums = {p: sha for p, _, sha in card.files}
    assert files["strokes.csv"]["sha256"] == sums["strokes.csv"]
    (record_set,) = document["recordSet"]
    fields = {f["name"]: f for f in record_set["field"]}
    assert set(fields) == {"stroke", "force_kn", "line", "batch", "day"}
    assert "role: identifier" in fields["stroke"]["description"]
    assert "trade-secret" in document["description"]
    package = cards.data_package(card, roles=roles)
    resources = {r["path"]: r for r in package["resources"]}
    assert resources["strokes.csv"]["hash"] == f"sha256:{sums['strokes.csv']}"
    assert resources["strokes.csv"]["schema"]["primaryKey"] == ["stroke"]
    assert "schema" not in resources["README.txt"]
    assert package["keywords"] == ["trade-secret"]
    for exported in (document, package):
        assert MARK not in json.dumps(exported)


def test_a_croissant_document_of_the_wrong_shape_is_found_out() -> None:
    good = {
        "@context": {"cr": "http://mlcommons.org/croissant/"},
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": "n", "description": "d", "license": "l", "url": "https://x.test/n",
        "distribution": [
            {"@type": "cr:FileObject", "@id": "a.csv", "contentUrl": "a.csv", "sha256": "0" * 64}
        ],
        "recordSet": [
            {"@id": "records/a", "field": [
                {"@id": "records/a/x", "dataType": "sc:Integer",
                 "source": {"fileObject": {"@id": "a.csv"}}}]}
        ],
    }  # fmt: skip
    assert cards.check_croissant(good) == []
    bad = json.loads(json.dumps(good))
    bad["distribution"][0]["sha256"] = "abc"
    bad["recordSet"][0]["field"][0]["source"]["fileObject"]["@id"] = "b.csv"
    bad["recordSet"][0]["@id"] = "a.csv"
    del bad["license"]
    problems = "\n".join(cards.check_croissant(bad))
    for text in ("license is required", "needs a sha256", "reads 'b.csv'", "unique: ['a.csv']"):
        assert text in problems, problems
