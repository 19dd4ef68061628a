"""The egress policy (``policies/egress.yaml``), validated at load with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cleanroom import paths
from cleanroom.errors import InvalidInput

POLICY_FILE = "egress.yaml"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_DECIDED_MAX = 4096


@dataclass(frozen=True)
class Budget:
    """Bytes towards the browser per researcher and project."""

    bytes_per_hour: int
    bytes_per_day: int
    alert_at_fraction: float
    ask: str


@dataclass(frozen=True)
class HttpRules:
    """Limits on plain HTTP answers."""

    max_response_bytes: int
    max_request_bytes: int
    max_image_bytes: int


@dataclass(frozen=True)
class WebsocketRules:
    """Limits on websocket messages towards the browser."""

    max_message_bytes: int
    rate_bytes_per_second: int
    rate_burst_bytes: int
    blocked_mime_types: frozenset[str]


@dataclass(frozen=True)
class Route:
    """One allowed route: methods and a path pattern below the server's prefix."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    websocket: bool = False

    def allows(self, method: str, path: str) -> bool:
        """Whether ``method`` on ``path`` (below the prefix, no leading slash) is allowed."""
        return method in self.methods and self.pattern.fullmatch(path) is not None


@dataclass(frozen=True)
class EgressPolicy:
    """Everything the gateway enforces, from one file."""

    budget: Budget
    http: HttpRules
    websocket: WebsocketRules
    routes: tuple[Route, ...]
    source: str = field(default="")
    # (method, path) -> the route decided for it: the allowlist is fixed once loaded, so a
    # path decided once is decided the same again. Bounded: cleared when full.
    _decided: dict[tuple[str, str], Route | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def route_for(self, method: str, path: str) -> Route | None:
        """The first route allowing this request, or None (refused)."""
        if method == "HEAD":
            method = "GET"  # a HEAD answers what a GET would, without the body
        key = (method, path)
        if key in self._decided:
            return self._decided[key]
        found = next((r for r in self.routes if r.allows(method, path)), None)
        if len(self._decided) >= _DECIDED_MAX:
            self._decided.clear()
        self._decided[key] = found
        return found


def _int(section: dict[str, Any], key: str, where: str, *, minimum: int = 1) -> int:
    if key not in section:
        raise InvalidInput(f"{where}.{key} is missing")
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{where}.{key}: {value!r} must be a whole number >= {minimum}")
    return value


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"{key}: must be a mapping (see policies/{POLICY_FILE})")
    return value


def _routes(raw: Any) -> tuple[Route, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("routes: must be a non-empty list of {methods, path}")
    routes = []
    for i, item in enumerate(raw):
        where = f"routes[{i}]"
        if not isinstance(item, dict) or set(item) - {"methods", "path", "websocket"}:
            raise InvalidInput(f"{where}: must be a mapping with methods, path (and websocket)")
        methods = item.get("methods")
        if not isinstance(methods, list) or not methods or any(m not in _METHODS for m in methods):
            raise InvalidInput(f"{where}.methods: {methods!r} must list HTTP methods")
        path = item.get("path")
        if not isinstance(path, str) or not path or path.startswith("/"):
            raise InvalidInput(f"{where}.path: {path!r} must be a pattern without leading /")
        try:
            pattern = re.compile(path)
        except re.error as exc:
            raise InvalidInput(
                f"{where}.path: {path!r} is not a regular expression: {exc}"
            ) from exc
        websocket = item.get("websocket", False)
        if not isinstance(websocket, bool):
            raise InvalidInput(f"{where}.websocket: must be true or false")
        routes.append(Route(frozenset(methods), pattern, websocket))
    return tuple(routes)


def parse_policy(raw: Any, source: str = "") -> EgressPolicy:
    """Validate a loaded YAML document into an :class:`EgressPolicy`."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source or POLICY_FILE}: must be a mapping")
    unknown = set(raw) - {"budget", "http", "websocket", "routes"}
    if unknown:
        raise InvalidInput(f"{source or POLICY_FILE}: unknown keys {sorted(unknown)}")
    b = _section(raw, "budget")
    fraction = b.get("alert_at_fraction", 0.75)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not (0 < fraction <= 1)
    ):
        raise InvalidInput(f"budget.alert_at_fraction: {fraction!r} must be in (0, 1]")
    ask = b.get("ask", "ask a disclosure officer to grant more")
    if not isinstance(ask, str) or not ask.strip():
        raise InvalidInput("budget.ask: must be a sentence saying whom to ask")
    budget = Budget(
        bytes_per_hour=_int(b, "bytes_per_hour", "budget"),
        bytes_per_day=_int(b, "bytes_per_day", "budget"),
        alert_at_fraction=float(fraction),
        ask=ask,
    )
    if budget.bytes_per_hour > budget.bytes_per_day:
        raise InvalidInput("budget.bytes_per_hour must not exceed budget.bytes_per_day")
    h = _section(raw, "http")
    http = HttpRules(
        max_response_bytes=_int(h, "max_response_bytes", "http"),
        max_request_bytes=_int(h, "max_request_bytes", "http"),
        max_image_bytes=_int(h, "max_image_bytes", "http"),
    )
    w = _section(raw, "websocket")
    blocked = w.get("blocked_mime_types", [])
    if not isinstance(blocked, list) or any(not isinstance(m, str) for m in blocked):
        raise InvalidInput("websocket.blocked_mime_types: must be a list of mime types")
    ws = WebsocketRules(
        max_message_bytes=_int(w, "max_message_bytes", "websocket"),
        rate_bytes_per_second=_int(w, "rate_bytes_per_second", "websocket"),
        rate_burst_bytes=_int(w, "rate_burst_bytes", "websocket"),
        blocked_mime_types=frozenset(m.lower() for m in blocked),
    )
    if ws.rate_burst_bytes < ws.max_message_bytes:
        raise InvalidInput(
            "websocket.rate_burst_bytes must be at least websocket.max_message_bytes "
            "(or the largest allowed message could never pass)"
        )
    return EgressPolicy(budget, http, ws, _routes(raw.get("routes")), source)


def load_policy(folder: str | Path | None = None) -> EgressPolicy:
    """Load ``egress.yaml`` from ``folder`` (default: the deployment's policies folder)."""
    path = Path(folder) if folder else paths.policies_dir()
    path = path / POLICY_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path}: the egress policy is missing") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc
    return parse_policy(raw, str(path))
