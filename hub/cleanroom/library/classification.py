"""Data classification: ``policies/classification.yaml``, validated at load, and the
controls a project needs for the dataset versions it mounts.

Each dataset version carries one classification (its card, :mod:`cleanroom.library.catalogue`);
each classification names the controls a project must have to use it: the lowest quota
tier, the access mode (``standard`` JupyterLab or ``restricted``: only pixels reach the
browser), the provider's co-review of releases (``none``, ``notify``, ``required``) and a
cap on the egress budget. A project that mounts several versions needs the strictest of
each (:func:`combine`). :func:`required_controls` says what a project needs;
:func:`check_project` is the spawn-time refusal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanroom.errors import Forbidden, InvalidInput
from cleanroom.policy_files import load_yaml, policy_path

POLICY_FILE = "classification.yaml"
ACCESS_MODES = ("standard", "restricted")
"""From the least to the most restrictive."""
CO_REVIEW = ("none", "notify", "required")
"""From the least to the most demanding."""

_KEYS = {"description", "min_tier", "access", "co_review", "egress_per_day"}


@dataclass(frozen=True)
class Classification:
    """One classification and the controls it requires."""

    name: str
    description: str
    min_tier: str
    access: str
    co_review: str
    egress_per_day: int | None


@dataclass(frozen=True)
class ClassificationPolicy:
    """The classification policy: the tiers' ranking, the default and every category."""

    tier_order: tuple[str, ...]
    default: str
    classifications: dict[str, Classification]
    source: str = ""

    def get(self, name: str) -> Classification:
        """The classification ``name``, or a refusal that lists the known ones."""
        try:
            return self.classifications[name]
        except KeyError:
            raise InvalidInput(
                f"{name!r} is not a classification of {self.source or POLICY_FILE}; "
                f"known: {', '.join(self.classifications)}"
            ) from None

    def tier_rank(self, tier: str) -> int | None:
        """Where ``tier`` ranks in ``tier_order`` (None: unranked, it meets no minimum)."""
        return self.tier_order.index(tier) if tier in self.tier_order else None


@dataclass(frozen=True)
class Controls:
    """The controls a project needs: the strictest over the versions it mounts.

    ``because`` names each ``(dataset, version, classification)`` that contributed.
    ``min_tier`` None: no dataset asks for one; ``egress_per_day`` None: no cap.
    """

    min_tier: str | None
    access: str
    co_review: str
    egress_per_day: int | None
    because: tuple[tuple[str, str, str], ...] = ()


NO_CONTROLS = Controls(min_tier=None, access="standard", co_review="none", egress_per_day=None)
"""What a project without datasets needs: nothing beyond the deployment's defaults."""


def _size(value: Any, where: str) -> int | None:
    from cleanroom.workspace.quotas import parse_size

    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{where}: {value!r} is not a size such as 16M (or null: no cap)")
    return parse_size(value, where)


def _one(name: Any, spec: Any, where: str, tier_order: tuple[str, ...]) -> Classification:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}: a classification needs a name")
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} must be a mapping of controls")
    unknown = set(spec) - _KEYS
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    missing = {"min_tier", "access", "co_review"} - set(spec)
    if missing:
        raise InvalidInput(f"{where}: missing {', '.join(sorted(missing))}")
    if spec["min_tier"] not in tier_order:
        raise InvalidInput(
            f"{where}.min_tier: {spec['min_tier']!r} is not in tier_order ({', '.join(tier_order)})"
        )
    if spec["access"] not in ACCESS_MODES:
        raise InvalidInput(
            f"{where}.access: {spec['access']!r} must be one of {', '.join(ACCESS_MODES)}"
        )
    if spec["co_review"] not in CO_REVIEW:
        raise InvalidInput(
            f"{where}.co_review: {spec['co_review']!r} must be one of {', '.join(CO_REVIEW)}"
        )
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise InvalidInput(f"{where}.description must be text")
    return Classification(
        name=name,
        description=description.strip(),
        min_tier=spec["min_tier"],
        access=spec["access"],
        co_review=spec["co_review"],
        egress_per_day=_size(spec.get("egress_per_day"), f"{where}.egress_per_day"),
    )


def parse_policy(raw: Any, source: str = POLICY_FILE) -> ClassificationPolicy:
    """Validate a parsed classification policy; every error names the key and the fix."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source}: must be a mapping with tier_order, default, classifications")
    unknown = set(raw) - {"tier_order", "default", "classifications"}
    if unknown:
        raise InvalidInput(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    order = raw.get("tier_order")
    if (
        not isinstance(order, list)
        or not order
        or not all(isinstance(t, str) and t for t in order)
        or len(set(order)) != len(order)
    ):
        raise InvalidInput(f"{source}: tier_order must list quota tier names, each once")
    tier_order = tuple(order)
    _check_tiers_exist(tier_order, source)
    categories = raw.get("classifications")
    if not isinstance(categories, dict) or not categories:
        raise InvalidInput(f"{source}: classifications must map names to their controls")
    loaded = {
        str(name): _one(name, spec, f"{source}: classifications.{name}", tier_order)
        for name, spec in categories.items()
    }
    default = raw.get("default")
    if default not in loaded:
        raise InvalidInput(
            f"{source}: default {default!r} must be one of the classifications "
            f"({', '.join(loaded)})"
        )
    return ClassificationPolicy(tier_order, str(default), loaded, source)


def _check_tiers_exist(tier_order: tuple[str, ...], source: str) -> None:
    """Every ranked tier is a tier of the quota policy: a typo would otherwise make a
    classification's minimum unreachable without a word."""
    from cleanroom.workspace.quotas import load_tiers

    known = load_tiers()
    unknown = [t for t in tier_order if t not in known]
    if unknown:
        raise InvalidInput(
            f"{source}: tier_order names {', '.join(unknown)}, not tier(s) of the quota "
            f"policy ({', '.join(known)})"
        )


def load_policy(path: Path | None = None) -> ClassificationPolicy:
    """The deployment's classification policy (``classification.yaml`` in the policies
    folder), validated."""
    path = path or policy_path(POLICY_FILE)
    raw = load_yaml(path, what="classification policy", error=InvalidInput)
    return parse_policy(raw, str(path))


def combine(policy: ClassificationPolicy, versions: Iterable[tuple[str, str, str]]) -> Controls:
    """The strictest controls over ``(dataset, version, classification)`` triples."""
    versions = tuple(versions)
    if not versions:
        return NO_CONTROLS
    chosen = [policy.get(c) for _, _, c in versions]
    min_tier = max((c.min_tier for c in chosen), key=policy.tier_order.index)
    caps = [c.egress_per_day for c in chosen if c.egress_per_day is not None]
    return Controls(
        min_tier=min_tier,
        access=max((c.access for c in chosen), key=ACCESS_MODES.index),
        co_review=max((c.co_review for c in chosen), key=CO_REVIEW.index),
        egress_per_day=min(caps) if caps else None,
        because=versions,
    )


def required_controls(
    project: str, registry: Any = None, policy: ClassificationPolicy | None = None
) -> Controls:
    """The controls ``project`` needs for the dataset versions it mounts now: the lowest
    quota tier, the access mode (``standard`` or ``restricted``), the provider co-review
    of its releases and the egress cap; :data:`NO_CONTROLS` when it mounts none."""
    from cleanroom.library.catalogue import project_classifications
    from cleanroom.registry.store import shared_registry

    registry = registry or shared_registry()
    versions = project_classifications(registry, project)
    if not versions:
        return NO_CONTROLS
    return combine(policy or load_policy(), versions)


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def shortfalls(
    controls: Controls,
    *,
    quota_tier: str,
    policy: ClassificationPolicy,
    egress_per_day: int | None,
) -> list[str]:
    """What a project on ``quota_tier``, under a deployment egress budget of
    ``egress_per_day`` bytes, lacks of ``controls`` (empty: it meets them all).

    The access mode and co-review are not shortfalls: the project does not choose them,
    the deployment applies them to whoever uses the data (see docs/library.md).
    """
    problems: list[str] = []
    cause = ", ".join(f"{d} version {v} is {c}" for d, v, c in controls.because)
    if controls.min_tier is not None:
        need = policy.tier_rank(controls.min_tier)
        have = policy.tier_rank(quota_tier)
        if have is None or need is None or have < need:
            problems.append(
                f"its quota tier {quota_tier!r} is below {controls.min_tier!r}, the lowest "
                f"tier for its data ({cause}); an operator can move it to a higher tier"
            )
    cap = controls.egress_per_day
    if cap is not None and (egress_per_day is None or egress_per_day > cap):
        budget = "no limit" if egress_per_day is None else _mib(egress_per_day)
        problems.append(
            f"the deployment's egress budget ({budget} a day) is above {_mib(cap)}, the "
            f"cap for its data ({cause}); an operator must lower budget.bytes_per_day in "
            f"egress.yaml to at most {cap}"
        )
    return problems


def _deployment_egress_per_day() -> int | None:
    from cleanroom.gateway.policy import load_policy as load_egress

    return load_egress().budget.bytes_per_day


def check_project(registry: Any, project: str, quota_tier: str) -> Controls:
    """Refuse (Forbidden) a workspace of ``project`` that does not meet the controls of
    the dataset versions it mounts, or that mounts a quarantined version; else return
    the controls in force (the spawner hands the access mode on)."""
    from cleanroom.library.catalogue import quarantined_versions

    held = quarantined_versions(registry, project)
    if held:
        raise Forbidden(
            f"project {project!r} may not use "
            + ", ".join(f"dataset {d} version {v}" for d, v in held)
            + ": quarantined by its quality report until its provider accepts or fixes it"
        )
    from cleanroom.library.catalogue import project_classifications

    versions = project_classifications(registry, project)
    if not versions:
        return NO_CONTROLS
    policy = load_policy()
    controls = combine(policy, versions)
    egress = _deployment_egress_per_day() if controls.egress_per_day is not None else None
    problems = shortfalls(controls, quota_tier=quota_tier, policy=policy, egress_per_day=egress)
    if problems:
        raise Forbidden(
            f"project {project!r} does not meet the controls its data needs: " + "; ".join(problems)
        )
    return controls
