"""The identity policy (``policies/identity.yaml``), validated at load with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanroom import paths
from cleanroom.errors import InvalidInput
from cleanroom.registry.names import ROLES


@dataclass(frozen=True)
class LoginPolicy:
    """Back-off and lock-out of log-in attempts."""

    backoff_base_seconds: float = 1
    backoff_max_seconds: float = 60
    max_failures: int = 5
    lock_minutes: float = 15
    address_max_failures: int = 20
    window_minutes: float = 60


@dataclass(frozen=True)
class IdentityPolicy:
    """Everything ``policies/identity.yaml`` sets."""

    login: LoginPolicy = field(default_factory=LoginPolicy)
    mfa_issuer: str = "cleanroom"
    recovery_codes: int = 10
    verification_methods: tuple[str, ...] = ("document-check", "institutional-idp", "in-person")
    verification_valid_days: int = 1095
    training: dict[str, tuple[str, ...]] = field(default_factory=dict)
    approving_outcomes: tuple[str, ...] = ("approved", "approved-with-conditions")

    def courses_for(self, roles: set[str] | frozenset[str]) -> list[str]:
        """Every course a person with these roles needs, each once, in policy order."""
        wanted: dict[str, None] = {}
        for role in sorted(roles):
            for course in self.training.get(role, ()):
                wanted[course] = None
        return list(wanted)


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: {key} must be a mapping")
    return value


def _number(
    section: dict[str, Any], key: str, default: float, where: str, *, minimum: float
) -> Any:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise InvalidInput(f"{where}: {key} must be a number of at least {minimum}, not {value!r}")
    return value


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidInput(f"{where}: {key} must be a list of names")
    return tuple(v.strip() for v in value)


def parse_policy(raw: Any, where: str = "identity policy") -> IdentityPolicy:
    """An :class:`IdentityPolicy` from parsed YAML, or InvalidInput naming the fault."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: the file must hold a mapping")
    unknown = set(raw) - {"login", "mfa", "verification", "training", "assessment"}
    if unknown:
        raise InvalidInput(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    login = _section(raw, "login", where)
    known_login = set(LoginPolicy.__dataclass_fields__)
    if set(login) - known_login:
        raise InvalidInput(
            f"{where}: unknown login key(s) {', '.join(sorted(set(login) - known_login))}"
        )
    d = LoginPolicy()
    login_policy = LoginPolicy(
        backoff_base_seconds=_number(
            login, "backoff_base_seconds", d.backoff_base_seconds, where, minimum=0
        ),
        backoff_max_seconds=_number(
            login, "backoff_max_seconds", d.backoff_max_seconds, where, minimum=0
        ),
        max_failures=int(_number(login, "max_failures", d.max_failures, where, minimum=1)),
        lock_minutes=_number(login, "lock_minutes", d.lock_minutes, where, minimum=0),
        address_max_failures=int(
            _number(login, "address_max_failures", d.address_max_failures, where, minimum=1)
        ),
        window_minutes=_number(login, "window_minutes", d.window_minutes, where, minimum=1),
    )
    mfa = _section(raw, "mfa", where)
    issuer = mfa.get("issuer", "cleanroom")
    if not isinstance(issuer, str) or not issuer.strip() or ":" in issuer:
        raise InvalidInput(f"{where}: mfa.issuer must be a name without ':'")
    codes = int(_number(mfa, "recovery_codes", 10, where, minimum=1))
    verification = _section(raw, "verification", where)
    methods = _names(
        verification.get("methods", ["document-check", "institutional-idp", "in-person"]),
        "verification.methods",
        where,
    )
    valid_days = int(_number(verification, "valid_days", 1095, where, minimum=0))
    training_raw = _section(raw, "training", where)
    stray = set(training_raw) - ROLES
    if stray:
        raise InvalidInput(
            f"{where}: training names unknown role(s) {', '.join(sorted(stray))}; "
            f"roles are {', '.join(sorted(ROLES))}"
        )
    training = {
        role: _names(courses or [], f"training.{role}", where)
        for role, courses in training_raw.items()
    }
    assessment = _section(raw, "assessment", where)
    outcomes = _names(
        assessment.get("approving_outcomes", ["approved", "approved-with-conditions"]),
        "assessment.approving_outcomes",
        where,
    )
    return IdentityPolicy(
        login=login_policy,
        mfa_issuer=issuer.strip(),
        recovery_codes=codes,
        verification_methods=methods,
        verification_valid_days=valid_days,
        training=training,
        approving_outcomes=outcomes,
    )


def load_policy(path: Path | None = None) -> IdentityPolicy:
    """The deployment's identity policy (``<policies>/identity.yaml``; defaults if absent)."""
    path = path or paths.policies_dir() / "identity.yaml"
    if not path.exists():
        return IdentityPolicy()
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML ({exc})") from exc
    return parse_policy(raw, str(path))
