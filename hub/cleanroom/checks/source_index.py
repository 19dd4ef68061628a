"""A compact index of a dataset version, built once at registration, used by every check.

The index holds hashes, not data: for a few column combinations that are near-unique in
the source (a timestamp, a pair of sensor readings), the sorted 64-bit hashes of every
row's normalised values, with the row number they came from. An output row whose hash
is in that array reproduces a source record. Beside them: hashes of the identifier
columns' values, hashes of numeric values that few records share (a released minimum
or maximum equal to one of them reveals a record), and per-cell sums, counts and the
two largest contributions for low-cardinality groupings (for the dominance rules).

Arrays are ``.npy`` files opened memory-mapped, so checking an output costs memory for
the output, not for the source. The index is derived from the data and is kept in the
registry beside it; it is not meant to leave the clean room.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cleanroom.checks.roles import ROLES_FILE, RolesError, infer_role, validate_roles
from cleanroom.checks.types import CheckInputError

INDEX_VERSION = 3
META_FILE = "index.json"

#: Share of distinct combinations among source rows that makes a combination "near-unique"
#: (at 0.998, about one fresh row in 500 meets a source row by chance).
NEAR_UNIQUE = 0.998
#: A numeric value shared by fewer source rows than this counts as one record's value.
RARE_VALUE_ROWS = 10
#: Columns with at most this many distinct values are groupings for the dominance stats.
MAX_GROUP_CARDINALITY = 60
#: Decimals kept for numbers: enough for sensor readings, few enough to survive CSV.
MAX_DECIMALS = 6
_MAX_PAIRS_FROM = 10
_THREADS = max(1, min(4, os.cpu_count() or 1))
_MAX_COMBOS = 12
_MAX_TIME_PAIRS = 6

# Renamed columns: readings tried per table, and assignments tried per combination.
_MAX_RENAMINGS = 24
_MAX_ASSIGNMENTS = 6
_RENAMING_HEAD = 5_000


def normalise_name(name: object) -> str:
    """A column name as checks compare it: lower case, words joined by ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: spreads nearby integers (row ids, rounded readings) over
    # the whole 64-bit range so that combined keys do not collide by construction.
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def combine_keys(keys: Sequence[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per row from the per-column keys of a combination."""
    out = _mix(keys[0])
    for i, k in enumerate(keys[1:], start=1):
        with np.errstate(over="ignore"):
            out = _mix(out ^ (_mix(k) + np.uint64(i)))
    return out


def normalise_strings(values: pd.Series) -> np.ndarray:
    """Strings as checks compare them: trimmed, case-folded, as an object array."""
    text = values.astype("str") if values.dtype != "str" else values
    return text.str.strip().str.lower().to_numpy(dtype=object, na_value="")


def hash_strings(values: np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes of normalised strings (the same in every process)."""
    if len(values) == 0:
        return np.empty(0, dtype=np.uint64)
    return np.asarray(pd.util.hash_array(values, categorize=True), dtype=np.uint64)


def _at_resolution(column: pd.Series, decimals: int) -> bool:
    """Whether a column's numbers are written at no finer resolution than ``decimals``
    (with room for float32: tensors and some writers keep 52.1 as 52.09999847)."""
    if not pd.api.types.is_numeric_dtype(column.dtype):
        column = pd.to_numeric(column, errors="coerce")
    nums = column.to_numpy(dtype="float64", na_value=np.nan)
    nums = nums[np.isfinite(nums)]
    if not len(nums):
        return True
    tolerance = np.maximum(10.0 ** -(decimals + 3), np.abs(nums) * 2e-7)
    return bool(np.all(np.abs(np.round(nums, decimals) - nums) <= tolerance))


@dataclass(frozen=True)
class ColumnSpec:
    """How one source column is normalised: ``num`` (rounded to ``decimals``), ``time``
    (whole seconds) or ``str`` (trimmed, case-folded)."""

    name: str
    kind: str
    decimals: int = 0

    def keys(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Per-row 64-bit keys and a mask of the rows that have a usable value."""
        if self.kind == "num":
            if values.dtype == bool:
                values = values.astype("int64")
            nums = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            valid = np.isfinite(nums)
            scaled = np.where(valid, np.round(nums * 10.0**self.decimals), 0.0)
            valid &= np.abs(scaled) < 9e18
            return np.where(valid, scaled, 0.0).astype(np.int64).view(np.uint64), valid
        if self.kind == "time":
            stamps = _to_datetime(values)
            valid = ~np.isnat(stamps)
            secs = np.where(valid, stamps.astype("datetime64[s]").astype(np.int64), 0)
            return secs.view(np.uint64), valid
        text = normalise_strings(values)
        valid = (text != "") & (text != "nan")
        return hash_strings(text), valid


def _to_datetime(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values
        if getattr(values.dt, "tz", None) is not None:
            stamps = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamps.to_numpy(dtype="datetime64[ns]")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _epoch(values)
    parsed = pd.to_datetime(values.astype("str"), errors="coerce", format="ISO8601", utc=True)
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


# Epoch numbers (pandas' to_json writes timestamps as epoch milliseconds by default):
# the unit whose range the values fall in, 2001 to 2096.
_EPOCH_UNITS = (("s", 1e9, 4e9), ("ms", 1e12, 4e12), ("us", 1e15, 4e15), ("ns", 1e18, 4e18))


def _epoch(values: pd.Series) -> np.ndarray:
    nums = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    finite = nums[np.isfinite(nums)]
    if len(finite):
        for unit, low, high in _EPOCH_UNITS:
            if finite.min() >= low and finite.max() < high:
                stamps = pd.to_datetime(nums, unit=unit, errors="coerce")
                return np.asarray(stamps, dtype="datetime64[ns]")
    return np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")


def _infer_spec(name: str, values: pd.Series) -> ColumnSpec:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return ColumnSpec(name, "time")
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        return ColumnSpec(name, "num", 0)
    if pd.api.types.is_float_dtype(values.dtype):
        return ColumnSpec(name, "num", _decimals(values.to_numpy(dtype="float64")))
    sample = values.dropna().astype("str").head(2000)
    if len(sample) and sample.str.match(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}").mean() > 0.95:
        return ColumnSpec(name, "time")
    return ColumnSpec(name, "str")


def _decimals(values: np.ndarray) -> int:
    # The fewest decimals that reproduce every sampled value: sensor columns are
    # usually stored at a fixed resolution, and outputs print them at that resolution.
    finite = values[np.isfinite(values)][:20_000]
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(finite, d), finite, rtol=0, atol=10.0 ** -(d + 3)):
            return d
    return MAX_DECIMALS


@dataclass(frozen=True)
class SourceIndexInfo:
    """What :func:`build_source_index` wrote: for the registry to store and show."""

    out_dir: Path
    rows: int
    files: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    identifier_columns: list[str]
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {
            "out_dir": str(self.out_dir),
            "rows": self.rows,
            "files": self.files,
            "tables": self.tables,
            "identifier_columns": self.identifier_columns,
            "size_bytes": self.size_bytes,
        }


def _read_source(path: Path) -> pd.DataFrame:
    head = path.open("rb").read(4)
    try:
        if head == b"PAR1":
            return pd.read_parquet(path)
        if path.suffix.lower() in {".xlsx", ".xlsm"}:
            return pd.read_excel(path)
        sep = "\t" if path.suffix.lower() in {".tsv", ".tab"} else ","
        return pd.read_csv(path, sep=sep, engine="pyarrow")
    except Exception as exc:
        raise CheckInputError(f"cannot read source file {path}: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sorted_contains(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Mask of ``needles`` found in the sorted array ``haystack`` (memory-mapped or not).

    Unlike ``np.isin``, this never copies or re-sorts the haystack.
    """
    if len(haystack) == 0 or len(needles) == 0:
        return np.zeros(len(needles), dtype=bool)
    pos = np.searchsorted(haystack, needles)
    pos[pos >= len(haystack)] = len(haystack) - 1
    return np.asarray(haystack[pos]) == needles


def _value_set(keys: np.ndarray) -> np.ndarray:
    return np.unique((_mix(keys) >> np.uint64(32)).astype(np.uint32))


def _uniqueness(keys: np.ndarray) -> float:
    if len(keys) == 0:
        return 0.0
    ordered = np.sort(keys)
    return (1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))) / len(keys)


def _gain(item: tuple[float, list[str]], covered: set[tuple[str, str]]) -> tuple[int, int, float]:
    pairs = set(itertools.combinations(sorted(item[1]), 2))
    return (len(pairs - covered), -len(item[1]), item[0])


def _choose_combos(frame: pd.DataFrame, specs: dict[str, ColumnSpec]) -> list[list[str]]:
    """Column combinations on which a matching row is strong evidence of a copied record.

    Being unique within the source is not enough: a row drawn from the same process
    (another week of the same line, synthetic data) must also be unlikely to meet a
    source row by chance. The share of source rows that share their combination with
    another row estimates that chance, so we keep combinations where it is tiny.
    """
    cols = list(specs)
    keys = {}
    valid_all = np.ones(len(frame), dtype=bool)
    for c in cols:
        k, v = specs[c].keys(frame[c])
        keys[c] = k
        valid_all &= v
    keys = {c: k[valid_all] for c, k in keys.items()}
    ratio = {c: _uniqueness(keys[c]) for c in cols}
    ranked = sorted(cols, key=lambda c: -ratio[c])
    combos: list[list[str]] = []
    # Alone, a unique integer is usually a row id whose values collide with counts in
    # aggregate tables, and a timestamp collides with the bins of a time series; both
    # take part only in combinations. Text and decimals may stand alone.
    row_ids = [
        c
        for c in ranked
        if ratio[c] >= NEAR_UNIQUE and specs[c].kind == "num" and specs[c].decimals == 0
    ]
    for c in ranked:
        if ratio[c] >= NEAR_UNIQUE and specs[c].kind != "time" and c not in row_ids:
            combos.append([c])
    singles = {c for combo in combos for c in combo}
    rest = [c for c in ranked if c not in singles and c not in row_ids][:_MAX_PAIRS_FROM]
    for c in row_ids[:2]:
        # An id is unique with anything; only a partner with many values of its own
        # keeps a chance match (same id, same value) rare.
        if rest and ratio[rest[0]] >= 0.5:
            combos.append([c, rest[0]])
    scored: list[tuple[float, list[str]]] = []
    # Two searches: one over every column, one without timestamps, so that an output
    # of sensor readings alone (no time, no id) still meets a combination.
    untimed = [c for c in rest if specs[c].kind != "time"]
    for pool, sizes in ((rest, (2, 3)), (untimed, (2, 3, 4))):
        found = 0
        for size in sizes:
            for combo in itertools.combinations(pool[: 10 if size == 2 else 8], size):
                if [u for u, c in scored if c == list(combo)]:
                    continue
                u = _uniqueness(combine_keys([keys[c] for c in combo]))
                if u >= NEAR_UNIQUE:
                    scored.append((u, list(combo)))
                    found += 1
            if found >= 4:
                break
    # Greedy choice for variety: each pick covers the most column pairs not covered
    # yet, so that an output keeping any few of the columns likely holds a whole
    # combination; smaller and more unique combinations win ties.
    covered: set[tuple[str, str]] = set()
    while scored and len(combos) < _MAX_COMBOS:
        best = max(scored, key=lambda item: _gain(item, covered))
        if _gain(best, covered)[0] == 0:
            break
        scored.remove(best)
        combos.append(best[1])
        covered |= set(itertools.combinations(sorted(best[1]), 2))
    # A timestamp with any one reading is the most common shape of copied rows (a time
    # series of one sensor, renamed): keep those pairs too when they are near-unique,
    # beyond the variety cap.
    extra = 0
    for t in [c for c in rest if specs[c].kind == "time"][:2]:
        for c in [c for c in rest if specs[c].kind == "num"]:
            if extra >= _MAX_TIME_PAIRS or [t, c] in combos or [c, t] in combos:
                continue
            if _uniqueness(combine_keys([keys[t], keys[c]])) >= NEAR_UNIQUE:
                combos.append([t, c])
                extra += 1
    if not combos:
        combos.append(cols)
    return combos


def build_source_index(
    files: list[Path],
    out_dir: Path,
    *,
    identifier_columns: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    name: str | None = None,
    roles: Mapping[str, str] | None = None,
) -> SourceIndexInfo:
    """Index the tabular files of one dataset version into ``out_dir``.

    Call this when a dataset version is registered; ``out_dir`` is a fresh writable
    folder that the registry keeps. Files with the same rows in another format (the
    CSV and Parquet copies of one table) are indexed once. ``identifier_columns`` names
    the columns that identify machines, lots, people or companies; by default, columns
    named like ``*_id`` holding text, or ``company``, ``operator`` and the like.
    Files that are not tables (images, documents) are skipped and listed. ``name``
    (shown in findings) defaults to the first table's file name without suffix.

    ``roles`` declares each column's role (see :mod:`cleanroom.checks.roles`); without
    it, a ``roles.yaml`` beside the first file is read, and columns it does not name
    get :func:`~cleanroom.checks.roles.infer_role`'s default. ``identifier_columns``
    (older callers) declares direct identifiers on top of the roles.
    """
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables: list[dict[str, Any]] = []
    file_rows: list[dict[str, Any]] = []
    identifier_hashes: list[np.ndarray] = []
    contributor_hashes: list[np.ndarray] = []
    max_words = 1
    identifier_names: set[str] = set()
    seen_rows: list[np.ndarray] = []
    wanted_ids = {normalise_name(c) for c in identifier_columns} if identifier_columns else None
    declared = _declared_roles(roles, [Path(f) for f in files])
    all_roles: dict[str, str] = {}
    for path in map(Path, files):
        if path.suffix.lower() not in {".csv", ".tsv", ".tab", ".parquet", ".xlsx", ".xlsm"}:
            with path.open("rb") as fh:
                if fh.read(4) != b"PAR1":
                    file_rows.append({"name": path.name, "skipped": "not a table"})
                    continue
        say(f"reading {path.name}")
        frame = _read_source(path)
        frame.columns = [normalise_name(c) for c in frame.columns]
        frame = frame.loc[:, ~frame.columns.duplicated()]
        entry: dict[str, Any] = {"name": path.name, "sha256": _sha256(path), "rows": len(frame)}
        specs = {c: _infer_spec(c, frame[c]) for c in frame.columns}
        all_keys = [specs[c].keys(frame[c])[0] for c in frame.columns]
        row_hashes = np.unique(combine_keys(all_keys)) if all_keys else np.empty(0, np.uint64)
        duplicate = next(
            (i for i, seen in enumerate(seen_rows) if np.array_equal(seen, row_hashes)), None
        )
        if duplicate is not None:
            entry["same_rows_as"] = tables[duplicate]["files"][0]
            tables[duplicate]["files"].append(path.name)
            file_rows.append(entry)
            say(f"{path.name}: same rows as {entry['same_rows_as']}, not indexed twice")
            continue
        seen_rows.append(row_hashes)
        file_rows.append(entry)
        t = len(tables)
        say(f"{path.name}: choosing column combinations")
        combos = _choose_combos(frame, specs)
        table_roles = {c: declared.get(c) or infer_role(c, frame[c]) for c in frame.columns}
        if wanted_ids:
            table_roles.update({c: "direct_identifier" for c in frame.columns if c in wanted_ids})
        all_roles.update(table_roles)
        table: dict[str, Any] = {
            "name": path.stem,
            "files": [path.name],
            "rows": len(frame),
            "distinct_rows": len(row_hashes),
            "columns": {c: {"kind": s.kind, "decimals": s.decimals} for c, s in specs.items()},
            "combos": [],
            "rare_values": [],
            "groups": [],
            "roles": table_roles,
            "declared_roles": sorted(c for c in frame.columns if c in declared),
        }
        for ci, combo in enumerate(combos):
            say(f"{path.name}: hashing rows on {', '.join(combo)}")
            parts = [specs[c].keys(frame[c]) for c in combo]
            valid = np.logical_and.reduce([v for _k, v in parts])
            hashes = combine_keys([k[valid] for k, _v in parts])
            rows = np.flatnonzero(valid).astype(np.uint32)
            order = np.argsort(hashes, kind="stable")
            np.save(out_dir / f"t{t}_c{ci}_hash.npy", hashes[order])
            np.save(out_dir / f"t{t}_c{ci}_row.npy", rows[order])
            table["combos"].append({"columns": combo, "file": f"t{t}_c{ci}"})
        # Value sets of the combination columns (32-bit hashes of distinct values), so
        # that an output whose columns were all renamed still finds its source columns.
        table["value_sets"] = []
        for c in sorted({c for combo in combos for c in combo}):
            keys, valid = specs[c].keys(frame[c])
            np.save(out_dir / f"t{t}_vals_{c}.npy", _value_set(keys[valid]))
            table["value_sets"].append(c)
        for c, spec in specs.items():
            if spec.kind != "num":
                continue
            keys, valid = spec.keys(frame[c])
            uniq, counts = np.unique(keys[valid], return_counts=True)
            # Stored mixed, like every other key, so that no value sits in the clear.
            rare_keys = np.sort(_mix(uniq[counts < RARE_VALUE_ROWS]))
            np.save(out_dir / f"t{t}_rare_{c}.npy", rare_keys)
            table["rare_values"].append(c)
        ids = [c for c in frame.columns if table_roles[c] == "direct_identifier"]
        for c in ids:
            identifier_names.add(c)
            identifier_hashes.append(_identifier_value_hashes(frame[c]))
            words = frame[c].dropna().astype("str").str.split().str.len()
            max_words = max(max_words, int(words.max()) if len(words) else 1)
        table["identifier_columns"] = ids
        for c in frame.columns:
            if table_roles[c] == "contributor" and specs[c].kind == "str":
                contributor_hashes.append(_identifier_value_hashes(frame[c]))
        say(f"{path.name}: group statistics")
        groups = _group_stats(frame, specs, table_roles)
        if len(groups):
            groups.to_parquet(out_dir / f"t{t}_groups.parquet", index=False)
            table["groups"] = sorted(groups["group"].unique().tolist())
        tables.append(table)
    ident = np.unique(np.concatenate(identifier_hashes)) if identifier_hashes else np.empty(0)
    np.save(out_dir / "identifiers.npy", ident.astype(np.uint64))
    # Contributors' names: a wide pivot with one column per supplier holds them in its
    # header, and each of its magnitude cells is one contributor's total.
    contrib = np.unique(np.concatenate(contributor_hashes)) if contributor_hashes else np.empty(0)
    np.save(out_dir / "contributors.npy", contrib.astype(np.uint64))
    if wanted_ids:
        identifier_names |= wanted_ids
    total_rows = int(sum(t["rows"] for t in tables))
    id_names = sorted(identifier_names)
    meta = {
        "version": INDEX_VERSION,
        "name": name or (tables[0]["name"] if tables else out_dir.name),
        "rows": total_rows,
        "files": file_rows,
        "tables": tables,
        "identifier_columns": id_names,
        "identifier_max_words": min(max_words, 8),
        "roles": all_roles,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    size = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    say(f"index written: {size / 1e6:.1f} MB")
    return SourceIndexInfo(
        out_dir=out_dir,
        rows=total_rows,
        files=file_rows,
        tables=tables,
        identifier_columns=id_names,
        size_bytes=size,
    )


def _identifier_value_hashes(values: pd.Series) -> np.ndarray:
    uniq = pd.Series(pd.unique(normalise_strings(values.dropna())), dtype="str")
    # Short or purely numeric identifiers ("7", "12") would match ordinary numbers in
    # every table; they are left to the column-name check.
    keep = (uniq.str.len() >= 3) & ~uniq.str.fullmatch(r"[\d.,\s+-]*")
    return hash_strings(uniq[keep].to_numpy(dtype=object))


def _declared_roles(roles: Mapping[str, str] | None, files: list[Path]) -> dict[str, str]:
    """The provider's declared roles: given, or the ``roles.yaml`` card beside the files."""
    if roles is not None:
        try:
            return validate_roles(roles)
        except RolesError as exc:
            raise CheckInputError(str(exc)) from exc
    for folder in dict.fromkeys(f.parent for f in files):
        card = folder / ROLES_FILE
        if card.is_file():
            import yaml

            try:
                data = yaml.safe_load(card.read_text(encoding="utf-8")) or {}
                return validate_roles(data.get("columns", data), where=str(card))
            except (yaml.YAMLError, AttributeError, RolesError) as exc:
                raise CheckInputError(f"{card}: {exc}") from exc
    return {}


def _group_stats(
    frame: pd.DataFrame, specs: dict[str, ColumnSpec], roles: Mapping[str, str]
) -> pd.DataFrame:
    nunique = frame.nunique()
    groupers = [
        c
        for c in frame.columns
        if 1 < nunique[c] <= MAX_GROUP_CARDINALITY
        and specs[c].kind in {"str", "num"}
        and roles.get(c) not in ("measure", "time")
    ]
    measures = [
        c
        for c, s in specs.items()
        if s.kind == "num"
        and c not in groupers
        and (nunique[c] > MAX_GROUP_CARDINALITY or roles.get(c) == "measure")
        and roles.get(c) not in ("direct_identifier", "time")
    ]
    if not groupers or not measures:
        return pd.DataFrame()
    # Dominance is about the contributors' shares: a supplier's total in a cell, across
    # all its deliveries, not a single delivery.
    contributors = [c for c in frame.columns if roles.get(c) == "contributor"]
    label_keys = {c: specs[c].keys(frame[c])[0] for c in groupers}
    contributor_keys = {c: specs[c].keys(frame[c])[0] for c in contributors}
    values = {
        m: pd.to_numeric(frame[m], errors="coerce").to_numpy(dtype="float64") for m in measures
    }
    parts = []
    for size in (1, 2):
        for group in itertools.combinations(groupers, size):
            key = combine_keys([label_keys[c] for c in group])
            order = np.argsort(key, kind="stable")
            sorted_key = key[order]
            by_contributor = {
                c: np.lexsort((contributor_keys[c], key)) for c in contributors if c not in group
            }
            for m in measures:
                stats = _cell_stats(sorted_key, values[m][order])
                stats.insert(0, "contributor", "")
                stats.insert(0, "measure", m)
                stats.insert(0, "group", "|".join(group))
                parts.append(stats)
                for c, corder in by_contributor.items():
                    stats = _contributor_stats(
                        key[corder], contributor_keys[c][corder], values[m][corder]
                    )
                    stats.insert(0, "contributor", c)
                    stats.insert(0, "measure", m)
                    stats.insert(0, "group", "|".join(group))
                    parts.append(stats)
    return pd.concat(parts, ignore_index=True)


def _contributor_stats(cell: np.ndarray, contributor: np.ndarray, vals: np.ndarray) -> pd.DataFrame:
    """Per cell: the number of contributors, the total and the two largest contributor
    totals (``cell`` then ``contributor`` sorted)."""
    ok = np.isfinite(vals)
    cell, contributor, vals = cell[ok], contributor[ok], vals[ok]
    if len(cell) == 0:
        return pd.DataFrame(columns=["key", "count", "sum", "top1", "top2", "min"])
    starts = np.flatnonzero(
        np.r_[True, (cell[1:] != cell[:-1]) | (contributor[1:] != contributor[:-1])]
    )
    totals = np.add.reduceat(vals, starts)
    return _cell_stats(cell[starts], totals)


def _cell_stats(key: np.ndarray, vals: np.ndarray) -> pd.DataFrame:
    """Per-cell count, sum, two largest and smallest value; ``key`` must be sorted."""
    ok = np.isfinite(vals)
    key, vals = key[ok], vals[ok]
    if len(key) == 0:
        return pd.DataFrame(columns=["key", "count", "sum", "top1", "top2", "min"])
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    top1 = np.maximum.reduceat(vals, starts)
    # The second largest: knock out one occurrence of each cell's largest value (its
    # first position) and take the largest again.
    is_top = vals == np.repeat(top1, counts)
    cell = np.repeat(np.arange(len(starts)), counts)
    first_top = np.flatnonzero(is_top)[np.r_[True, cell[is_top][1:] != cell[is_top][:-1]]]
    rest = vals.copy()
    rest[first_top] = -np.inf
    top2 = np.where(counts > 1, np.maximum.reduceat(rest, starts), 0.0)
    return pd.DataFrame(
        {
            "key": key[starts],
            "count": counts,
            "sum": np.add.reduceat(vals, starts),
            "top1": top1,
            "top2": top2,
            "min": np.minimum.reduceat(vals, starts),
        }
    )


@dataclass(frozen=True)
class RowMatch:
    """Output rows that reproduce source records on one near-unique combination."""

    table: str
    columns: list[str]
    output_rows: np.ndarray
    source_rows: np.ndarray


def _probe(
    name: str,
    columns: list[str],
    hashes: np.ndarray,
    rows: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray]],
) -> RowMatch | None:
    valid = np.logical_and.reduce([v for _k, v in parts])
    if not valid.any():
        return None
    query = combine_keys([k for k, _v in parts])
    # Probe with sorted needles: they walk the index in order, several times faster
    # than random probes. Most outputs stop here with no hit.
    ordered = np.sort(query)
    known = sorted_contains(hashes, ordered)
    n_known = int(np.count_nonzero(known))
    if n_known == 0:
        return None
    if n_known <= len(query) // 16:
        # A few hits (chance or a pasted sample): find them by value.
        values = ordered[known]  # sorted, so duplicates are adjacent
        values = values[np.r_[True, values[1:] != values[:-1]]]
        out_rows = np.flatnonzero(valid & sorted_contains(values, query))
        pos = np.searchsorted(hashes, query[out_rows])
    else:
        # Many hits (a dump): one argsort maps the sorted probe back.
        order = np.argsort(query)
        pos_sorted = np.searchsorted(hashes, query[order])
        pos_sorted[pos_sorted >= len(hashes)] = len(hashes) - 1
        hit = np.empty(len(query), dtype=bool)
        hit[order] = np.asarray(hashes[pos_sorted]) == query[order]
        out_rows = np.flatnonzero(hit & valid)
        pos_all = np.empty(len(query), dtype=np.int64)
        pos_all[order] = pos_sorted
        pos = pos_all[out_rows]
    if not len(out_rows):
        return None
    return RowMatch(name, columns, out_rows, np.asarray(rows[pos]))


@dataclass
class _Table:
    name: str
    rows: int
    specs: dict[str, ColumnSpec]
    combos: list[tuple[list[str], np.ndarray, np.ndarray]]
    rare: dict[str, np.ndarray]
    groups: pd.DataFrame | None
    group_names: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    value_sets: dict[str, np.ndarray] = field(default_factory=dict)
    group_keys: dict[str, np.ndarray] = field(default_factory=dict)
    cells: dict[tuple[str, str, str], pd.DataFrame] | None = None


class SourceIndex:
    """A loaded index: lookups for the checks, memory-mapped, without the source data."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self.rows: int = int(meta["rows"])
        self.identifier_columns: frozenset[str] = frozenset(meta["identifier_columns"])
        #: The most words in one identifier value ("Ferro Lusitana SA" has 3).
        self.identifier_max_words: int = int(meta.get("identifier_max_words", 4))
        self.name: str = str(meta.get("name") or path.name)
        self._identifiers = np.load(path / "identifiers.npy", mmap_mode="r")
        self._contributors = np.load(path / "contributors.npy", mmap_mode="r")
        self.tables: list[_Table] = []
        for t, table in enumerate(meta["tables"]):
            specs = {
                c: ColumnSpec(c, v["kind"], int(v["decimals"])) for c, v in table["columns"].items()
            }
            combos = [
                (
                    list(combo["columns"]),
                    np.load(path / f"{combo['file']}_hash.npy", mmap_mode="r"),
                    np.load(path / f"{combo['file']}_row.npy", mmap_mode="r"),
                )
                for combo in table["combos"]
            ]
            rare = {
                c: np.load(path / f"t{t}_rare_{c}.npy", mmap_mode="r") for c in table["rare_values"]
            }
            groups_path = path / f"t{t}_groups.parquet"
            self.tables.append(
                _Table(
                    name=table["name"],
                    rows=int(table["rows"]),
                    specs=specs,
                    combos=combos,
                    rare=rare,
                    groups=None,
                    group_names=list(table["groups"]) if groups_path.exists() else [],
                    roles=dict(table.get("roles") or {}),
                    value_sets={
                        c: np.load(path / f"t{t}_vals_{c}.npy", mmap_mode="r")
                        for c in table.get("value_sets", [])
                    },
                )
            )
        #: Each column's role (declared by the provider or inferred at registration).
        self.roles: dict[str, str] = dict(meta.get("roles") or {})

    @property
    def columns(self) -> set[str]:
        """Every normalised column name in the source."""
        return {c for t in self.tables for c in t.specs}

    def match_rows(self, frame: pd.DataFrame) -> list[RowMatch]:
        """Rows of ``frame`` (columns already normalised) that match source records.

        Columns are matched by name first; when that finds nothing, by their values
        (each output column against the value sets of the source's columns), so that
        rows with every column renamed are still found.
        """
        found = self._match_rows(frame)
        if found or frame.shape[1] < 2 or not len(frame):
            return found
        for t, table in enumerate(self.tables):
            readings = self._renamings(frame, table)
            if len(frame) > _RENAMING_HEAD and len(readings) > 1:
                # A long output: the readings are tried on its head, and the whole of it
                # is probed with the one that matched there (or the first).
                head = [r for r in readings if self._match_rows(r.head(_RENAMING_HEAD), only=t)]
                readings = head[:1] or readings[:1]
            for renamed in readings:
                found += self._match_rows(renamed, only=t)
                if found:
                    break
        return found

    def _renamings(self, frame: pd.DataFrame, table: _Table) -> list[pd.DataFrame]:
        """Readings of ``frame`` with its columns named after source columns whose value
        sets hold (almost) all of their values, one per way of completing an indexed
        combination.

        One output column often fits several source columns (an integer 35..240 is a
        valid proofing time and a valid loaf count), so a single greedy naming can miss
        the combination the rows reproduce: every assignment that completes one is
        tried (bounded). A number written with more decimals than a source column
        keeps is not that column's value (52.10 is not a loaf count).
        """
        sample = frame.head(200)
        candidates: dict[str, set[str]] = {}
        for out_col in frame.columns:
            column = sample[out_col]
            if column.notna().sum() < min(5, len(sample)):
                continue
            for src_col, values in table.value_sets.items():
                spec = table.specs[src_col]
                if spec.kind == "num" and not _at_resolution(column, spec.decimals):
                    continue
                keys, valid = spec.keys(column)
                if valid.sum() < max(1, 0.9 * column.notna().sum()) or not len(values):
                    continue
                probe = (_mix(keys[valid]) >> np.uint64(32)).astype(np.uint32)
                if float(sorted_contains(values, np.sort(probe)).mean()) >= 0.95:
                    candidates.setdefault(str(out_col), set()).add(src_col)
        if len(candidates) < 2:
            return []
        mappings: list[tuple[tuple[str, str], ...]] = []
        for columns, hashes, _rows in table.combos:
            if not len(hashes):
                continue
            options = [sorted(o for o, srcs in candidates.items() if c in srcs) for c in columns]
            if not all(options):
                continue
            tried = 0
            for choice in itertools.product(*options):
                if len(set(choice)) < len(choice):
                    continue
                mapping = tuple(zip(choice, columns, strict=True))
                if mapping not in mappings:
                    mappings.append(mapping)
                tried += 1
                if tried >= _MAX_ASSIGNMENTS:
                    break
            if len(mappings) >= _MAX_RENAMINGS:
                break
        out = []
        for mapping in mappings[:_MAX_RENAMINGS]:
            renamed = frame[[o for o, _s in mapping]].copy(deep=False)
            renamed.columns = [s for _o, s in mapping]
            out.append(renamed)
        return out

    def _match_rows(self, frame: pd.DataFrame, only: int | None = None) -> list[RowMatch]:
        present = set(frame.columns)
        jobs: list[tuple[_Table, list[str], np.ndarray, np.ndarray]] = []
        keys: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        for t, table in enumerate(self.tables):
            if only is not None and t != only:
                continue
            for columns, hashes, rows in table.combos:
                if set(columns) <= present and len(hashes):
                    jobs.append((table, columns, hashes, rows))
                    # A column takes part in several combinations; normalise it once.
                    for c in columns:
                        if (t, c) not in keys:
                            keys[(t, c)] = table.specs[c].keys(frame[c])
        if not jobs:
            return []
        index_of = {id(table): t for t, table in enumerate(self.tables)}

        def probe(job: tuple[_Table, list[str], np.ndarray, np.ndarray]) -> RowMatch | None:
            table, columns, hashes, rows = job
            parts = [keys[(index_of[id(table)], c)] for c in columns]
            return _probe(table.name, columns, hashes, rows, parts)

        # numpy sorts and searches release the GIL: two threads use both cores.
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            return [m for m in pool.map(probe, jobs) if m is not None]

    def identifier_hits(self, normalised: np.ndarray) -> np.ndarray:
        """Mask of normalised strings that are values of a source identifier column."""
        if len(self._identifiers) == 0 or len(normalised) == 0:
            return np.zeros(len(normalised), dtype=bool)
        return sorted_contains(self._identifiers, hash_strings(normalised))

    def contributor_hits(self, normalised: np.ndarray) -> np.ndarray:
        """Mask of normalised strings that are values of a contributor column."""
        if len(self._contributors) == 0 or len(normalised) == 0:
            return np.zeros(len(normalised), dtype=bool)
        return sorted_contains(self._contributors, hash_strings(normalised))

    def rare_values(self, values: np.ndarray, column: str | None) -> dict[str, np.ndarray]:
        """For each source column, a mask of ``values`` that fewer than
        :data:`RARE_VALUE_ROWS` records hold (``column`` narrows the search when known)."""
        hits: dict[str, np.ndarray] = {}
        series = pd.Series(np.asarray(values, dtype="float64"))
        for table in self.tables:
            for c, rare in table.rare.items():
                if column is not None and c != column:
                    continue
                keys, valid = table.specs[c].keys(series)
                mask = valid & sorted_contains(rare, _mix(keys))
                if mask.any():
                    hits[c] = mask
        return hits

    def numeric_columns(self) -> set[str]:
        """Normalised names of the source's numeric columns."""
        return {c for t in self.tables for c, s in t.specs.items() if s.kind == "num"}

    @property
    def contributors(self) -> set[str]:
        """Columns declared (or inferred) as contributors: the units dominance protects."""
        return {c for c, r in self.roles.items() if r == "contributor"}

    def role(self, column: str) -> str | None:
        """The role of a source column, if the source has it."""
        return self.roles.get(column)

    def group_stats(self, group: Sequence[str], measure: str) -> tuple[ColumnSpec, ...] | None:
        """The column specs of a grouping that has cell statistics for ``measure``."""
        table = self._table_with(group, measure)
        return None if table is None else tuple(table.specs[c] for c in group)

    def group_specs(self, group: Sequence[str]) -> tuple[ColumnSpec, ...]:
        """How each column of a grouping is normalised (from a table that has it)."""
        table = self._table_with(group, None)
        if table is None:
            raise KeyError("|".join(group))
        return tuple(table.specs[c] for c in group)

    def tables_with(self, group: Sequence[str]) -> list[int]:
        """The numbers of the tables that hold cell statistics for ``group``."""
        name = "|".join(group)
        return [t for t, table in enumerate(self.tables) if name in table.group_names]

    def _table_with(self, group: Sequence[str], measure: str | None) -> _Table | None:
        # The table must hold both the grouping and the measure: a multi-table source
        # may have the grouping column in several tables and the measure in one.
        name = "|".join(group)
        for table in self.tables:
            if name in table.group_names and (measure is None or measure in table.specs):
                return table
        return None

    def _groups(self, table: _Table) -> pd.DataFrame:
        if table.groups is None:
            t = self.tables.index(table)
            table.groups = pd.read_parquet(self.path / f"t{t}_groups.parquet")
            if "contributor" not in table.groups:
                table.groups["contributor"] = ""
        return table.groups

    def cell_stats(
        self,
        group: Sequence[str],
        measure: str | None,
        keys: np.ndarray,
        contributor: str = "",
        table: int | None = None,
    ) -> pd.DataFrame:
        """Count, sum, two largest and smallest contribution for each cell key.

        ``measure`` None gives the record counts (any measure's). With ``contributor``
        the count is of distinct contributors and the contributions are each
        contributor's total in the cell. ``table`` picks one table of the source
        (default: the first that has both the grouping and the measure).
        """
        found = self._table_with(group, measure) if table is None else self.tables[table]
        empty = pd.DataFrame(
            index=pd.Index(keys), columns=["count", "sum", "top1", "top2", "min"], dtype="float64"
        )
        if found is None or (measure is not None and measure not in found.specs):
            return empty
        cells = self._cells(found)
        name = "|".join(group)
        if measure is None:
            # Record counts: any measure's cells of the grouping (the first one).
            measure = next((m for g, c, m in cells if g == name and c == contributor), None)
            if measure is None:
                return empty
        sub = cells.get((name, contributor, measure))
        if sub is None:
            return empty
        return sub.reindex(pd.Index(keys.astype(np.uint64)))

    def _cells(self, table: _Table) -> dict[tuple[str, str, str], pd.DataFrame]:
        # One split of the table's statistics by (grouping, contributor, measure), kept
        # for the life of the index: every file of every request looks cells up here.
        if table.cells is None:
            g = self._groups(table)
            table.cells = {
                (str(k[0]), str(k[1]), str(k[2])): part.drop(
                    columns=["group", "contributor", "measure"]
                ).set_index("key")
                for k, part in g.groupby(["group", "contributor", "measure"], sort=False)
            }
        return table.cells

    def measures_of(self, group: Sequence[str], table: int | None = None) -> list[str]:
        """The measures with cell statistics for ``group`` (in ``table``, or the first
        table that has the grouping)."""
        found = self._table_with(group, None) if table is None else self.tables[table]
        if found is None:
            return []
        name = "|".join(group)
        return sorted({m for g, _c, m in self._cells(found) if g == name})

    def find_grouping(
        self, frame: pd.DataFrame, columns: Sequence[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The source grouping whose cells ``frame``'s label ``columns`` are.

        Returns (source columns, the output columns in the same order). Columns match
        by name, or, when renamed, by value: the output labels must (almost) all be
        values of the source grouping column.
        """
        if not 1 <= len(columns) <= 2:
            return None
        for table in self.tables:
            candidates: list[list[str]] = []
            for col in columns:
                names = [col] if col in table.specs and self._is_group(table, col) else []
                names += [g for g in self._value_matches(table, frame[col]) if g != col]
                candidates.append(names)
            for choice in itertools.product(*candidates):
                if len(set(choice)) < len(choice):
                    continue
                for order in itertools.permutations(range(len(columns))):
                    group = tuple(choice[i] for i in order)
                    if "|".join(group) in table.group_names:
                        return group, tuple(columns[i] for i in order)
        return None

    @staticmethod
    def _is_group(table: _Table, column: str) -> bool:
        return column in table.group_names

    def knows_labels(self, values: pd.Series, share: float = 0.5) -> bool:
        """Whether at least ``share`` of the distinct ``values`` are values of some
        grouping column of the source (the table's labels come from this dataset)."""
        distinct = values.dropna().drop_duplicates()
        if not len(distinct):
            return False
        for table in self.tables:
            for name in table.group_names:
                if "|" in name or table.specs[name].kind != "str":
                    continue
                if name not in table.group_keys:
                    self._value_matches(table, distinct.head(1))
                keys, valid = table.specs[name].keys(distinct)
                known = table.group_keys.get(name)
                if known is None or not valid.any():
                    continue
                hits = sorted_contains(known, combine_keys([keys[valid]]))
                if float(hits.mean()) * valid.mean() >= share:
                    return True
        return False

    def _value_matches(self, table: _Table, values: pd.Series) -> list[str]:
        distinct = values.dropna().drop_duplicates()
        if not len(distinct):
            return []
        found: list[tuple[float, str]] = []
        for name in table.group_names:
            if "|" in name:
                continue
            if name not in table.group_keys:
                parts = [
                    part.index.to_numpy(dtype=np.uint64)
                    for (group, _c, _m), part in self._cells(table).items()
                    if group == name
                ]
                table.group_keys[name] = (
                    np.unique(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
                )
            known = table.group_keys[name]
            keys, valid = table.specs[name].keys(distinct)
            if not valid.any():
                continue
            share = float(sorted_contains(known, combine_keys([keys[valid]])).mean()) * valid.mean()
            if share >= 0.9:
                found.append((share, name))
        return [n for _s, n in sorted(found, reverse=True)]


def load_source_index(out_dir: Path) -> SourceIndex:
    """Open an index written by :func:`build_source_index` (no source data needed)."""
    path = Path(out_dir)
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckInputError(f"{path}: not a source index ({exc})") from exc
    if meta.get("version") != INDEX_VERSION:
        raise CheckInputError(
            f"{path}: index version {meta.get('version')!r} is not {INDEX_VERSION}: rebuild it "
            "with build_source_index"
        )
    try:
        return SourceIndex(path, meta)
    except (OSError, KeyError, ValueError) as exc:
        raise CheckInputError(f"{path}: damaged source index ({exc})") from exc


def load_indexes(dirs: Iterable[Path]) -> list[SourceIndex]:
    """Open several indexes (one per dataset a project uses)."""
    return [load_source_index(Path(d)) for d in dirs]
