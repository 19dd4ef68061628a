"""Disclosure thresholds, read from ``policies/disclosure.yaml`` and validated at load.

Every threshold has a direction: a dataset's provider may override it for outputs that
use their dataset, but only towards stricter (a higher minimum, a lower maximum, a
harsher verdict, a shorter allowlist). A looser override is an error naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.checks.types import Verdict
from cleanroom.policy_files import load_yaml

POLICY_FILE = "disclosure.yaml"

# Which way is stricter, per field (looked up through dataclass field metadata).
HIGHER = "higher"  # a larger number is stricter (minimum counts)
LOWER = "lower"  # a smaller number is stricter (maximum sizes)
HARSHER = "harsher"  # a worse verdict is stricter
SUBSET = "subset"  # a shorter allowlist is stricter
SUPERSET = "superset"  # a longer denylist is stricter


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the key."""


def _strict(direction: str) -> dict[str, str]:
    return {"stricter": direction}


@dataclass(frozen=True)
class LimitsPolicy:
    """Sizes beyond which a file is not checked but failed."""

    max_file_bytes: int = field(default=2 * 1024**3, metadata=_strict(LOWER))
    max_cell_chars: int = field(default=100_000, metadata=_strict(LOWER))


@dataclass(frozen=True)
class TablesPolicy:
    """Thresholds for tables (CSV, TSV, Excel, Parquet, tables inside notebooks)."""

    min_cell_count: int = field(default=10, metadata=_strict(HIGHER))
    zero_cell_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))
    p_percent: float = field(default=0.10, metadata=_strict(HIGHER))
    nk_n: int = field(default=2, metadata=_strict(HIGHER))
    nk_k: float = field(default=0.9, metadata=_strict(LOWER))
    #: Several (n, k) rules at once, e.g. ABS-style [[1, 0.5], [2, 0.67]]; empty means
    #: the single rule (nk_n, nk_k).
    nk_rules: list[list[float]] = field(default_factory=lambda: [], metadata=_strict(SUPERSET))
    negative_value_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))
    min_residual_dof: int = field(default=10, metadata=_strict(HIGHER))
    extreme_value_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))
    row_level_min_rows: int = field(default=100, metadata=_strict(LOWER))
    row_level_source_fraction: float = field(default=0.05, metadata=_strict(LOWER))
    min_source_row_matches: int = field(default=1, metadata=_strict(LOWER))
    max_evidence_items: int = field(default=20, metadata=_strict(HIGHER))


@dataclass(frozen=True)
class NotebooksPolicy:
    """How notebooks are treated beyond the checks on each output."""

    outputs_verdict: Verdict = field(default=Verdict.PASS, metadata=_strict(HARSHER))
    raw_display_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))


@dataclass(frozen=True)
class ImagesPolicy:
    """Which image formats pass the format check."""

    pass_formats: list[str] = field(
        default_factory=lambda: ["png", "jpeg", "svg", "pdf"], metadata=_strict(SUBSET)
    )
    other_formats_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))
    max_plot_marks: int = field(default=80, metadata=_strict(LOWER))
    scatter_verdict: Verdict = field(default=Verdict.REVIEW, metadata=_strict(HARSHER))


@dataclass(frozen=True)
class PicklesPolicy:
    """Pickled objects: the globals a pickle may import and the models that keep rows."""

    allowed_globals: list[str] = field(default_factory=lambda: [], metadata=_strict(SUBSET))
    training_row_models: list[str] = field(default_factory=lambda: [], metadata=_strict(SUPERSET))


@dataclass(frozen=True)
class ModelsPolicy:
    """Tensor files (safetensors, ONNX) compared with the training data's row count."""

    tensor_rows_fraction: float = field(default=0.5, metadata=_strict(LOWER))
    min_samples_leaf: int = field(default=5, metadata=_strict(HIGHER))
    forest_without_bootstrap_verdict: Verdict = field(
        default=Verdict.FAIL, metadata=_strict(HARSHER)
    )
    #: Membership-inference report thresholds (SACRO-ML's attack output).
    max_attack_auc: float = field(default=0.65, metadata=_strict(LOWER))
    max_attack_advantage: float = field(default=0.1, metadata=_strict(LOWER))


@dataclass(frozen=True)
class ArchivesPolicy:
    """Archives: depth, member count and expansion limits (zip bombs)."""

    max_depth: int = field(default=1, metadata=_strict(LOWER))
    max_members: int = field(default=1000, metadata=_strict(LOWER))
    max_expansion_ratio: float = field(default=100.0, metadata=_strict(LOWER))
    max_uncompressed_bytes: int = field(default=1024**3, metadata=_strict(LOWER))


_SECTIONS: dict[str, type] = {
    "limits": LimitsPolicy,
    "tables": TablesPolicy,
    "notebooks": NotebooksPolicy,
    "images": ImagesPolicy,
    "pickles": PicklesPolicy,
    "models": ModelsPolicy,
    "archives": ArchivesPolicy,
}


def default_policies_dir() -> Path:
    """The deployment's policies folder (:func:`cleanroom.paths.policies_dir`)."""
    return paths.policies_dir()


@dataclass(frozen=True)
class DisclosurePolicy:
    """All disclosure thresholds in force for one check (after dataset overrides)."""

    limits: LimitsPolicy = field(default_factory=LimitsPolicy)
    tables: TablesPolicy = field(default_factory=TablesPolicy)
    notebooks: NotebooksPolicy = field(default_factory=NotebooksPolicy)
    images: ImagesPolicy = field(default_factory=ImagesPolicy)
    pickles: PicklesPolicy = field(default_factory=PicklesPolicy)
    models: ModelsPolicy = field(default_factory=ModelsPolicy)
    archives: ArchivesPolicy = field(default_factory=ArchivesPolicy)
    datasets_applied: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None, datasets: Iterable[str] = ()) -> DisclosurePolicy:
        """Read the policy file and apply the stricter overrides of ``datasets``.

        ``path`` defaults to ``disclosure.yaml`` in :func:`default_policies_dir`. A
        dataset without overrides is fine (most have none).
        """
        file = Path(path) if path is not None else default_policies_dir() / POLICY_FILE
        data = load_yaml(file, what="disclosure policy", error=PolicyError)
        return cls.from_mapping(data, datasets=datasets, source=str(file))

    @classmethod
    def from_mapping(
        cls, data: Any, datasets: Iterable[str] = (), source: str = "<mapping>"
    ) -> DisclosurePolicy:
        """Build and validate a policy from parsed YAML (see :meth:`load`)."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: the top level must be a mapping of sections")
        unknown = set(data) - set(_SECTIONS) - {"version", "datasets"}
        if unknown:
            raise PolicyError(
                f"{source}: unknown section {sorted(unknown)[0]!r}; "
                f"known: {', '.join(sorted(_SECTIONS))}, datasets"
            )
        if data.get("version", 1) != 1:
            raise PolicyError(f"{source}: version: only version 1 is understood")
        sections = {
            name: _build_section(kind, data.get(name) or {}, f"{source}: {name}")
            for name, kind in _SECTIONS.items()
        }
        overrides = data.get("datasets") or {}
        if not isinstance(overrides, Mapping):
            raise PolicyError(f"{source}: datasets: must map dataset names to overrides")
        # Validate every dataset's overrides, not only the requested ones, so that a
        # provider's mistake shows at load time rather than on the day it is used.
        checked = {
            str(name): _check_override(sections, over, f"{source}: datasets.{name}")
            for name, over in overrides.items()
        }
        applied: list[str] = []
        for name in datasets:
            if name in checked:
                sections = _apply_override(sections, checked[name])
            applied.append(name)
        return cls(**sections, datasets_applied=tuple(applied), source=source)

    def to_dict(self) -> dict[str, Any]:
        """The thresholds in force, as JSON-safe data (kept with each report)."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            out[name] = {
                f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)
            }
        out["datasets_applied"] = list(self.datasets_applied)
        return out


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Verdict) else value


def _coerce(kind: Any, value: Any, where: str) -> Any:
    if kind is Verdict or kind == "Verdict":
        try:
            return Verdict.parse(value)
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from None
    if kind in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PolicyError(f"{where}: must be a whole number >= 0, not {value!r}")
        return value
    if kind in (float, "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise PolicyError(f"{where}: must be a number >= 0, not {value!r}")
        return float(value)
    if kind in (list[str], "list[str]"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{where}: must be a list of strings")
        return list(value)
    if kind in (list[list[float]], "list[list[float]]"):
        return _nk_rules(value, where)
    raise PolicyError(f"{where}: unsupported setting type {kind!r}")  # pragma: no cover


def _nk_rules(value: Any, where: str) -> list[list[float]]:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: must be a list of [n, k] pairs, e.g. [[1, 0.5], [2, 0.67]]")
    rules: list[list[float]] = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or item[0] not in (1, 2)
            or isinstance(item[1], bool)
            or not isinstance(item[1], int | float)
            or not 0 < item[1] <= 1
        ):
            raise PolicyError(
                f"{where}: {item!r} is not an [n, k] pair with n 1 or 2 and k a share in "
                "(0, 1], e.g. [2, 0.67]"
            )
        rules.append([int(item[0]), float(item[1])])
    return rules


def _build_section(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: must be a mapping of settings")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise PolicyError(f"{where}.{key}: unknown setting; known: {', '.join(fields)}")
        values[key] = _coerce(fields[key].type, value, f"{where}.{key}")
    return kind(**values)


def _check_override(base: dict[str, Any], override: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(override, Mapping):
        raise PolicyError(f"{where}: must be a mapping of sections")
    checked: dict[str, dict[str, Any]] = {}
    for section_name, settings in override.items():
        if section_name not in _SECTIONS:
            raise PolicyError(f"{where}.{section_name}: unknown section")
        if not isinstance(settings, Mapping):
            raise PolicyError(f"{where}.{section_name}: must be a mapping of settings")
        section = base[section_name]
        fields = {f.name: f for f in dataclasses.fields(section)}
        for key, raw in settings.items():
            at = f"{where}.{section_name}.{key}"
            if key not in fields:
                raise PolicyError(f"{at}: unknown setting")
            value = _coerce(fields[key].type, raw, at)
            if not _is_stricter(fields[key].metadata["stricter"], getattr(section, key), value):
                raise PolicyError(
                    f"{at}: a dataset may only make the policy stricter "
                    f"({getattr(section, key)!r} -> {raw!r} is looser)"
                )
            checked.setdefault(section_name, {})[key] = value
    return checked


def _is_stricter(direction: str, old: Any, new: Any) -> bool:
    if direction == HIGHER:
        return bool(new >= old)
    if direction == LOWER:
        return bool(new <= old)
    if direction == HARSHER:
        return bool(new >= old)
    if direction == SUBSET:
        return set(map(_hashable, new)) <= set(map(_hashable, old))
    return set(map(_hashable, new)) >= set(map(_hashable, old))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _apply_override(
    sections: dict[str, Any], override: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    out = dict(sections)
    for section_name, values in override.items():
        section = out[section_name]
        merged: dict[str, Any] = {}
        for key, value in values.items():
            direction = next(
                f.metadata["stricter"] for f in dataclasses.fields(section) if f.name == key
            )
            old = getattr(section, key)
            # Two datasets in one output: keep the stricter of the two for each key.
            if direction in (HIGHER, HARSHER):
                merged[key] = max(old, value)
            elif direction == LOWER:
                merged[key] = min(old, value)
            elif direction == SUBSET:
                merged[key] = [v for v in old if v in value]
            else:
                merged[key] = [*old, *(v for v in value if v not in old)]
        out[section_name] = dataclasses.replace(section, **merged)
    return out
