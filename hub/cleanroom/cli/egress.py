"""``cleanroom egress usage|grant``: officers and operators see and raise egress budgets.

The figures live in the running gateway (``cleanroom.gateway``), asked through its
internal API with the gateway's token from the state folder. A grant is a decision: it
carries the signed-in person's own credential, which the gateway resolves and checks
(officer or operator in standing, never for themselves) before it journals
``egress.grant`` as that person's act.
"""

from __future__ import annotations

import argparse
from typing import Any

from cleanroom.cli.identity import add_credential
from cleanroom.cli.output import emit as _out
from cleanroom.cli.output import emit_rows
from cleanroom.errors import InvalidInput
from cleanroom.gateway import client
from cleanroom.gateway.budget import mib, parse_size
from cleanroom.registry import Registry


def _row(s: dict[str, Any]) -> str:
    return (
        f"{s['user']}\t{s['project']}\thour {mib(s['hour_bytes'])}/{mib(s['hour_limit'])}"
        f"\tday {mib(s['day_bytes'])}/{mib(s['day_limit'])}\tgranted {mib(s['granted_today'])}"
        f"\trefills {s['hour_refills_at']}"
    )


def usage(args: argparse.Namespace, reg: Registry) -> None:
    """Print every researcher x project's egress (or one user's, one project's)."""
    query = "&".join(f"{k}={v}" for k, v in (("user", args.user), ("project", args.project)) if v)
    rows = client.call_sync("GET", "/api/usage" + (f"?{query}" if query else ""))
    emit_rows(args, rows, _row)


def grant(args: argparse.Namespace, reg: Registry) -> None:
    """Grant more egress today to a researcher in a project (journaled), as the
    signed-in officer or operator: the gateway resolves their credential itself."""
    from cleanroom.cli.identity import credential

    reg.get_user(args.user)
    reg.get_project(args.project)
    nbytes = parse_size(args.size)
    if not args.reason.strip():
        raise InvalidInput("say why the grant is made (--reason), for the journal")
    status = client.call_sync(
        "POST",
        "/api/grants",
        {
            "user": args.user,
            "project": args.project,
            "bytes": nbytes,
            "reason": args.reason,
            "cli_token": credential(args),
        },
    )
    # The gateway journals the grant as the act of the person it found (gateway.ledger).
    _out(args, status, _row(status))


def add_egress_verbs(verbs: Any, verb: Any) -> None:
    """``cleanroom egress usage`` and ``cleanroom egress grant``."""
    egress = verb(verbs, "egress", "what reached researchers' browsers, and their budgets")
    egress = egress.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(egress, "usage", "bytes sent to browsers this hour and today", usage)
    p.add_argument("--user")
    p.add_argument("--project")
    p = verb(egress, "grant", "give a researcher more egress today (journaled)", grant)
    p.add_argument("user")
    p.add_argument("project")
    p.add_argument("size", help="bytes, or with a unit: 512KiB, 16MiB, 1GiB")
    add_credential(p)  # the signed-in officer or operator decides, never a typed name
    p.add_argument("--reason", required=True, help="why (kept in the journal)")
