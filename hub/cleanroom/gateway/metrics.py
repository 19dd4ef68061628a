"""The gateway's Prometheus metrics (served on its internal port at ``/metrics``).

Label values are bounded: users and projects are registry names, route kinds and refusal
reasons are the fixed sets below.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ROUTE_KINDS = (
    "static",
    "page",
    "contents",
    "kernel",
    "terminal",
    "settings",
    "workspaces",
    "kernelspecs",
    "events",
    "releases",
    "api",
)
REFUSAL_REASONS = (
    "unauthenticated",
    "not_owner",
    "no_route",
    "not_allowed",
    "budget",
    "proof",
    "too_large",
    "content",
    "csrf",
    "backend",
)

BYTES = Counter(
    "cleanroom_gateway_bytes",
    "Bytes the gateway sent towards browsers and counted against budgets",
    ["user", "project", "kind"],
)
EXEMPT_BYTES = Counter(
    "cleanroom_gateway_exempt_bytes",
    "Bytes of static files matching the image's manifest (not counted against budgets)",
    ["user", "project"],
)
REFUSALS = Counter(
    "cleanroom_gateway_refusals",
    "Requests, answers and messages the gateway refused or withheld, by reason",
    ["user", "project", "reason"],
)
ALERTS = Counter(
    "cleanroom_gateway_alerts",
    "Researchers passing the egress policy's alert threshold",
    ["user", "project"],
)
REMAINING = Gauge(
    "cleanroom_gateway_budget_remaining_bytes",
    "Bytes left in the current hour's egress budget (set every second)",
    ["user", "project"],
)
ROUTES = Gauge("cleanroom_gateway_routes", "Workspaces the gateway routes to")
